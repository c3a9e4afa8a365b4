// Runs the real `livemod` bin in a child process (Node 24: the test runner's own binary).
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { within } from './server-fixtures.ts';

export const BIN: string = fileURLToPath(new URL('../../bin/livemod.js', import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliResult {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export interface AsyncCliResult extends CliResult {
  /** Wall time from spawn to exit. */
  readonly ms: number;
}

/**
 * Runs the bin without blocking the test's own event loop (its servers must keep answering).
 * `env` is merged over this process's; a variable given as undefined is removed.
 */
export function runAsync(args: string[], options: { env?: Record<string, string | undefined>; node?: string[]; timeoutMs?: number; cwd?: string } = {}): Promise<AsyncCliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, [...(options.node ?? []), BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], ...(options.cwd ? { cwd: options.cwd } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, ms: performance.now() - started });
    });
  });
}

export interface LiveCli {
  child: ChildProcessWithoutNullStreams;
  /** Resolves with the next JSON event on stdout matching `predicate`. */
  next(predicate: (event: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stderr(): string;
  stop(): Promise<number | null>;
}

/** Starts a long-running command with --json and reads its events line by line. */
export function startCli(args: string[], options: { cwd?: string } = {}): LiveCli {
  const child = spawn(process.execPath, [BIN, ...args, '--json'], { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let errText = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (errText += chunk));
  const events: Record<string, unknown>[] = [];
  const waiters: { predicate: (event: Record<string, unknown>) => boolean; resolve: (event: Record<string, unknown>) => void }[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const event = JSON.parse(line) as Record<string, unknown>;
    const index = waiters.findIndex((waiter) => waiter.predicate(event));
    if (index === -1) events.push(event);
    else waiters.splice(index, 1)[0]!.resolve(event);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    next(predicate, timeoutMs = 20_000) {
      const index = events.findIndex(predicate);
      if (index !== -1) return Promise.resolve(events.splice(index, 1)[0]!);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching event within ${timeoutMs} ms; stderr:\n${errText}`)), timeoutMs);
        waiters.push({ predicate, resolve: (event) => (clearTimeout(timer), resolve(event)) });
        exited.then((code) => reject(new Error(`exited with ${code} before the event; stderr:\n${errText}`)), () => {});
      });
    },
    stderr: () => errText,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/**
 * A `livemod …` child (under `nodeArgs`, e.g. --allow-natives-syntax) whose stdout lines a test
 * awaits one by one. `stop()` ends it and waits for its exit, so that temp folders are not
 * removed under it; it is killed after the test in any case.
 */
export function lineProcess(t: TestContext, args: string[], options: { nodeArgs?: string[] } = {}): { child: ChildProcessWithoutNullStreams; line(match: RegExp, ms?: number): Promise<string>; stderr(): string; stop(): Promise<void> } {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(() => {
    child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines: string[] = [];
  const waiters: { match: RegExp; resolve: (line: string) => void }[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const waiter = waiters.findIndex((candidate) => candidate.match.test(line));
    if (waiter === -1) lines.push(line);
    else waiters.splice(waiter, 1)[0]!.resolve(line);
  });
  return {
    child,
    stderr: () => stderr,
    line(match, ms = 15_000) {
      const index = lines.findIndex((line) => match.test(line));
      if (index !== -1) return Promise.resolve(lines.splice(index, 1)[0]!);
      return within(new Promise((resolve) => waiters.push({ match, resolve })), ms, `a line matching ${match} (stderr: ${stderr.slice(-400)})`);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

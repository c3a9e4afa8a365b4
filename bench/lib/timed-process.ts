// One start of a program as a fresh process, timed from the parent: from spawn to the first
// byte of its output (the program's result line) and from spawn to exit, with everything it
// printed, so the caller can check the result and, for a check run, what it reported.
import { spawn } from 'node:child_process';

export interface Command {
  readonly file: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
}

export interface Timed {
  /** ms from spawn to exit. */
  readonly wall: number;
  /** ms from spawn to the first stdout byte. */
  readonly output: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `command` once; rejects on a non-zero exit or a signal, with its stderr. */
export function timed(command: Command, timeoutMs = 120_000): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const begun = performance.now();
    const child = spawn(command.file, command.args, { cwd: command.cwd, env: command.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let wall = 0;
    let output = 0;
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      if (stdout === '') output = performance.now() - begun;
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', () => (wall = performance.now() - begun));
    child.on('error', reject);
    // 'close' comes after the pipes drained, so stdout and stderr are whole.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${[command.file, ...command.args].join(' ')} exited ${code ?? signal}: ${stderr.trim().slice(-2000)}`));
      resolve({ wall, output, stdout, stderr });
    });
  });
}

/** The `{"result": n}` a generated tree's main.js prints as its last line, or null. */
export function printedResult(stdout: string): number | null {
  const last = stdout.trim().split('\n').at(-1) ?? '';
  try {
    const value = JSON.parse(last) as { result?: unknown };
    return typeof value.result === 'number' ? value.result : null;
  } catch {
    return null;
  }
}

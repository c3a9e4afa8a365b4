// Runs jobs in fresh child processes, `jobs` at a time, each killed at its timeout. A child
// that dies or hangs is an outcome too: it is reported as a failure with what it wrote to stderr.
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Job, Outcome } from './outcome.ts';

const CHILD: string = fileURLToPath(new URL('./child.ts', import.meta.url));

/**
 * Shared by every child: without it each fresh process strips the types of child.ts again and
 * compiles livemod from scratch, ~0.15 s of a ~0.25 s Node-host test. V8 checks each cached
 * entry against its source, so a test's own code runs as compiled from its text either way.
 */
const COMPILE_CACHE: string = process.env.NODE_COMPILE_CACHE || join(tmpdir(), 'livemod-test262-compile-cache');

export type ChildResult = { readonly kind: 'outcome'; readonly outcome: Outcome } | { readonly kind: 'timeout' } | { readonly kind: 'crash'; readonly detail: string };

export interface RunnerProcess {
  /** The Node binary children run on (LIVEMOD_NODE, else the runner's own). */
  readonly node: string;
  readonly timeoutMs: number;
}

export function runChild(job: Job, options: RunnerProcess): Promise<{ result: ChildResult; durationMs: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(options.node, [CHILD, JSON.stringify(job)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...process.env, NODE_COMPILE_CACHE: COMPILE_CACHE } });
    let stderr = '';
    let outcome: Outcome | null = null;
    let timedOut = false;
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      // Only the tail matters for a crash report; a test that floods stderr must not fill memory.
      stderr = (stderr + chunk).slice(-4000);
    });
    child.on('message', (message) => (outcome = message as Outcome));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const durationMs = Math.round(performance.now() - started);
      if (outcome) resolve({ result: { kind: 'outcome', outcome }, durationMs });
      else if (timedOut) resolve({ result: { kind: 'timeout' }, durationMs });
      else resolve({ result: { kind: 'crash', detail: `the test's process exited (${signal ?? `code ${code}`}) before reporting${stderr.trim() ? `: ${stderr.trim()}` : ''}` }, durationMs });
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ result: { kind: 'crash', detail: `could not start ${options.node}: ${error.message}` }, durationMs: 0 });
    });
  });
}

/** Maps `items` through `work`, at most `limit` at a time; results keep the items' order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

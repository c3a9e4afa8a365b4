// Workers and forked children of a live program run live code too. Node's own idioms —
// `new Worker(new URL('./worker.ts', import.meta.url))`, `fork(fileURLToPath(new URL('./job.ts',
// import.meta.url)))` — name a file of the program's folder; once a live program runs in this
// process, `Worker` and `fork` recognise such a file and start livemod's child entry instead,
// which runs that module from the same snapshot version (its imports verified, from the store)
// or, for a local folder, from the same folder. Any other file starts exactly as before.
//
// The two modules are patched when first asked for — by an import, a require (the resolve hook)
// or process.getBuiltinModule — not when a program registers: loading child_process (with net
// and dgram) and worker_threads cost every start about 7 ms, and most programs use neither.
import type * as ChildProcesses from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { syncBuiltinESMExports } from 'node:module';
import type * as WorkerThreads from 'node:worker_threads';
import { ownEntry } from '../own.ts';
import { beforeBuiltins } from '../runtime/hooks.ts';

/** How a child finds the program's version: from the store (remote) or by building the folder (local). */
export type ProgramSpec =
  | {
      readonly kind: 'remote';
      readonly store: string;
      readonly origin: string;
      readonly manifestHash: string;
      readonly publicKey: string;
      readonly app: string;
      /** What a child needs to fetch a module the parent never ran (only what runs is fetched): the host's routes and the request headers (a token). */
      readonly batch: string | null;
      readonly headers: Readonly<Record<string, string>>;
    }
  | { readonly kind: 'local'; readonly folder: string };

export interface ChildTask {
  readonly spec: ProgramSpec;
  /** The module path to run as the child's main module. */
  readonly module: string;
}

interface LiveProgram {
  /** Folders whose files are this program's (a view and the version folder it points at; a local root). */
  folders(): string[];
  /** The spec of the version running now, if `module` is one of its modules. */
  task(module: string): ChildTask | null;
}

export const CHILD_ENV = 'LIVEMOD_CHILD';
export const WORKER_DATA_KEY = 'livemod:child';
const ENTRY = ownEntry('client/child-entry');

const programs = new Set<LiveProgram>();
let patched = false;
let armed = false;
const PATCHED = new Set(['child_process', 'node:child_process', 'worker_threads', 'node:worker_threads']);
const getBuiltinModule = process.getBuiltinModule;

function toPath(target: unknown): string | null {
  try {
    if (target instanceof URL) return target.protocol === 'file:' ? fileURLToPath(target) : null;
    if (typeof target !== 'string') return null;
    if (target.startsWith('file:')) return fileURLToPath(target);
    if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(target) && !isAbsolute(target)) return null;
    return resolve(target);
  } catch {
    return null;
  }
}

/** The child task for a file, when it is a module of a live program of this process. */
export function childTaskFor(target: unknown): ChildTask | null {
  const path = toPath(target);
  if (path === null) return null;
  for (const program of programs) {
    for (const folder of program.folders()) {
      if (!path.startsWith(folder + sep)) continue;
      const task = program.task(relative(folder, path).split(sep).join('/'));
      if (task) return task;
    }
  }
  return null;
}

/** Patches the two modules before anything first asks for either (at once, if one is loaded already). */
function arm(): void {
  if (armed) return;
  armed = true;
  // Loaded before the program registered (a preload, a config module, livemod itself): whoever
  // holds it must see the patched functions from the start, as before this was lazy.
  const loaded = (process as { moduleLoadList?: unknown }).moduleLoadList;
  if (!Array.isArray(loaded) || loaded.includes('NativeModule child_process') || loaded.includes('NativeModule worker_threads')) {
    patch(true);
    return;
  }
  process.getBuiltinModule = function (id: string): unknown {
    if (PATCHED.has(id)) patch(false);
    return getBuiltinModule.call(process, id);
  } as typeof process.getBuiltinModule;
  beforeBuiltins(PATCHED, () => patch(false));
}

/** `loadedBefore`: either module may have an ESM namespace already, which must see the patch. */
function patch(loadedBefore: boolean): void {
  if (patched) return;
  patched = true;
  const childProcess = getBuiltinModule.call(process, 'node:child_process') as typeof ChildProcesses;
  const workerThreads = getBuiltinModule.call(process, 'node:worker_threads') as typeof WorkerThreads;
  const NativeWorker = workerThreads.Worker;
  class Worker extends NativeWorker {
    constructor(filename: string | URL, options?: WorkerThreads.WorkerOptions) {
      const task = options?.eval ? null : childTaskFor(filename);
      if (!task) {
        super(filename, options);
        return;
      }
      // Environment data is copied into a worker as it is made: set for exactly this construction.
      workerThreads.setEnvironmentData(WORKER_DATA_KEY, JSON.stringify(task));
      try {
        super(ENTRY, options);
      } finally {
        workerThreads.setEnvironmentData(WORKER_DATA_KEY, undefined);
      }
    }
  }
  const nativeFork = childProcess.fork;
  const fork = function fork(modulePath: string | URL, ...rest: unknown[]): ChildProcesses.ChildProcess {
    const task = childTaskFor(modulePath);
    if (!task) return (nativeFork as (...args: unknown[]) => ChildProcesses.ChildProcess)(modulePath, ...rest);
    // fork(path, args?, options?): args may be left out or undefined.
    const args = Array.isArray(rest[0]) ? (rest[0] as string[]) : [];
    const options = ((Array.isArray(rest[0]) || rest[0] === undefined ? rest[1] : rest[0]) ?? {}) as ChildProcesses.ForkOptions;
    // The task (it may hold a token) goes through a file only this user can read, not the
    // child's environment (which its own children inherit); the child reads and removes it.
    const folder = mkdtempSync(join(tmpdir(), 'livemod-child-'));
    const file = join(folder, 'task.json');
    writeFileSync(file, JSON.stringify(task), { mode: 0o600 });
    const env = { ...(options.env ?? process.env), [CHILD_ENV]: file };
    const child = nativeFork(fileURLToPath(ENTRY), args, { ...options, env });
    // Removed here too, should the child never start.
    child.once('exit', () => rmSync(folder, { recursive: true, force: true }));
    return child;
  } as typeof ChildProcesses.fork;
  Object.defineProperty(workerThreads, 'Worker', { value: Worker, writable: true, configurable: true, enumerable: true });
  Object.defineProperty(childProcess, 'fork', { value: fork, writable: true, configurable: true, enumerable: true });
  // `import { Worker } from 'node:worker_threads'` sees the same binding from now on. Patched on
  // first use, neither module has an ESM namespace yet (its first import is what triggered this);
  // syncing then would also freeze into other builtins' namespaces whatever the program has
  // changed on them by now (a test's mock), so it is done only when they were loaded before.
  if (loadedBefore) syncBuiltinESMExports();
}

/** Registers a running program so its workers and forks run live; returns the unregister. */
export function registerProgram(program: LiveProgram): () => void {
  programs.add(program);
  arm();
  return () => programs.delete(program);
}

// A fetch a synchronous caller can wait for: a lazily imported graph's first read in a URL run
// (registry.ts loadDeferred → the remote source's ensureSync). The fetch runs in a worker thread
// (fetch-worker.ts) that writes the blobs to the store; this thread blocks on an Atomics.wait
// until it is done, failed, or past its deadline. Only what the start did not fetch ever comes
// this way, once per graph: a start fetches its eager graph itself, asynchronously.
import { ErrorCodes, LivemodError, type ErrorCode } from '../errors.ts';
import { ownEntry } from '../own.ts';
import type { Manifest } from '../snapshot/index.ts';
import type { Capabilities } from '../sync/index.ts';

const FETCH_DONE = 1;
const FETCH_FAILED = 2;
/** Where the failure's JSON starts in the shared buffer (after two int32 slots: state, length). */
const MESSAGE_AT = 8;
const MESSAGE_BYTES = 4096;

export interface FetchRequest {
  readonly base: string;
  /** The version's manifest, its `modules` cut to those whose blobs are fetched. */
  readonly manifest: Manifest;
  readonly hashes: readonly string[];
  /** What the manifest response said of the host; null: unknown (a 304), asked again. */
  readonly capabilities: Capabilities | null;
  /** The publisher's key as text, to verify a manifest fetched for its capabilities. */
  readonly publicKey: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly storeDir: string;
}

/** Fetches `request.hashes` into the store before it returns; throws the fetch's error as a LivemodError. */
export function fetchSync(request: FetchRequest): void {
  const shared = new SharedArrayBuffer(MESSAGE_AT + MESSAGE_BYTES);
  const state = new Int32Array(shared, 0, 2);
  // No inherited --import or flags: the thread runs livemod's fetch and nothing else. Its
  // bootstrap reports how the fetch settled, a failure to load fetch-worker.ts too (this thread,
  // blocked, sees no 'error' event). A message is cut before it is encoded, so it always parses.
  const bootstrap = `const { workerData } = require('node:worker_threads');
  const state = new Int32Array(workerData.shared, 0, 2);
  const settle = (outcome) => {
    Atomics.store(state, 0, outcome);
    Atomics.notify(state, 0);
  };
  import(${JSON.stringify(ownEntry('client/fetch-worker').href)}).then((thread) => thread.fetched).then(() => settle(${FETCH_DONE}), (error) => {
    const message = String((error && error.message) || error).slice(0, 1000);
    const text = Buffer.from(JSON.stringify({ code: error && error.code, message })).subarray(0, ${MESSAGE_BYTES});
    new Uint8Array(workerData.shared, ${MESSAGE_AT}).set(text);
    Atomics.store(state, 1, text.byteLength);
    settle(${FETCH_FAILED});
  });`;
  // Taken here, not imported: most runs never fetch a lazy graph, and worker_threads costs every start.
  const { Worker } = process.getBuiltinModule('node:worker_threads');
  const worker = new Worker(bootstrap, { eval: true, workerData: { request, shared }, execArgv: [], stdout: true, stderr: true });
  worker.unref();
  const outcome = Atomics.wait(state, 0, 0, request.timeoutMs + 5_000);
  void worker.terminate();
  if (outcome === 'timed-out') {
    throw new LivemodError('sync', ErrorCodes.TIMEOUT, `fetching ${request.hashes.length} blob(s) from ${request.base} for a first read did not finish within ${request.timeoutMs} ms; the next read tries again`, { base: request.base });
  }
  if (Atomics.load(state, 0) === FETCH_FAILED) {
    let failure: { code?: unknown; message?: unknown };
    try {
      failure = JSON.parse(Buffer.from(new Uint8Array(shared, MESSAGE_AT, Atomics.load(state, 1))).toString('utf8')) as typeof failure;
    } catch {
      failure = { message: `fetching ${request.hashes.length} blob(s) from ${request.base} failed, and the fetch thread's report of why was unreadable` };
    }
    const code = typeof failure.code === 'string' && (Object.values(ErrorCodes) as string[]).includes(failure.code) ? (failure.code as ErrorCode) : ErrorCodes.FETCH_FAILED;
    const message = String(failure.message).replace(/^\[livemod \w+\] /, '').replace(/ \[ERR_LIVEMOD_\w+\]$/, '');
    throw new LivemodError('sync', code, message, { base: request.base });
  }
}

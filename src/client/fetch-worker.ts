// The thread a synchronous fetch runs in (fetch-sync.ts): a first read of a lazily imported graph
// whose blobs a URL run never fetched must have them before it returns, and a read cannot await.
// This thread fetches them as any fetch does (the batch route, a pack's ranges, or one request per
// blob; each verified against the signed manifest's hash), writes them to the store, and wakes the
// reading thread, which then reads them from the store as it reads any blob.
import module from 'node:module';
import { workerData } from 'node:worker_threads';
import { parsePublicKey } from '../snapshot/index.ts';
import { openStore } from '../store/index.ts';
import { fetchBlobs, fetchManifest } from '../sync/index.ts';
import { FETCH_DONE, FETCH_FAILED, MESSAGE_AT, type FetchRequest } from './fetch-sync.ts';

module.enableCompileCache?.();

const { request, shared } = workerData as { request: FetchRequest; shared: SharedArrayBuffer };
const state = new Int32Array(shared, 0, 2);

async function fetchInto(): Promise<void> {
  const store = openStore({ dir: request.storeDir });
  const transfer = { headers: request.headers, timeoutMs: request.timeoutMs, deadline: Date.now() + request.timeoutMs };
  // After a 304 the start did not learn whether the host has a batch route: one manifest request tells.
  let capabilities = request.capabilities;
  if (capabilities === null) {
    const fresh = await fetchManifest(request.base, { key: parsePublicKey(request.publicKey), ...transfer, minVersion: request.manifest.version, app: request.manifest.name });
    capabilities = fresh.status === 'ok' ? fresh.capabilities : {};
  }
  const blobs = await fetchBlobs(request.base, request.manifest, request.hashes, capabilities, transfer);
  store.writeBlobs(blobs);
}

fetchInto().then(
  () => {
    Atomics.store(state, 0, FETCH_DONE);
    Atomics.notify(state, 0);
  },
  (error: unknown) => {
    // Cut before encoding: a message cut after would not parse (it can hold long URLs).
    const message = (error instanceof Error ? error.message : String(error)).slice(0, 1000);
    const text = Buffer.from(JSON.stringify({ code: (error as { code?: unknown } | null)?.code, message }));
    const room = new Uint8Array(shared, MESSAGE_AT);
    const length = Math.min(text.byteLength, room.byteLength);
    room.set(text.subarray(0, length));
    Atomics.store(state, 1, length);
    Atomics.store(state, 0, FETCH_FAILED);
    Atomics.notify(state, 0);
  },
);

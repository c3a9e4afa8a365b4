// The thread a synchronous fetch runs in (fetch-sync.ts): a first read of a lazily imported graph
// whose blobs a URL run never fetched must have them before it returns, and a read cannot await.
// This thread fetches them as any fetch does (the batch route, a pack's ranges, or one request per
// blob; each verified against the signed manifest's hash) and writes them to the store; its
// bootstrap then wakes the reading thread, which reads them from the store as it reads any blob.
import module from 'node:module';
import { workerData } from 'node:worker_threads';
import { parsePublicKey } from '../snapshot/index.ts';
import { openStore } from '../store/index.ts';
import { fetchBlobs, fetchManifest } from '../sync/index.ts';
import type { FetchRequest } from './fetch-sync.ts';

module.enableCompileCache?.();

const { request } = workerData as { request: FetchRequest };

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

/** Settles when the blobs are in the store; the thread's bootstrap (fetch-sync.ts) reports how it settled. */
export const fetched: Promise<void> = fetchInto();

// A cold fetch: the manifest, then every blob it references that the caller does not hold, in
// one session, so the deadline covers the whole fetch and the counts cover every request.
import { manifestBlobs, type Manifest, type VerifyKey } from '../snapshot/index.ts';
import { requestBlobs } from './blobs.ts';
import { requestManifest, requireKey } from './manifest.ts';
import { resolveBlobOptions, resolveManifestOptions, type BlobOptions, type ManifestOptions } from './options.ts';
import { Session } from './transfer.ts';
import { snapshotBase, type Capabilities } from './urls.ts';

export interface FetchSnapshotOptions extends Partial<ManifestOptions>, Partial<BlobOptions> {
  /** Blobs the caller holds already (a store): they are not fetched, and not in the result. */
  readonly has?: (hash: string) => boolean;
}

export interface FetchedSnapshot {
  readonly manifest: Manifest;
  /** The manifest's exact signed bytes. */
  readonly manifestBytes: Buffer;
  readonly etag: string | null;
  readonly capabilities: Capabilities;
  /** hash → verified bytes, for every referenced blob `has` did not claim. */
  readonly blobs: Map<string, Buffer>;
  /** HTTP requests made. */
  readonly requests: number;
  /** Response body bytes received, over all requests. */
  readonly bytes: number;
}

/**
 * Fetches and verifies a whole snapshot: a livemod server answers in two requests (manifest and
 * one batch), a static host in two as well (manifest and its pack).
 * @example
 * const { manifest, blobs } = await fetchSnapshot('http://127.0.0.1:8080/', parsePublicKey(pinned));
 */
export async function fetchSnapshot(baseUrl: string | URL, key: VerifyKey, options: FetchSnapshotOptions = {}): Promise<FetchedSnapshot> {
  const fetched = await refreshSnapshot(baseUrl, key, null, options);
  // Without an ETag sent there is no 304, so this is for the type checker.
  if (!fetched) throw new TypeError('a manifest fetched without an ETag cannot be not-modified');
  return fetched;
}

/**
 * The same, conditional on the manifest the caller holds: null when the host answers that its
 * manifest is still the one with `etag` (one request), else the new manifest and every blob of
 * it that `has` does not claim. A server replica keeps up with its source this way.
 */
export async function refreshSnapshot(baseUrl: string | URL, key: VerifyKey, etag: string | null, options: FetchSnapshotOptions = {}): Promise<FetchedSnapshot | null> {
  const { has, ...rest } = options;
  requireKey(key);
  const manifestOptions = resolveManifestOptions(rest);
  const blobOptions = resolveBlobOptions(rest);
  const base = snapshotBase(baseUrl);
  const session = new Session(manifestOptions);
  const result = await requestManifest(session, base, key, etag, manifestOptions);
  if (result.status !== 'ok') return null;
  const hashes = manifestBlobs(result.manifest).map((ref) => ref.hash).filter((hash) => !has?.(hash));
  const blobs = await requestBlobs(session, base, result.manifest, hashes, result.capabilities, blobOptions);
  return {
    manifest: result.manifest,
    manifestBytes: result.bytes,
    etag: result.etag,
    capabilities: result.capabilities,
    blobs,
    requests: session.requests,
    bytes: session.bytes,
  };
}

// Which way blobs come: a livemod server's batch route when the manifest response offered one,
// else the static snapshot's pack, else (or for what the pack could not give) one GET per blob.
// Whatever the way, each blob is checked against its manifest hash before it is returned.
import { ErrorCodes, LivemodError } from '../errors.ts';
import { shortHash, type Manifest } from '../snapshot/index.ts';
import { fetchBatch } from './batch.ts';
import { fetchEach } from './each.ts';
import { resolveBlobOptions, type BlobOptions, type ResolvedBlobOptions } from './options.ts';
import { fetchFromPack } from './pack.ts';
import { Session } from './transfer.ts';
import { snapshotBase, type Capabilities } from './urls.ts';
import { blobIndex, type BlobEntry } from './verify.ts';

/** Every way of fetching puts verified blobs into one map: telling on `set` covers them all. */
class NotifyingMap extends Map<string, Buffer> {
  private readonly notify: (hash: string, bytes: Buffer) => void;

  constructor(notify: (hash: string, bytes: Buffer) => void) {
    super();
    this.notify = notify;
  }

  override set(hash: string, bytes: Buffer): this {
    super.set(hash, bytes);
    this.notify(hash, bytes);
    return this;
  }
}

function wantedEntries(manifest: Manifest, hashes: Iterable<string>): BlobEntry[] {
  const index = blobIndex(manifest);
  const wanted = new Map<string, BlobEntry>();
  for (const hash of hashes) {
    const entry = index.get(hash);
    if (!entry) {
      throw new LivemodError('sync', ErrorCodes.USAGE, `blob ${typeof hash === 'string' ? shortHash(hash) : String(hash)} is not referenced by manifest version ${manifest.version}; ask only for hashes of the manifest the blobs are fetched for`, { hash });
    }
    wanted.set(hash, entry);
  }
  return [...wanted.values()];
}

/** @internal One session's blob fetch, shared by fetchBlobs and fetchSnapshot. */
export async function requestBlobs(session: Session, base: URL, manifest: Manifest, hashes: Iterable<string>, capabilities: Capabilities, options: ResolvedBlobOptions): Promise<Map<string, Buffer>> {
  const wanted = wantedEntries(manifest, hashes);
  const into = options.onBlob ? new NotifyingMap(options.onBlob) : new Map<string, Buffer>();
  if (wanted.length === 0) return into;
  if (capabilities.batch) {
    await fetchBatch(session, capabilities.batch, wanted, options, into);
  } else {
    const rest = manifest.pack ? await fetchFromPack(session, base, manifest, wanted, options, into) : wanted;
    if (rest.length > 0) await fetchEach(session, base, rest, options, into);
  }
  // In the order asked for, whichever order the host sent them in.
  return new Map(wanted.map((entry) => [entry.ref.hash, into.get(entry.ref.hash)!]));
}

/**
 * Fetches blobs of `manifest` (by hash) and returns them verified, keyed by hash. `capabilities`
 * is what fetchManifest returned with the manifest: a batch route makes it one request; a static
 * host gets one multi-range request on the pack (or one GET of it).
 * @example
 * const result = await fetchManifest(url, { key });
 * if (result.status === 'ok') {
 *   const blobs = await fetchBlobs(url, result.manifest, manifestBlobs(result.manifest).map((ref) => ref.hash), result.capabilities);
 * }
 */
export async function fetchBlobs(baseUrl: string | URL, manifest: Manifest, hashes: Iterable<string>, capabilities: Capabilities = {}, options: Partial<BlobOptions> = {}): Promise<Map<string, Buffer>> {
  const resolved = resolveBlobOptions(options);
  return requestBlobs(new Session(resolved), snapshotBase(baseUrl), manifest, hashes, capabilities, resolved);
}

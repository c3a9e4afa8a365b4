// A static snapshot, servable by any web server or object store:
//   OUT/manifest.json          the signed manifest (the only mutable file: serve it no-cache)
//   OUT/blobs/<sha256>         one file per blob (immutable)
//   OUT/pack/<sha256>.pack     every blob back to back; each blob's offset is in the manifest,
//                              so a client takes what it needs with one multi-range request
// OUT is a SnapshotTarget (a folder, an S3 prefix). Blobs and pack are stored first and the
// manifest last, only once every one of them is: a reader sees the old snapshot or the new one,
// never a manifest naming blobs that are not there yet.
import { ErrorCodes, LivemodError } from '../errors.ts';
import { sha256Hex, signSnapshot, type BlobRef, type FileRef, type Manifest, type ModuleRecord, type PackageRecord, type PublisherKey, type SignOptions, type Snapshot, type SnapshotContent } from '../snapshot/index.ts';
import { folderTarget, type SnapshotTarget } from './target.ts';

export interface PublishResult {
  readonly snapshot: Snapshot;
  /** The target's location: the folder, or s3://bucket/prefix/. */
  readonly out: string;
  /** Blobs stored now (the rest were there already). */
  readonly blobsWritten: number;
  readonly packBytes: number;
}

/** The version and key id of the snapshot the target holds, if any. */
function previousSnapshot(bytes: Uint8Array | null, target: SnapshotTarget): { version: number; keyId: string } | null {
  if (bytes === null) return null;
  try {
    const envelope = JSON.parse(Buffer.from(bytes).toString('utf8')) as { signed?: Partial<Manifest> };
    const version = envelope.signed?.version;
    const keyId = envelope.signed?.keyId;
    if (typeof version === 'number' && Number.isSafeInteger(version) && typeof keyId === 'string') return { version, keyId };
  } catch {
    // Reported below, with the same message as a wrong shape.
  }
  throw new LivemodError('publish', ErrorCodes.OUT_INVALID, `the manifest.json in ${target.location} is not a livemod manifest; remove it or publish into another ${target.noun}`, { out: target.location });
}

/** Runs `put` over `items`, at most `parallel` at once; after a failure starts no more, and throws it once the rest settled. */
async function putAll<T>(items: readonly T[], parallel: number, put: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (failure === null && next < items.length) {
      const item = items[next++]!;
      try {
        await put(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, items.length)) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
}

/** Adds pack offsets to every blob reference (modules, files, package files) and returns the pack's bytes. */
function pack(content: SnapshotContent): { placed: Pick<SnapshotContent, 'modules' | 'files' | 'packages'>; bytes: Buffer } {
  const offsets = new Map<string, number>();
  const parts: Buffer[] = [];
  let size = 0;
  const place = (ref: BlobRef): BlobRef => {
    let offset = offsets.get(ref.hash);
    if (offset === undefined) {
      const blob = content.blobs.get(ref.hash)!;
      offset = size;
      offsets.set(ref.hash, offset);
      parts.push(blob);
      size += blob.byteLength;
    }
    return { hash: ref.hash, size: ref.size, offset };
  };
  const placeAll = (files: Readonly<Record<string, FileRef>>): Record<string, FileRef> => {
    const out: Record<string, FileRef> = {};
    for (const path of Object.keys(files).sort()) out[path] = files[path]!.executable ? { ...place(files[path]!), executable: true } : place(files[path]!);
    return out;
  };
  const modules: Record<string, ModuleRecord> = {};
  for (const path of Object.keys(content.modules).sort()) {
    const record = content.modules[path]!;
    modules[path] = { ...record, blob: place(record.blob), map: record.map ? place(record.map) : null };
  }
  const placed: Pick<SnapshotContent, 'modules' | 'files' | 'packages'> = { modules };
  if (content.files) Object.assign(placed, { files: placeAll(content.files) });
  if (content.packages) {
    const packages: Record<string, PackageRecord> = {};
    for (const key of Object.keys(content.packages).sort()) {
      const record = content.packages[key]!;
      packages[key] = { ...record, files: placeAll(record.files) };
    }
    Object.assign(placed, { packages });
  }
  return { placed, bytes: Buffer.concat(parts, size) };
}

/**
 * Signs `content` and writes it as a static snapshot to `out`, a folder path or a SnapshotTarget
 * (an S3 prefix: `openS3Target`). The version goes above the one there already; a snapshot of
 * another key there is refused. Unchanged blobs are not written again.
 * @example
 * const { snapshot } = await publishSnapshot(new SnapshotBuilder('./src').build().content, key, './public');
 */
export async function publishSnapshot(content: SnapshotContent, key: PublisherKey, out: string | SnapshotTarget, options: SignOptions = {}): Promise<PublishResult> {
  const target = typeof out === 'string' ? folderTarget(out) : out;
  const previous = previousSnapshot(await target.readManifest(), target);
  if (previous && previous.keyId !== key.keyId) {
    throw new LivemodError('publish', ErrorCodes.OUT_INVALID, `${target.location} holds a snapshot signed by key ${previous.keyId}, not by this key (${key.keyId}); clients pinned to the old key would refuse it, so publish into another ${target.noun}`, { out: target.location });
  }
  const packed = pack(content);
  const packHash = sha256Hex(packed.bytes);
  const packPath = `pack/${packHash}.pack`;
  const snapshot = signSnapshot(
    { ...content, ...packed.placed, pack: { path: packPath, hash: packHash, size: packed.bytes.byteLength } },
    key,
    { ...options, previousVersion: Math.max(options.previousVersion ?? 0, previous?.version ?? 0) || undefined },
  );
  const present = await target.presentBlobs(content.blobs);
  const missing = [...content.blobs.keys()].filter((hash) => !present.has(hash));
  // A failed write throws before the manifest: the target keeps its old snapshot, plus blobs nobody names yet.
  await putAll(missing, target.parallel, (hash) => target.putBlob(hash, content.blobs.get(hash)!));
  await target.putPack(packPath, packed.bytes);
  await target.putManifest(snapshot.sealed.bytes);
  return { snapshot, out: target.location, blobsWritten: missing.length, packBytes: packed.bytes.byteLength };
}

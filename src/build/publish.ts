// A static snapshot on disk, servable by any web server:
//   OUT/manifest.json          the signed manifest (the only mutable file: serve it no-cache)
//   OUT/blobs/<sha256>         one file per blob (immutable)
//   OUT/pack/<sha256>.pack     every blob back to back; each blob's offset is in the manifest,
//                              so a client takes what it needs with one multi-range request
// Blobs and pack are written first, the manifest last by rename: a reader sees the old
// snapshot or the new one, never a manifest naming blobs that are not there yet.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { sha256Hex, signSnapshot, type BlobRef, type FileRef, type Manifest, type ModuleRecord, type PackageRecord, type PublisherKey, type SignOptions, type Snapshot, type SnapshotContent } from '../snapshot/index.ts';

export interface PublishResult {
  readonly snapshot: Snapshot;
  readonly out: string;
  /** Blob files written now (the rest were there already). */
  readonly blobsWritten: number;
  readonly packBytes: number;
}

function writeAtomic(path: string, data: Uint8Array): void {
  const temporary = `${path}.tmp-${process.pid}-${Date.now()}`;
  writeFileSync(temporary, data, { mode: 0o644 });
  renameSync(temporary, path);
}

/**
 * `mkdir -p`, one level at a time from the deepest folder that exists. Node's recursive mkdir
 * retries forever where a parent exists but refuses children (it spun on /proc/x); here the
 * first refusal is the error, at once.
 */
function makeFolders(path: string, out: string): void {
  const missing: string[] = [];
  let at = resolve(path);
  while (!statSync(at, { throwIfNoEntry: false })) {
    missing.push(at);
    const parent = dirname(at);
    if (parent === at) break;
    at = parent;
  }
  const existing = statSync(at, { throwIfNoEntry: false });
  if (existing && !existing.isDirectory()) throw new LivemodError('publish', ErrorCodes.OUT_INVALID, `cannot create ${path}: ${at} is not a folder; pass another --out`, { out });
  for (const folder of missing.reverse()) {
    try {
      mkdirSync(folder);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && statSync(folder, { throwIfNoEntry: false })?.isDirectory()) continue;
      throw new LivemodError('publish', ErrorCodes.OUT_INVALID, `cannot create the folder ${folder} (${code ?? 'error'}); pass an --out inside a folder you can write to`, { out, code }, { cause: error });
    }
  }
}

/** The version and key id of the snapshot already in OUT, if any. */
function previousSnapshot(out: string): { version: number; keyId: string } | null {
  const kind = statSync(out, { throwIfNoEntry: false });
  if (kind && !kind.isDirectory()) throw new LivemodError('publish', ErrorCodes.OUT_INVALID, `${out} exists and is not a folder; pass a folder (new or holding a previous snapshot) to --out`, { out });
  const path = join(out, 'manifest.json');
  if (!existsSync(path)) {
    if (existsSync(out) && readdirSync(out).some((name) => !['blobs', 'pack'].includes(name))) {
      throw new LivemodError('publish', ErrorCodes.OUT_INVALID, `${out} is not empty and holds no livemod manifest; publish into an empty folder or a previous snapshot`, { out });
    }
    return null;
  }
  try {
    const envelope = JSON.parse(readFileSync(path, 'utf8')) as { signed?: Partial<Manifest> };
    const version = envelope.signed?.version;
    const keyId = envelope.signed?.keyId;
    if (typeof version === 'number' && Number.isSafeInteger(version) && typeof keyId === 'string') return { version, keyId };
  } catch {
    // Reported below, with the same message as a wrong shape.
  }
  throw new LivemodError('publish', ErrorCodes.OUT_INVALID, `${path} is not a livemod manifest; remove it or publish into another folder`, { out });
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

export function publishSnapshot(content: SnapshotContent, key: PublisherKey, out: string, options: SignOptions = {}): PublishResult {
  const previous = previousSnapshot(out);
  if (previous && previous.keyId !== key.keyId) {
    throw new LivemodError('publish', ErrorCodes.OUT_INVALID, `${out} holds a snapshot signed by key ${previous.keyId}, not by this key (${key.keyId}); clients pinned to the old key would refuse it, so publish into another folder`, { out });
  }
  const packed = pack(content);
  const packHash = sha256Hex(packed.bytes);
  const packPath = `pack/${packHash}.pack`;
  const snapshot = signSnapshot(
    { ...content, ...packed.placed, pack: { path: packPath, hash: packHash, size: packed.bytes.byteLength } },
    key,
    { ...options, previousVersion: Math.max(options.previousVersion ?? 0, previous?.version ?? 0) || undefined },
  );
  makeFolders(join(out, 'blobs'), out);
  makeFolders(join(out, 'pack'), out);
  try {
    let blobsWritten = 0;
    for (const [hash, bytes] of content.blobs) {
      const path = join(out, 'blobs', hash);
      if (existsSync(path) && statSync(path).size === bytes.byteLength) continue;
      writeAtomic(path, bytes);
      blobsWritten += 1;
    }
    const packFile = join(out, packPath);
    if (!existsSync(packFile)) writeAtomic(packFile, packed.bytes);
    writeAtomic(join(out, 'manifest.json'), snapshot.sealed.bytes);
    return { snapshot, out, blobsWritten, packBytes: packed.bytes.byteLength };
  } catch (error) {
    throw new LivemodError('publish', ErrorCodes.OUT_INVALID, `cannot write the snapshot to ${out}: ${(error as Error).message}; check the folder's permissions and free space`, { out }, { cause: error });
  }
}

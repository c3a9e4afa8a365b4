// Blobs on disk: written only after their bytes hashed to their name, read back only after
// they hash to it again. A blob file that fails its check is removed, so the next sync refetches it.
import { closeSync, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, rmSync, statSync, unlinkSync, utimesSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { sha256Hex, shortHash } from '../snapshot/index.ts';
import type { StoreContext, StoreEvent } from './context.ts';
import { readFully } from '../read.ts';
import { ioError, writeAtomic } from './files.ts';
import { LAYOUT, blobPath, requireHash } from './location.ts';
import { packedBlob, readPacked, refreshPacks, touchPacks } from './packs.ts';

export type RemovalReason = Extract<StoreEvent, { type: 'blob-removed' }>['reason'];

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

/**
 * Removes a bad blob file, unless it was replaced meanwhile: another process may have just
 * renamed a good copy over it, and content addressing makes any replacement the right bytes.
 */
function removeBad(context: StoreContext, hash: string, path: string, seen: Stats, reason: RemovalReason): RemovalReason {
  try {
    const now = lstatSync(path);
    if (now.ino === seen.ino && now.dev === seen.dev) {
      if (now.isDirectory()) rmSync(path, { recursive: true, force: true });
      else unlinkSync(path);
    }
  } catch {
    // Removed by another reader already.
  }
  context.record({ type: 'blob-removed', hash, reason });
  return reason;
}

/**
 * Reads and re-hashes one blob file: its bytes, 'absent', or why it was removed (bad files are
 * removed so the next sync refetches them).
 */
export function inspectBlob(context: StoreContext, hash: string): Buffer | 'absent' | RemovalReason {
  const path = blobPath(context.dir, hash);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    const code = errno(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'absent';
    throw ioError(error, context.dir, `read blob ${shortHash(hash)}`, path);
  }
  let stat: Stats;
  let bytes: Buffer;
  try {
    stat = fstatSync(fd);
    const bad: RemovalReason | null = !stat.isFile() ? 'not-a-file' : stat.size > context.options.maxBlobBytes ? 'too-large' : null;
    if (bad) return removeBad(context, hash, path, stat, bad);
    bytes = readFully(fd, stat.size);
    if (bytes.length !== stat.size) return removeBad(context, hash, path, stat, 'truncated');
  } catch (error) {
    throw ioError(error, context.dir, `read blob ${shortHash(hash)}`, path);
  } finally {
    closeSync(fd);
  }
  if (sha256Hex(bytes) !== hash) return removeBad(context, hash, path, stat, 'hash-mismatch');
  return bytes;
}

/** Verified read: the blob's bytes, or null when absent or bad (a bad file is removed and recorded). */
export function readBlob(context: StoreContext, hash: string): Buffer | null {
  const result = inspectBlob(context, requireHash(hash));
  // Not a blob file: maybe packed (packs.ts).
  if (result === 'absent') return readPacked(context, hash);
  return typeof result === 'string' ? null : result;
}

export function hasBlob(context: StoreContext, hash: string): boolean {
  return existsSync(blobPath(context.dir, requireHash(hash))) || packedBlob(context, hash) !== undefined;
}

function shardNames(context: StoreContext): Set<string> {
  try {
    return new Set(readdirSync(join(context.dir, LAYOUT.blobs)));
  } catch {
    return new Set();
  }
}

/** Whether a blob file is there, marking it in use (mtime now; one syscall, like the stat it replaces). */
function present(path: string, now: Date): boolean {
  try {
    utimesSync(path, now, now);
    return true;
  } catch (error) {
    const code = errno(error);
    // Not ours to touch (another user's shared cache, a read-only mount): existence is enough.
    return code !== 'ENOENT' && code !== 'ENOTDIR' && existsSync(path);
  }
}

/**
 * The hashes not in the store, deduplicated, in first-seen order. Each blob found is also
 * marked in use (mtime set to now; one syscall, like the stat it replaces), so a concurrent
 * prune's grace period covers it until the caller's commit.
 */
export function missingBlobs(context: StoreContext, hashes: Iterable<string>): string[] {
  const missing: string[] = [];
  const seen = new Set<string>();
  const packs = new Map<string, string[]>();
  const now = new Date();
  // The blob folders there are (blobs/<first 2 hex>), listed once: a blob whose folder is absent
  // is not looked for (a cold start into a new store made one failed call per blob). A blob another
  // process writes meanwhile is then fetched again, which writes the same bytes.
  const shards = shardNames(context);
  let refreshed = false;
  for (const hash of hashes) {
    requireHash(hash);
    if (seen.has(hash)) continue;
    seen.add(hash);
    const path = blobPath(context.dir, hash);
    if (shards.has(hash.slice(0, 2)) && present(path, now)) continue;
    // Not a blob file: maybe packed. packs/ is read again at most once per call.
    let packed = packedBlob(context, hash, true);
    if (!packed && !refreshed) {
      refreshPacks(context);
      refreshed = true;
      packed = packedBlob(context, hash, true);
    }
    if (packed) packs.set(packed.pack, [...(packs.get(packed.pack) ?? []), hash]);
    else missing.push(hash);
  }
  // A pack another process removed since this one indexed it: its blobs are missing after all.
  for (const gone of touchPacks(context, packs.keys())) missing.push(...packs.get(gone)!);
  return missing;
}

/** How a blob is written (writeBlob). */
export interface WriteBlobHow {
  /** The caller just found the blob missing (missingBlobs): written without a look first (a copy another process wrote meanwhile is replaced by the same bytes). */
  readonly absent?: boolean;
  /** The caller hashed these very bytes against `hash` just now (a sync's arrival check): not hashed again. */
  readonly verified?: boolean;
}

/**
 * Stores `bytes` as blob `hash` if they hash to it (checked here unless the caller verified them
 * just now); nothing unverified is stored.
 */
export function writeBlob(context: StoreContext, hash: string, bytes: Uint8Array, { absent = false, verified = false }: WriteBlobHow = {}): void {
  requireHash(hash);
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`blob ${shortHash(hash)}: bytes must be a Uint8Array, not ${typeof bytes}`);
  const max = context.options.maxBlobBytes;
  if (bytes.byteLength > max) {
    throw new LivemodError('store', ErrorCodes.TOO_LARGE, `blob ${shortHash(hash)} is ${bytes.byteLength} bytes, over the store's ${max}-byte limit; it was not stored`, { hash, size: bytes.byteLength, max });
  }
  const actual = verified ? hash : sha256Hex(bytes);
  if (actual !== hash) {
    throw new LivemodError('store', ErrorCodes.HASH_MISMATCH, `bytes given for blob ${shortHash(hash)} hash to ${shortHash(actual)}; they were not stored, refetch the blob`, { hash, actual });
  }
  const path = blobPath(context.dir, hash);
  const folder = dirname(path);
  const existing = absent ? undefined : statSync(path, { throwIfNoEntry: false });
  // Same name and size: the same bytes (a damaged copy is caught by the verified read). Marked in use for prune.
  if (existing?.isFile() && existing.size === bytes.byteLength) {
    try {
      const now = new Date();
      utimesSync(path, now, now);
    } catch {
      // Read-only or not ours: the blob is there, which is what was asked.
    }
    return;
  }
  const prepare = (): void => {
    mkdirSync(folder, { recursive: true });
    context.madeDirs.add(folder);
  };
  try {
    if (!context.madeDirs.has(folder)) prepare();
    // Not fsync'd: every read re-hashes, so a blob a power cut lost or tore is refetched like any
    // corrupt entry. An fsync per blob made a 2,000-blob cold sync a second slower for nothing more.
    writeAtomic(context.tmp, path, bytes, prepare, false);
  } catch (error) {
    throw ioError(error, context.dir, `write blob ${shortHash(hash)}`, path);
  }
}

// Blob packs: the module code and source maps one sync fetched, in one file. A cold start of
// 500 modules used to create 1,500 blob files, and creating files was its largest single cost
// (the open calls alone: 140 ms of a 700 ms start). A sync now writes the module blobs it
// fetched as packs/<name>.pack — one file, written whole to tmp/ and renamed, never changed —
// and only the program's files (which version folders hard-link) as blob files.
//
// A pack is blobs like any other: every read re-hashes the blob against its name, and a pack
// with a bad blob is removed whole (what it held is refetched when next needed). The store's
// blob operations (read, has, missing, commit's completeness check, verify, prune, ls) see
// blob files first, then packs. Which pack holds a blob comes from the packs' headers, read
// once per process when a blob is not found as a file; a warm start reads its code from its
// run pack (run-pack.ts) and never needs them. Prune keeps a pack while any stored manifest
// needs a blob of it. Layout: a 4-byte big-endian length, that much JSON
// `{ "<hash>": [offset, size] }` (offsets into what follows), then the bytes.
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { isHash, sha256Hex, shortHash } from '../snapshot/index.ts';
import type { StoreContext } from './context.ts';
import { ioError, writeAtomic } from './files.ts';

/** Fewer blobs than this from one sync are written as blob files: a pack pays off for many. */
export const PACK_MIN_BLOBS = 8;

const NAME = /^[0-9a-f]{32}\.pack$/;
/** Packs whose bytes a process keeps after reading a blob of them (a start reads many blobs of one pack). */
const KEPT_PACKS = 4;

export interface PackedBlob {
  readonly pack: string;
  readonly offset: number;
  readonly size: number;
}

interface PackState {
  readonly index: Map<string, PackedBlob>;
  readonly bytes: Map<string, Buffer>;
}

const states = new WeakMap<StoreContext, PackState>();

export function packsDir(context: StoreContext): string {
  return join(context.dir, 'packs');
}

function header(bytes: Buffer): Record<string, [number, number]> {
  const length = bytes.readUInt32BE(0);
  if (length > bytes.byteLength - 4) throw new Error('header longer than the file');
  const index = JSON.parse(bytes.subarray(4, 4 + length).toString('utf8')) as Record<string, [number, number]>;
  if (typeof index !== 'object' || index === null) throw new Error('no header');
  for (const [hash, place] of Object.entries(index)) {
    if (!isHash(hash) || !Array.isArray(place) || place.length !== 2 || !Number.isSafeInteger(place[0]) || !Number.isSafeInteger(place[1]) || place[0] < 0 || place[1] < 0) throw new Error('malformed header');
    place[0] += 4 + length;
  }
  return index;
}

/** Reads a pack's header without its bytes: a blob map, or null when it is damaged (then removed). */
function readHeader(path: string): Record<string, [number, number]> | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const size = Buffer.alloc(4);
    if (readSync(fd, size, 0, 4, 0) !== 4) throw new Error('truncated');
    const length = size.readUInt32BE(0);
    const bytes = Buffer.alloc(4 + length);
    size.copy(bytes);
    if (readSync(fd, bytes, 4, length, 4) !== length) throw new Error('truncated');
    return header(bytes);
  } catch {
    try {
      rmSync(path, { force: true });
    } catch {
      // A read-only store: the pack is only left unused.
    }
    return null;
  } finally {
    closeSync(fd);
  }
}

/** Every packed blob of the store, from the packs' headers (read once per process, then kept up to date by this process's own writes). */
function state(context: StoreContext): PackState {
  let found = states.get(context);
  if (found) return found;
  found = { index: new Map(), bytes: new Map() };
  states.set(context, found);
  for (const name of packNames(context)) {
    const blobs = readHeader(join(packsDir(context), name));
    if (blobs === null) continue;
    for (const [hash, [offset, size]] of Object.entries(blobs)) found.index.set(hash, { pack: name, offset, size });
  }
  return found;
}

export function packNames(context: StoreContext): string[] {
  try {
    return readdirSync(packsDir(context)).filter((name) => NAME.test(name));
  } catch {
    return [];
  }
}

/** Where a blob is packed, or undefined. */
export function packedBlob(context: StoreContext, hash: string): PackedBlob | undefined {
  return state(context).index.get(hash);
}

/** Forgets a pack (removed, or found damaged): its blobs are absent from now on. */
function forget(context: StoreContext, pack: string): void {
  const { index, bytes } = state(context);
  bytes.delete(pack);
  for (const [hash, place] of index) if (place.pack === pack) index.delete(hash);
}

/**
 * A packed blob's bytes, verified; null when it is not packed or its pack is gone or bad (a bad
 * pack is removed whole, and the blob recorded as removed).
 */
export function readPacked(context: StoreContext, hash: string): Buffer | null {
  const current = state(context);
  const place = current.index.get(hash);
  if (!place) return null;
  const path = join(packsDir(context), place.pack);
  let bytes = current.bytes.get(place.pack);
  if (!bytes) {
    try {
      bytes = readFileSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        forget(context, place.pack);
        return null;
      }
      throw ioError(error, context.dir, `read pack ${place.pack}`, path);
    }
    if (current.bytes.size >= KEPT_PACKS) current.bytes.delete(current.bytes.keys().next().value!);
    current.bytes.set(place.pack, bytes);
  }
  const blob = bytes.subarray(place.offset, place.offset + place.size);
  if (blob.byteLength === place.size && sha256Hex(blob) === hash) return blob;
  removePack(context, place.pack);
  context.record({ type: 'blob-removed', hash, reason: blob.byteLength === place.size ? 'hash-mismatch' : 'truncated' });
  return null;
}

/** Removes a pack (damaged, or no longer needed). */
export function removePack(context: StoreContext, pack: string): void {
  try {
    rmSync(join(packsDir(context), pack), { force: true });
  } catch {
    // A read-only store: this process no longer uses it.
  }
  forget(context, pack);
}

/** Marks the packs holding these blobs in use (prune's grace period covers them until a commit). */
export function touchPacks(context: StoreContext, packs: Iterable<string>): void {
  const now = new Date();
  for (const pack of packs) {
    try {
      utimesSync(join(packsDir(context), pack), now, now);
    } catch {
      // Not ours to touch, or gone: existence was checked.
    }
  }
}

/**
 * Writes blobs as one pack, each checked against its name first (nothing unverified is stored).
 * Returns the pack's name.
 */
export function writePack(context: StoreContext, blobs: ReadonlyMap<string, Uint8Array>): string {
  const index: Record<string, [number, number]> = {};
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const hash of [...blobs.keys()].sort()) {
    const bytes = blobs.get(hash)!;
    if (!isHash(hash)) throw new TypeError(`not a blob hash: ${String(hash).slice(0, 80)}`);
    if (bytes.byteLength > context.options.maxBlobBytes) {
      throw new LivemodError('store', ErrorCodes.TOO_LARGE, `blob ${shortHash(hash)} is ${bytes.byteLength} bytes, over the store's ${context.options.maxBlobBytes}-byte limit; it was not stored`, { hash, size: bytes.byteLength, max: context.options.maxBlobBytes });
    }
    const actual = sha256Hex(bytes);
    if (actual !== hash) throw new LivemodError('store', ErrorCodes.HASH_MISMATCH, `bytes given for blob ${shortHash(hash)} hash to ${shortHash(actual)}; they were not stored, refetch the blob`, { hash, actual });
    index[hash] = [offset, bytes.byteLength];
    parts.push(bytes);
    offset += bytes.byteLength;
  }
  const head = Buffer.from(JSON.stringify(index), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(head.byteLength, 0);
  const name = `${sha256Hex(Object.keys(index).join('\n')).slice(0, 32)}.pack`;
  const path = join(packsDir(context), name);
  try {
    // Not fsync'd, as blob files are not: a pack a power cut tore fails its reads and is removed.
    writeAtomic(context.tmp, path, Buffer.concat([length, head, ...parts]), () => mkdirSync(packsDir(context), { recursive: true }), false);
  } catch (error) {
    throw ioError(error, context.dir, `write a pack of ${blobs.size} blobs`, path);
  }
  const current = states.get(context);
  if (current) for (const [hash, [at, size]] of Object.entries(index)) current.index.set(hash, { pack: name, offset: at + 4 + head.byteLength, size });
  return name;
}

/** Each pack with its blobs and its file's size and mtime (for ls, verify and prune); a damaged pack is removed and left out. */
export function listPacks(context: StoreContext): { name: string; path: string; blobs: Map<string, [number, number]>; size: number; mtimeMs: number }[] {
  const out: { name: string; path: string; blobs: Map<string, [number, number]>; size: number; mtimeMs: number }[] = [];
  for (const name of packNames(context)) {
    const path = join(packsDir(context), name);
    const stats = statSync(path, { throwIfNoEntry: false });
    const blobs = stats ? readHeader(path) : null;
    if (!stats || blobs === null) continue;
    out.push({ name, path, blobs: new Map(Object.entries(blobs)), size: stats.size, mtimeMs: stats.mtimeMs });
  }
  return out;
}

// Blob packs: the module code and source maps one sync fetched, in one file. A cold start of
// 500 modules used to create 1,500 blob files, and creating files was its largest single cost
// (the open calls alone: 140 ms of a 700 ms start). A sync now writes the module blobs it
// fetched as packs/<name>.pack — one file, written whole to tmp/ and renamed, never changed —
// and only the program's files (which version folders hard-link) as blob files.
//
// A pack is blobs like any other: every read re-hashes the blob against its name, and a pack
// with a bad blob is removed whole (what it held is refetched when next needed). The store's
// blob operations (read, has, missing, verify, prune, ls) see blob files first, then packs;
// commit's completeness check looks in the packs this process has indexed first (no stat per
// packed blob), then at blob files, then at packs written since. Which pack holds a blob comes from the packs' headers, read
// when a blob is first not found as a file and again when packs/ changed (another process wrote
// or removed a pack); a warm start reads its code from its run pack (run-pack.ts) and never
// needs them. Prune keeps a pack while any stored manifest
// needs a blob of it. Layout: a 4-byte big-endian length, that much JSON
// `{ "<hash>": [offset, size] }` (offsets into what follows), then the bytes.
import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { isHash, sha256Hex, shortHash } from '../snapshot/index.ts';
import type { StoreContext } from './context.ts';
import { readFully } from '../read.ts';
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
  /** Packs read whole, with the inode read (a bad pack is removed only if no other file took its name meanwhile). */
  readonly bytes: Map<string, { readonly bytes: Buffer; readonly ino: number }>;
  /** The packs whose headers are in the index. */
  readonly known: Set<string>;
  /** packs/'s mtime when its names were last read: a pack added or removed by another process changes it. */
  dirMtimeMs: number;
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

/** Reads a pack's header without its bytes: a blob map, or null when it cannot be read or parsed (only verify and prune remove such a pack). */
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
    return null;
  } finally {
    closeSync(fd);
  }
}

/**
 * Every packed blob of the store, from the packs' headers: read once per process, and again
 * whenever packs/ changed (another process wrote or removed a pack) and a blob was not found.
 */
function state(context: StoreContext): PackState {
  let found = states.get(context);
  if (!found) {
    found = { index: new Map(), bytes: new Map(), known: new Set(), dirMtimeMs: -1 };
    states.set(context, found);
    refresh(context, found);
  }
  return found;
}

/** Takes in packs written and drops packs removed since the names were last read. */
function refresh(context: StoreContext, current: PackState): void {
  const mtimeMs = statSync(packsDir(context), { throwIfNoEntry: false })?.mtimeMs ?? 0;
  // An mtime this recent could hide a second change within the same timestamp tick: the names are read again.
  if (mtimeMs === current.dirMtimeMs && Date.now() - mtimeMs > 2000) return;
  current.dirMtimeMs = mtimeMs;
  const names = new Set(packNames(context));
  for (const name of current.known) if (!names.has(name)) forget(context, name);
  for (const name of names) {
    if (current.known.has(name)) continue;
    const blobs = readHeader(join(packsDir(context), name));
    if (blobs === null) continue;
    current.known.add(name);
    for (const [hash, [offset, size]] of Object.entries(blobs)) current.index.set(hash, { pack: name, offset, size });
  }
}

export function packNames(context: StoreContext): string[] {
  try {
    return readdirSync(packsDir(context)).filter((name) => NAME.test(name));
  } catch {
    return [];
  }
}

/**
 * Where a blob is packed, or undefined. A blob not in the index makes it look at packs/ again,
 * unless `fresh`: a caller asking about many blobs at once looks once (`refreshPacks`), not once
 * per blob it lacks (a stat each: 53 ms of a 2,000-module cold start).
 */
export function packedBlob(context: StoreContext, hash: string, fresh = false): PackedBlob | undefined {
  const current = state(context);
  const found = current.index.get(hash);
  if (found || fresh) return found;
  refresh(context, current);
  return current.index.get(hash);
}

/** Brings the index up to date with packs/ now, for lookups with `packedBlob(…, true)`. */
export function refreshPacks(context: StoreContext): void {
  refresh(context, state(context));
}

/** Forgets a pack (removed, or found damaged): its blobs are absent from now on. */
function forget(context: StoreContext, pack: string): void {
  const current = states.get(context);
  if (!current) return;
  current.bytes.delete(pack);
  current.known.delete(pack);
  for (const [hash, place] of current.index) if (place.pack === pack) current.index.delete(hash);
}

/** Whether a pack this process indexed is still there (another process's prune may have removed it); forgotten if not. */
export function packPresent(context: StoreContext, pack: string): boolean {
  if (statSync(join(packsDir(context), pack), { throwIfNoEntry: false })?.isFile()) return true;
  forget(context, pack);
  return false;
}

/**
 * A packed blob's bytes, verified; null when it is not packed or its pack is gone or bad (a bad
 * pack is removed whole, and the blob recorded as removed).
 */
export function readPacked(context: StoreContext, hash: string): Buffer | null {
  const current = state(context);
  const place = packedBlob(context, hash);
  if (!place) return null;
  const path = join(packsDir(context), place.pack);
  let read = current.bytes.get(place.pack);
  if (!read) {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        forget(context, place.pack);
        return null;
      }
      throw ioError(error, context.dir, `read pack ${place.pack}`, path);
    }
    try {
      const stats = fstatSync(fd);
      read = { bytes: readFully(fd, stats.size), ino: stats.ino };
    } catch (error) {
      throw ioError(error, context.dir, `read pack ${place.pack}`, path);
    } finally {
      closeSync(fd);
    }
    if (current.bytes.size >= KEPT_PACKS) current.bytes.delete(current.bytes.keys().next().value!);
    current.bytes.set(place.pack, read);
  }
  const blob = read.bytes.subarray(place.offset, place.offset + place.size);
  if (blob.byteLength === place.size && sha256Hex(blob) === hash) return blob;
  removePack(context, place.pack, read.ino);
  context.record({ type: 'blob-removed', hash, reason: blob.byteLength === place.size ? 'hash-mismatch' : 'truncated' });
  return null;
}

/** Removes a pack (damaged, or no longer needed) — unless `ino` is given and another file has taken its name meanwhile. */
export function removePack(context: StoreContext, pack: string, ino?: number): void {
  const path = join(packsDir(context), pack);
  try {
    if (ino === undefined || lstatSync(path).ino === ino) rmSync(path, { force: true });
  } catch {
    // Gone already, or a read-only store: this process no longer uses it.
  }
  forget(context, pack);
}

/**
 * Marks the packs holding these blobs in use (prune's grace period covers them until a commit);
 * returns those that are gone (removed by another process since this one indexed them).
 */
export function touchPacks(context: StoreContext, packs: Iterable<string>): Set<string> {
  const now = new Date();
  const gone = new Set<string>();
  for (const pack of packs) {
    try {
      utimesSync(join(packsDir(context), pack), now, now);
    } catch {
      // Not ours to touch (a shared read-only store): existence is what counts.
      if (!packPresent(context, pack)) gone.add(pack);
    }
  }
  return gone;
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
  if (current) {
    current.known.add(name);
    for (const [hash, [at, size]] of Object.entries(index)) current.index.set(hash, { pack: name, offset: at + 4 + head.byteLength, size });
  }
  return name;
}

/**
 * Each pack with its blobs (null: its header cannot be read — verify and prune remove it) and its
 * file's size, mtime and inode, for ls, verify and prune.
 */
export function listPacks(context: StoreContext): { name: string; path: string; blobs: Map<string, [number, number]> | null; size: number; mtimeMs: number; ino: number }[] {
  const out: { name: string; path: string; blobs: Map<string, [number, number]> | null; size: number; mtimeMs: number; ino: number }[] = [];
  for (const name of packNames(context)) {
    const path = join(packsDir(context), name);
    const stats = statSync(path, { throwIfNoEntry: false });
    if (!stats) continue;
    const blobs = readHeader(path);
    out.push({ name, path, blobs: blobs === null ? null : new Map(Object.entries(blobs)), size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino });
  }
  return out;
}

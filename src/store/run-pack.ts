// A start in one read. After a start has run, the module blobs it reached and V8's code cache
// for them are written together as one file, runs/<key>.pack, named by those blobs' hashes and
// the V8 version; the next start that reaches the same blobs (any manifest: a re-sign changes
// nothing) reads that
// one file instead of a blob file and a code cache file per module (2,000 modules: 4,000 reads).
// It is a derived cache beside the blobs, never the only copy: every blob in it is hashed
// against its name when a start first reads it (a pack with one bad blob is dropped, and the
// blobs are read as before), and that start records the pack file's identity beside it
// (runs/<key>.checked; files.ts, readIdentified): a later start that reads the very same file
// takes its blobs as checked, as it takes the code cache beside them (which V8 checks for fit,
// not content), so a warm start of a program of any size hashes nothing and does not load
// node:crypto. `cache verify` drops these records. The code cache in it is checked by V8 on use,
// and prune removes packs no start used for a week (a read marks a pack, or its record, used). Layout: a 4-byte big-endian length, that many bytes of JSON
// index `{ "<hash>": [blobOffset, blobLength, cacheOffset, cacheLength] }` (offsets into what
// follows; cache -1, 0 when none), then the bytes.
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, unlinkSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cachedDataVersionTag } from 'node:v8';
import { isHash, sha256Hex } from '../snapshot/index.ts';
import type { StoreContext } from './context.ts';
import { IDENTITY_PATTERN, readIdentified, writeAtomic } from './files.ts';

export interface RunPackEntry {
  /** null when the pack was read for its code cache only (`blobs: false`): then no blob was read or checked. */
  readonly blob: Buffer | null;
  readonly cache: Buffer | null;
}

/** What is written: every entry with its blob. */
export interface RunPackWrite {
  readonly blob: Buffer;
  readonly cache: Buffer | null;
}

/**
 * The pack's name for a start: the set of blobs it reached, and this V8. Blob hashes are sha256
 * digests already, so the set is named by the XOR of their first 128 bits with its size: no
 * order (nothing sorted) and no hash of a 130 KB list (2,000 modules), which loaded node:crypto
 * for the name alone. Not a security boundary: a pack's entries are looked up by their own
 * hashes and checked, so two sets of one name would only make a pack less useful.
 */
export function runPackKey(blobs: Iterable<string>): string {
  const words = new Uint32Array(4);
  const seen = new Set<string>();
  for (const hash of blobs) {
    if (!isHash(hash)) throw new TypeError(`runPackKey: not a blob hash: ${String(hash).slice(0, 80)}`);
    if (seen.has(hash)) continue;
    seen.add(hash);
    for (let word = 0; word < 4; word++) words[word]! ^= Number.parseInt(hash.slice(word * 8, word * 8 + 8), 16);
  }
  words[3]! ^= seen.size;
  let name = '';
  for (const word of words) name += word.toString(16).padStart(8, '0');
  return `${name}-${cachedDataVersionTag().toString(16)}`;
}

function packPath(context: StoreContext, key: string): string {
  if (!/^[0-9a-f]{32}-[0-9a-f]{1,16}$/.test(key)) throw new TypeError(`not a run pack key: ${key.slice(0, 80)}`);
  return join(context.dir, 'runs', `${key}.pack`);
}

/**
 * The verified entries of a start's pack, or null (none, or damaged: then it is removed). A
 * reader that has the blobs already (a local run builds them) asks for the code cache only, and
 * no blob is hashed.
 */
export function readRunPack(context: StoreContext, key: string, options: { blobs?: boolean } = {}): Map<string, RunPackEntry> | null {
  const path = packPath(context, key);
  const record = recordOf(path);
  let bytes: Buffer;
  let identity: string | null;
  try {
    const read = readIdentified(path, MAX_RUN_PACK_BYTES);
    if (!read?.bytes) return null;
    ({ bytes, identity } = read);
  } catch {
    return null;
  }
  // Checked by an earlier start as this very file: its blobs are not hashed again.
  const known = identity !== null && recordedIdentity(record) === identity;
  const withBlobs = options.blobs !== false;
  const hashing = withBlobs && !known;
  try {
    // Used now: prune keeps packs a start read (or whose record it touched) within its window.
    // Not the pack itself once it has a record: that would change the identity recorded.
    const now = new Date();
    if (known) utimesSync(record, now, now);
    else if (!hashing) utimesSync(path, now, now);
  } catch {
    // A read-only store: prune is not this process's to run.
  }
  try {
    const length = bytes.readUInt32BE(0);
    const index = JSON.parse(bytes.subarray(4, 4 + length).toString('utf8')) as Record<string, [number, number, number, number]>;
    const data = 4 + length;
    const entries = new Map<string, RunPackEntry>();
    for (const hash of Object.keys(index)) {
      const [offset, size, cacheOffset, cacheSize] = index[hash]!;
      let blob: Buffer | null = null;
      if (withBlobs) {
        blob = bytes.subarray(data + offset, data + offset + size);
        if (blob.byteLength !== size || (hashing && sha256Hex(blob) !== hash)) throw new Error(`blob ${hash.slice(0, 12)} fails its hash check`);
      }
      entries.set(hash, { blob, cache: cacheOffset >= 0 && cacheSize > 0 ? bytes.subarray(data + cacheOffset, data + cacheOffset + cacheSize) : null });
    }
    if (hashing && identity !== null) {
      try {
        // The record also marks the pack used.
        writeAtomic(context.tmp, record, Buffer.from(identity, 'latin1'), () => undefined, false);
      } catch {
        // Not recorded: the next start hashes the pack again.
      }
    }
    return entries;
  } catch {
    // Torn or tampered: the blobs are read one by one, and the next start writes it again.
    for (const file of [path, record]) {
      try {
        unlinkSync(file);
      } catch {
        // Removed by another process already, or never recorded.
      }
    }
    return null;
  }
}

/** The record of a checked pack: `<key>.checked`, the pack file's identity. */
const CHECKED_SUFFIX = '.checked';

/** The record beside a pack (`<key>.pack` → `<key>.checked`). */
function recordOf(pack: string): string {
  return `${pack.slice(0, -'.pack'.length)}${CHECKED_SUFFIX}`;
}

/** Larger than any pack a start writes (its blobs are what one process runs). */
const MAX_RUN_PACK_BYTES = 2 ** 31;

function recordedIdentity(record: string): string | null {
  try {
    const bytes = readIdentified(record, 256)?.bytes;
    const text = bytes?.toString('latin1') ?? '';
    return IDENTITY_PATTERN.test(text) ? text : null;
  } catch {
    return null;
  }
}

/** The runs/ folder and what it holds (nothing when it cannot be read). */
function runsFolder(context: StoreContext): { dir: string; names: string[] } {
  const dir = join(context.dir, 'runs');
  try {
    return { dir, names: readdirSync(dir) };
  } catch {
    return { dir, names: [] };
  }
}

/** For `cache verify`: drops every pack's record, so the next start that reads a pack hashes its blobs again. */
export function forgetRunPackChecks(context: StoreContext): void {
  const { dir, names } = runsFolder(context);
  for (const name of names) {
    if (!name.endsWith(CHECKED_SUFFIX)) continue;
    try {
      unlinkSync(join(dir, name));
    } catch {
      // Gone already.
    }
  }
}

/** Writes a start's pack (atomically; best effort: a read-only or full store keeps none). */
export function writeRunPack(context: StoreContext, key: string, entries: ReadonlyMap<string, RunPackWrite>): void {
  // Checked before the pack is assembled: a store removed while the program ran (a user cleared
  // the cache) is not made again for a run pack.
  if (!existsSync(context.dir)) return;
  const index: Record<string, [number, number, number, number]> = {};
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [hash, entry] of entries) {
    const cacheOffset = entry.cache ? offset + entry.blob.byteLength : -1;
    index[hash] = [offset, entry.blob.byteLength, cacheOffset, entry.cache?.byteLength ?? 0];
    parts.push(entry.blob);
    offset += entry.blob.byteLength;
    if (entry.cache) {
      parts.push(entry.cache);
      offset += entry.cache.byteLength;
    }
  }
  const header = Buffer.from(JSON.stringify(index), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(header.byteLength, 0);
  const path = packPath(context, key);
  try {
    writeAtomic(context.tmp, path, Buffer.concat([length, header, ...parts]), () => mkdirSync(dirname(path), { recursive: true }), false);
  } catch {
    // The next start reads blob by blob, as without a pack.
  }
}

/** How long a run pack no start has read is kept. */
export const RUN_PACK_MAX_IDLE_MS: number = 7 * 24 * 3600 * 1000;

/** Removes packs no start read within RUN_PACK_MAX_IDLE_MS, and packs of another V8. */
export function pruneRunPacks(context: StoreContext, dryRun: boolean, now: number = Date.now()): number {
  const { dir, names } = runsFolder(context);
  const tag = `-${cachedDataVersionTag().toString(16)}.pack`;
  const usedAt = (path: string): number => statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? -Infinity;
  let removed = 0;
  for (const name of names) {
    // A pack's record goes with its pack (below); one whose pack is gone, after the loop.
    if (name.endsWith(CHECKED_SUFFIX)) continue;
    const path = join(dir, name);
    const record = name.endsWith('.pack') ? recordOf(path) : null;
    try {
      // A start that reads a recorded pack marks its record used, not the pack (whose identity the record holds).
      if (name.endsWith(tag) && now - Math.max(usedAt(path), record ? usedAt(record) : -Infinity) < RUN_PACK_MAX_IDLE_MS) continue;
      if (!dryRun) {
        rmSync(path, { force: true });
        if (record) rmSync(record, { force: true });
      }
      removed += 1;
    } catch {
      // Gone already.
    }
  }
  if (!dryRun) {
    for (const name of names) {
      if (name.endsWith(CHECKED_SUFFIX) && !existsSync(join(dir, `${name.slice(0, -CHECKED_SUFFIX.length)}.pack`))) rmSync(join(dir, name), { force: true });
    }
  }
  return removed;
}

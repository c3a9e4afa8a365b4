// A start in one read. After a start has run, the module blobs it reached and V8's code cache
// for them are written together as one file, runs/<key>.pack, named by those blobs' hashes and
// the V8 version; the next start that reaches the same blobs (any manifest: a re-sign changes
// nothing) reads that
// one file instead of a blob file and a code cache file per module (2,000 modules: 4,000 reads).
// It is a derived cache beside the blobs, never the only copy: every blob in it is re-hashed
// against its name as it is read (a pack with one bad blob is dropped, and the blobs are read
// as before), the code cache in it is checked by V8 on use, and prune removes packs no start
// used for a week (a read marks a pack used). Layout: a 4-byte big-endian length, that many bytes of JSON
// index `{ "<hash>": [blobOffset, blobLength, cacheOffset, cacheLength] }` (offsets into what
// follows; cache -1, 0 when none), then the bytes.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cachedDataVersionTag } from 'node:v8';
import { sha256Hex } from '../snapshot/index.ts';
import type { StoreContext } from './context.ts';
import { writeAtomic } from './files.ts';

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

/** The pack's name for a start: the blobs it reached, this V8. */
export function runPackKey(blobs: Iterable<string>): string {
  return `${sha256Hex([...blobs].sort().join('\n')).slice(0, 32)}-${cachedDataVersionTag().toString(16)}`;
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
  const withBlobs = options.blobs !== false;
  const path = packPath(context, key);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return null;
  }
  try {
    // Used now: prune keeps packs a start read within its window.
    const now = new Date();
    utimesSync(path, now, now);
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
        if (blob.byteLength !== size || sha256Hex(blob) !== hash) throw new Error(`blob ${hash.slice(0, 12)} fails its hash check`);
      }
      entries.set(hash, { blob, cache: cacheOffset >= 0 && cacheSize > 0 ? bytes.subarray(data + cacheOffset, data + cacheOffset + cacheSize) : null });
    }
    return entries;
  } catch {
    // Torn or tampered: the blobs are read one by one, and the next start writes it again.
    try {
      unlinkSync(path);
    } catch {
      // Removed by another process already.
    }
    return null;
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
  const dir = join(context.dir, 'runs');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  const tag = `-${cachedDataVersionTag().toString(16)}.pack`;
  let removed = 0;
  for (const name of names) {
    const path = join(dir, name);
    try {
      if (name.endsWith(tag) && now - statSync(path).mtimeMs < RUN_PACK_MAX_IDLE_MS) continue;
      if (!dryRun) rmSync(path, { force: true });
      removed += 1;
    } catch {
      // Gone already.
    }
  }
  return removed;
}

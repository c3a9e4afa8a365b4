// V8's code cache for live modules: the bytecode V8 produced for a module blob, kept beside the
// blobs (code/<V8 tag>/<blob hash>) so the next start deserialises instead of compiling. The tag
// (v8.cachedDataVersionTag) covers V8's version and flags; the blob hash covers the source. V8
// checks an entry on use and refuses one that does not fit; a refused or unreadable entry is
// dropped silently and written again. An entry is trusted as far as the store folder's
// permissions are (as Node's own compile cache is): docs/protocol.md, "Client store".
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cachedDataVersionTag } from 'node:v8';
import type { StoreContext } from './context.ts';
import { writeAtomic } from './files.ts';
import { requireHash } from './location.ts';

export interface CodeCache {
  /** The cached data for a module blob, or undefined. */
  get(hash: string): Buffer | undefined;
  /** Keeps cached data for a module blob (best effort: a read-only store keeps nothing). */
  put(hash: string, data: Buffer): void;
  /** Forgets an entry V8 refused. */
  drop(hash: string): void;
}

/** Cached data over this size is not kept (a pathological module; V8's own data is a fraction of its source). */
const MAX_ENTRY_BYTES = 64 * 1024 * 1024;

export function openCodeCache(context: StoreContext): CodeCache {
  const dir = join(context.dir, 'code', cachedDataVersionTag().toString(16));
  const path = (hash: string): string => join(dir, requireHash(hash).slice(0, 2), hash);
  return {
    get(hash) {
      try {
        return readFileSync(path(hash));
      } catch {
        return undefined;
      }
    },
    put(hash, data) {
      if (data.byteLength === 0 || data.byteLength > MAX_ENTRY_BYTES) return;
      // A store removed while the program ran (a user cleared the cache) is not made again for a cache entry.
      if (!existsSync(context.dir)) return;
      const target = path(hash);
      try {
        // Not fsync'd: an entry a power cut tore is refused by V8 and written again.
        writeAtomic(context.tmp, target, data, () => mkdirSync(dirname(target), { recursive: true }), false);
      } catch {
        // A read-only or full store: the next start compiles, as without a cache.
      }
    },
    drop(hash) {
      try {
        unlinkSync(path(hash));
      } catch {
        // Gone already.
      }
    },
  };
}

/**
 * Removes code cache entries of blobs no longer kept, and every folder of another V8 (an
 * upgraded Node refuses them all); returns how many entries and folders went.
 */
export function pruneCodeCache(context: StoreContext, keep: ReadonlySet<string>, dryRun: boolean): number {
  const root = join(context.dir, 'code');
  const current = cachedDataVersionTag().toString(16);
  let removed = 0;
  let tags: string[];
  try {
    tags = readdirSync(root);
  } catch {
    return 0;
  }
  for (const tag of tags) {
    if (tag !== current) {
      if (!dryRun) rmSync(join(root, tag), { recursive: true, force: true });
      removed += 1;
      continue;
    }
    for (const entry of readdirSync(join(root, tag), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || keep.has(entry.name)) continue;
      if (!dryRun) rmSync(join(entry.parentPath, entry.name), { force: true });
      removed += 1;
    }
  }
  return removed;
}

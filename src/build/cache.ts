// The build cache: what the transform made of a file, kept on disk between runs, so a local run
// (`livemod run ./dir`) started again transforms nothing and never loads the parser. An entry is
// keyed by the file's path and content hash and by the builder itself (the module format and a
// hash of the transform's own code), so any change to either is a miss, never a stale hit. It is
// a cache only: an entry that cannot be read or written is a miss, and the file is transformed.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODULE_FORMAT, sha256Hex, type ModuleError } from '../snapshot/index.ts';
import type { ModuleTransform } from './transform.ts';

export type CachedTransform = { readonly transform: ModuleTransform; readonly error: null } | { readonly transform: null; readonly error: ModuleError };

export interface TransformCache {
  get(path: string, sourceHash: string): CachedTransform | null;
  set(path: string, sourceHash: string, value: CachedTransform): void;
  /** The text of a reach-mode build kept whole (record.ts) under its key; null when there is none. */
  loadRecord?(key: string): string | null;
  saveRecord?(key: string, text: string): void;
}

const ENTRY_VERSION = 1;
const DAY_MS = 24 * 3600 * 1000;
let fingerprint: string | undefined;
let recordPrint: string | undefined;

/**
 * The bundler (tools/bundle.ts) writes the hashes of BUILDER_SOURCES and RECORD_SOURCES into the
 * build in place of these names; running from src/, they are undefined and the hashes are taken
 * from the files.
 */
declare const __LIVEMOD_BUILDER_SOURCES__: string | undefined;
declare const __LIVEMOD_RECORD_SOURCES__: string | undefined;

/** The files whose code decides what a transform makes: a change to any is a new builder. */
export const BUILDER_SOURCES: readonly string[] = ['build/transform.ts', 'build/scan.ts', 'build/edits.ts'];

/**
 * The files whose code decides what a whole build is — which files are modules, how imports
 * resolve, what a record keeps — besides the transform's: a build record (record.ts) made by
 * other code is never taken.
 */
export const RECORD_SOURCES: readonly string[] = [...BUILDER_SOURCES, 'build/build.ts', 'build/files.ts', 'build/record.ts', 'snapshot/resolve.ts'];

/** The hash of some of livemod's sources (default: the builder's), from src/. */
export function hashBuilderSources(srcDir: URL, names: readonly string[] = BUILDER_SOURCES): string {
  return sha256Hex(Buffer.from(names.map((name) => readFileSync(new URL(name, srcDir), 'utf8')).join('\0')));
}

/** The module format, this file's entry version and the hash of some of livemod's sources: the bundle's (`defined`), else taken from src/. */
function fingerprintOf(defined: string | undefined, names: readonly string[]): string {
  const sources = typeof defined === 'string' ? defined : hashBuilderSources(new URL('../', import.meta.url), names);
  return sha256Hex(Buffer.from([MODULE_FORMAT, String(ENTRY_VERSION), sources].join('\0')));
}

/** The builder's identity: the module format and the code of the transform and the rewrite. */
function builderFingerprint(): string {
  fingerprint ??= fingerprintOf(typeof __LIVEMOD_BUILDER_SOURCES__ === 'string' ? __LIVEMOD_BUILDER_SOURCES__ : undefined, BUILDER_SOURCES);
  return fingerprint;
}

/** The identity of the whole build, for build records: the transform's and the resolver's, the file rules', the record's own code. */
export function recordFingerprint(): string {
  recordPrint ??= fingerprintOf(typeof __LIVEMOD_RECORD_SOURCES__ === 'string' ? __LIVEMOD_RECORD_SOURCES__ : undefined, RECORD_SOURCES);
  return recordPrint;
}

function isEntry(value: unknown): value is CachedTransform {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as { transform?: unknown; error?: unknown };
  if (entry.transform === null) return typeof entry.error === 'object' && entry.error !== null;
  const transform = entry.transform as Partial<ModuleTransform> | undefined;
  return typeof transform?.code === 'string' && Array.isArray(transform.imports) && Array.isArray(transform.exports) && Array.isArray(transform.star) && typeof transform.tla === 'boolean';
}

/** A build cache in `dir` (the store's `builds/` folder for local runs). */
export function transformCache(dir: string): TransformCache {
  const file = (path: string, sourceHash: string): string => {
    const key = sha256Hex(Buffer.from(`${builderFingerprint()}\0${path}\0${sourceHash}`));
    return join(dir, key.slice(0, 2), `${key}.json`);
  };
  // Whether the store around `dir` has been there: a first run makes it with its first entry, but a
  // store removed since (a user cleared the cache while the program ran) is not made again for one.
  const store = join(dir, '..');
  let stored = existsSync(store);
  const write = (target: string, text: string): void => {
    if (stored && !existsSync(store)) return;
    const temporary = `${target}.${process.pid}.tmp`;
    try {
      mkdirSync(join(target, '..'), { recursive: true });
      writeFileSync(temporary, text);
      renameSync(temporary, target);
      stored = true;
    } catch {
      // A read-only or full disk: the next run transforms the file again.
      rmSync(temporary, { force: true });
    }
  };
  const recordFile = (key: string): string => {
    if (!/^[0-9a-f]{40}$/.test(key)) throw new TypeError(`not a build record key: ${key.slice(0, 80)}`);
    return join(dir, 'records', `${key}.json`);
  };
  return {
    get(path, sourceHash) {
      try {
        const value = JSON.parse(readFileSync(file(path, sourceHash), 'utf8')) as unknown;
        return isEntry(value) ? value : null;
      } catch {
        return null;
      }
    },
    set(path, sourceHash, value) {
      write(file(path, sourceHash), JSON.stringify(value));
    },
    loadRecord(key) {
      const path = recordFile(key);
      let text: string;
      try {
        // Written as ASCII (build.ts): latin1 is a copy, where UTF-8 would be decoded and checked.
        text = readFileSync(path, 'latin1');
      } catch {
        return null;
      }
      try {
        // Marked used for `cache prune` (store/builds.ts), at most once a day.
        if (Date.now() - statSync(path).mtimeMs > DAY_MS) utimesSync(path, new Date(), new Date());
      } catch {
        // A read-only store.
      }
      return text;
    },
    saveRecord(key, text) {
      write(recordFile(key), text);
    },
  };
}

// The store object: options resolved once and frozen, the folders made, leftovers of killed
// writers cleaned, then every operation delegated to the file that owns it.
import { accessSync, constants, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { readBlob, hasBlob, missingBlobs, writeBlob, type WriteBlobHow } from './blobs.ts';
import { DEFAULT_STORE_OPTIONS, StoreContext, type StoreEvent, type StoreOptions } from './context.ts';
import { cleanTmp, ioError } from './files.ts';
import { processStoreDir } from './location.ts';
import { listStore, pruneStore, verifyStore, type PruneOptions, type PruneReport, type StoreListing, type VerifyReport } from './maintenance.ts';
import { commitManifest, forgetOrigin, readOrigin, touchOrigin, type CommitInput, type StoredOrigin, type TouchFields } from './origins.ts';
import type { LayoutIds, OriginState } from './records.ts';
import { layoutProgram, openView, type ProgramView } from './program.ts';
import { openCodeCache, type CodeCache } from './code-cache.ts';
import { PACK_MIN_BLOBS, writePack } from './packs.ts';
import { readRunPack, writeRunPack, type RunPackEntry, type RunPackWrite } from './run-pack.ts';
import { packageResolutions, type PackageResolutions } from './resolutions.ts';
import type { Manifest } from '../snapshot/index.ts';

export interface Store {
  /** The store folder (absolute). */
  readonly dir: string;
  readonly options: Readonly<StoreOptions>;
  /**
   * Verified read: re-hashes the file. A file that fails (hash, size, type) is removed and an
   * event recorded (see takeEvents), and null returned, so the caller refetches and can say so.
   */
  readBlob(hash: string): Buffer | null;
  /** Existence only (one syscall), for planning fetches; reads still verify. */
  hasBlob(hash: string): boolean;
  /** The hashes not stored, deduplicated; the ones found are marked in use for prune's grace period. */
  missingBlobs(hashes: Iterable<string>): string[];
  /**
   * Stores verified bytes; throws ERR_LIVEMOD_HASH_MISMATCH (nothing stored) if they do not hash to `hash`.
   * `absent`: missingBlobs just listed it, so it is written without a look first. `verified`: the
   * caller hashed these very bytes against `hash` just now (a sync's arrival check), so they are
   * not hashed again (a cold start of 1,700 package files hashed 8 MB twice).
   */
  writeBlob(hash: string, bytes: Uint8Array, how?: WriteBlobHow): void;
  /**
   * Stores verified blobs as one pack (packs.ts) when there are PACK_MIN_BLOBS or more, else as
   * blob files. For module code and maps only: a program's files must be blob files, which
   * version folders hard-link.
   */
  writeBlobs(blobs: ReadonlyMap<string, Uint8Array>): void;
  /**
   * The last accepted manifest of an origin and its state, or null. A torn or damaged record
   * is repaired from its manifest when that is sound, else removed. The bytes are not verified
   * here (the store holds no key): open them with the pinned key before use.
   */
  readOrigin(origin: string | URL): StoredOrigin | null;
  /**
   * Records an accepted manifest: refuses a version below the stored one (ERR_LIVEMOD_ROLLBACK)
   * and a manifest whose blobs are not all stored (ERR_LIVEMOD_STORE_INCOMPLETE, `details.missing`).
   * Equal versions are accepted (a re-commit). Safe against concurrent commits in other processes.
   */
  commitManifest(origin: string | URL, input: CommitInput): OriginState;
  /**
   * Removes an origin's record (its manifest and state: its version floor and app), so the next
   * sync from it is a cold one. For an origin the publisher moved to another app on purpose.
   */
  forgetOrigin(origin: string | URL): boolean;
  /** After a 304: records when the host confirmed the stored manifest, and a new ETag if it sent one. Null if nothing is stored. */
  touchOrigin(origin: string | URL, fields: TouchFields): OriginState | null;
  /**
   * Lays out an app version that carries its program (files, packages) as a folder of hard links
   * to its blobs, each package version once for every app; returns the folder. Throws
   * STORE_INCOMPLETE (`details.missing`) when blobs are missing, STORE_UNWRITABLE on a read-only store.
   * Blobs in `fresh` were verified by this process moments ago and are not hashed again. `ids`:
   * the folder ids recorded with the stored manifest (`OriginState.layout`), when it is that one.
   */
  layoutProgram(manifest: Manifest, fresh?: ReadonlySet<string>, ids?: LayoutIds | null): string;
  /** V8's code cache for module blobs, kept in the store (code/). */
  codeCache(): CodeCache;
  /** A start's blobs and code cache in one file (run-pack.ts): its verified entries, or null. */
  readRunPack(key: string, options?: { blobs?: boolean }): Map<string, RunPackEntry> | null;
  writeRunPack(key: string, entries: ReadonlyMap<string, RunPackWrite>): void;
  /** This process's view of an origin's program: a symlink it points at the version it runs. */
  openView(origin: string, tree: string): ProgramView;
  /**
   * What Node answered when asked to resolve from inside the package folder the laid-out
   * version `tree` links, under `signature` (resolutions.ts); null when it links none.
   */
  packageResolutions(tree: string, signature: string): PackageResolutions | null;
  list(): StoreListing;
  /** Re-hashes every blob and checks every origin record; removes what is bad. */
  verify(): VerifyReport;
  /** Removes blobs no stored manifest needs (past the grace period), stray files and abandoned temp files. */
  prune(options?: PruneOptions): PruneReport;
  /** What the store removed or repaired on its own since the last call. */
  takeEvents(): StoreEvent[];
}

function resolveOptions(options: Partial<StoreOptions>): Readonly<StoreOptions> {
  const resolved = { ...DEFAULT_STORE_OPTIONS, ...options, dir: resolve(options.dir ?? processStoreDir()) };
  for (const name of ['maxBlobBytes', 'lockTimeoutMs', 'lockStaleMs'] as const) {
    const value = resolved[name];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new LivemodError('store', ErrorCodes.USAGE, `store option ${name} must be a number ≥ 0, not ${String(value)}`);
    }
  }
  return Object.freeze(resolved);
}

class DiskStore implements Store {
  readonly dir: string;
  readonly options: Readonly<StoreOptions>;
  private readonly context: StoreContext;

  constructor(context: StoreContext) {
    this.context = context;
    this.dir = context.dir;
    this.options = context.options;
  }

  readBlob(hash: string): Buffer | null {
    return readBlob(this.context, hash);
  }

  hasBlob(hash: string): boolean {
    return hasBlob(this.context, hash);
  }

  missingBlobs(hashes: Iterable<string>): string[] {
    return missingBlobs(this.context, hashes);
  }

  writeBlob(hash: string, bytes: Uint8Array, how: WriteBlobHow = {}): void {
    writeBlob(this.context, hash, bytes, how);
  }

  writeBlobs(blobs: ReadonlyMap<string, Uint8Array>): void {
    if (blobs.size >= PACK_MIN_BLOBS) writePack(this.context, blobs);
    else for (const [hash, bytes] of blobs) writeBlob(this.context, hash, bytes, { absent: true });
  }

  readOrigin(origin: string | URL): StoredOrigin | null {
    return readOrigin(this.context, origin);
  }

  commitManifest(origin: string | URL, input: CommitInput): OriginState {
    return commitManifest(this.context, origin, input);
  }

  forgetOrigin(origin: string | URL): boolean {
    return forgetOrigin(this.context, origin);
  }

  touchOrigin(origin: string | URL, fields: TouchFields): OriginState | null {
    return touchOrigin(this.context, origin, fields);
  }

  layoutProgram(manifest: Manifest, fresh?: ReadonlySet<string>, ids?: LayoutIds | null): string {
    try {
      return layoutProgram(this.context, manifest, fresh, ids);
    } catch (error) {
      if (error instanceof LivemodError) throw error;
      throw ioError(error, this.dir, 'lay out the program', this.dir);
    }
  }

  codeCache(): CodeCache {
    return openCodeCache(this.context);
  }

  readRunPack(key: string, options: { blobs?: boolean } = {}): Map<string, RunPackEntry> | null {
    return readRunPack(this.context, key, options);
  }

  writeRunPack(key: string, entries: ReadonlyMap<string, RunPackWrite>): void {
    writeRunPack(this.context, key, entries);
  }

  openView(origin: string, tree: string): ProgramView {
    try {
      return openView(this.context, origin, tree);
    } catch (error) {
      throw ioError(error, this.dir, 'make the program view', this.dir);
    }
  }

  packageResolutions(tree: string, signature: string): PackageResolutions | null {
    return packageResolutions(this.context, tree, signature);
  }

  list(): StoreListing {
    return listStore(this.context);
  }

  verify(): VerifyReport {
    return verifyStore(this.context);
  }

  prune(options?: PruneOptions): PruneReport {
    return pruneStore(this.context, options);
  }

  takeEvents(): StoreEvent[] {
    return this.context.takeEvents();
  }
}

/**
 * Opens (creating if needed) the store at `options.dir`, by default the user's cache folder
 * (`LIVEMOD_CACHE`, `$XDG_CACHE_HOME/livemod`, `~/.cache/livemod`). Removes temp files that
 * writers killed mid-write left behind. Throws ERR_LIVEMOD_STORE_UNWRITABLE if the folder
 * cannot be created or written.
 * @example
 * const store = openStore();
 * const missing = store.missingBlobs(manifestBlobs(manifest).map((ref) => ref.hash));
 * for (const [hash, bytes] of await fetchMissing(missing)) store.writeBlob(hash, bytes);
 * store.commitManifest(baseUrl, { bytes: manifestBytes, manifest, etag });
 */
export function openStore(options: Partial<StoreOptions> = {}): Store {
  const context = new StoreContext(resolveOptions(options));
  for (const folder of [context.blobs, context.origins, context.tmp]) {
    try {
      mkdirSync(folder, { recursive: true });
    } catch (error) {
      throw ioError(error, context.dir, 'create the store folders', folder);
    }
  }
  let writable = true;
  try {
    // mkdir succeeds on folders that exist; a read-only cache shows here, not at the first write.
    accessSync(context.tmp, constants.W_OK);
    accessSync(context.dir, constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // A cache shared read-only (a mount, another user's folder) still serves verified reads:
    // offline runs and `cache ls` work, and the first write fails with STORE_UNWRITABLE.
    if (code !== 'EROFS' && code !== 'EACCES' && code !== 'EPERM') throw ioError(error, context.dir, 'write', context.tmp);
    writable = false;
  }
  if (writable) cleanTmp(context.tmp);
  return new DiskStore(context);
}

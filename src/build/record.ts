// A local run's build, kept whole. The build cache (cache.ts) spares a second start the
// transforms, but the start still reads and hashes every reached file, opens one cache entry per
// file and resolves every import again: at 2,000 modules that was most of a second start. So a
// reach-mode build also keeps a record of itself, one file per folder and options (the store's
// builds/records/): each module's transform, hashes and resolved record, the file's identity
// (inode, size, mtime, ctime) and the sorted names of every folder resolution looked in (absent
// folders too). The next start trusts the record only if every one of those folders still holds
// the same names and every module file still stats the same — one readdir per folder and one
// stat per module, no read — and then takes the whole build from it, resolution included.
//
// Why folder names and file stats are enough: resolution asks only whether a path is a module
// file in the folder (which names a folder holds) and reads package.json (a module of the build,
// checked by stat like the others); a symlink re-pointed changes what the module path stats as;
// a listed path resolution rejected (a folder, an oversized file, a broken or outside symlink)
// is recorded with what it was, since it could become a module without a name changing.
// A file changed within the file system's timestamp granularity of when it was looked at could
// stat the same ("racy", as git calls it): such files are read and hashed instead, and a
// record taken whole after that is written again, so the next start finds them settled. A
// folder whose names changed during the run while the builder kept older knowledge of it is
// recorded as changed, so the record is never taken whole while it could be stale. It is a cache
// only: a record that is missing, damaged or stale costs the start a build, never a wrong one;
// the unchanged files of a stale record still spare their reads.
import { lstatSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex, type ModuleError, type ModuleRecord } from '../snapshot/index.ts';
import { readModuleFile, type SkippedFile } from './files.ts';
import type { ModuleTransform } from './transform.ts';
import type { BrokenModule, UnresolvedImport } from './build.ts';

export const RECORD_VERSION = 2;

/** Files whose ctime or mtime is this close to when they were looked at are verified by content. */
const RACY_MS = 2000;

export interface KeptModule {
  readonly path: string;
  /** The real file read (a symlink's target inside the folder). */
  readonly file: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  /** When the file was looked at (before its stat, or its check at a restore): changes later than a tick after this are what stats can miss. */
  readonly seenAt?: number;
  readonly executable?: boolean;
  readonly sourceHash: string;
  readonly blobHash: string;
  readonly mapHash: string | null;
  readonly transform: ModuleTransform | null;
  readonly error: ModuleError | null;
  /** A module that does not parse travels as its source: base64 of it. */
  readonly source?: string;
  /** For a file whose kind its package scope decided (no ES module syntax): that scope's `type`. */
  readonly scope?: string;
  readonly record: ModuleRecord;
}

export interface KeptBuild {
  readonly version: typeof RECORD_VERSION;
  readonly key: string;
  readonly savedAt: number;
  readonly roots: readonly string[];
  /** Folder (module path, '' for the root) → its sorted entry names, null when absent, false when it changed during the run. */
  readonly dirs: Readonly<Record<string, readonly string[] | null | false>>;
  /**
   * Paths resolution found listed but took for no module (a folder, a file over the size limit, a
   * broken symlink or one leading outside): what each was (pathIdentity), since becoming a module
   * would change a resolution without changing any folder's names.
   */
  readonly rejected?: Readonly<Record<string, string>>;
  /** The modules a start builds: with a lazy policy, those the roots reach through eager imports only. */
  readonly modules: readonly KeptModule[];
  /** Lazy policy: the lazily imported modules left out of `modules` (their graphs have no top-level await). */
  readonly deferred?: readonly string[];
  /** Lazy policy: the key of the segment holding every module of the build `modules` left out, taken at a first read. */
  readonly rest?: string;
  /** Lazy policy: the packages the left-out modules import, which a start loads all the same (a package's evaluation may await). */
  readonly deferredExternals?: readonly { readonly specifier: string; readonly attributes?: Readonly<Record<string, string>> }[];
  /**
   * The package scopes the build looked up (a folder's absolute path → its package.json `type`,
   * "" without one; null: no package.json there): a file without ES module syntax is CommonJS
   * or not by them, so a start takes the record only while each still says the same.
   */
  readonly scopes?: Readonly<Record<string, string | null>>;
  readonly entry: string | null;
  readonly name: string;
  readonly unresolved: readonly UnresolvedImport[];
  readonly broken: readonly BrokenModule[];
  readonly skipped: readonly SkippedFile[];
  readonly totalBytes: number;
}

/**
 * What a start's build leaves out (the graphs of lazily imported modules), kept in a file of its
 * own (named by the hash of its text, so a record and its segment never mix builds), read only
 * when a first read asks for one of them. Its resolutions hold for the folders as `dirs`
 * (dirsHash of the record's `dirs`) found them.
 */
export interface KeptSegment {
  readonly version: typeof RECORD_VERSION;
  readonly dirs: string;
  readonly modules: readonly KeptModule[];
  readonly unresolved: readonly UnresolvedImport[];
  readonly broken: readonly BrokenModule[];
  readonly totalBytes: number;
}

/** What a segment names the folder state its resolutions were made in by. */
export function dirsHash(dirs: Readonly<Record<string, readonly string[] | null | false>>): string {
  return sha256Hex(JSON.stringify(Object.entries(dirs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

/** The record's name: the builder, the folder and every option that changes what a build makes. */
export function recordKey(builder: string, root: string, options: Readonly<Record<string, unknown>>): string {
  return sha256Hex(JSON.stringify([RECORD_VERSION, builder, root, options])).slice(0, 40);
}

/** What is at `file` now, as far as deciding whether it is a module goes: its lstat, and a symlink's target. */
export function pathIdentity(file: string): string {
  let link;
  try {
    link = lstatSync(file, { throwIfNoEntry: false });
  } catch (error) {
    // A path through a file (`x.cjs/index.ts`, tried as a folder's index) is absent, as a missing one is.
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') return 'absent';
    throw error;
  }
  if (!link) return 'absent';
  let target = '';
  if (link.isSymbolicLink()) {
    try {
      const real = realpathSync.native(file);
      const stats = statSync(real);
      target = ` -> ${real} ${stats.mode} ${stats.size} ${stats.ino} ${stats.ctimeMs}`;
    } catch {
      target = ' -> broken';
    }
  }
  return `${link.mode} ${link.size} ${link.ino} ${link.mtimeMs} ${link.ctimeMs}${target}`;
}

/** A folder's entry names as a record keeps them (null: not a readable folder). */
export function folderNames(dir: string): string[] | null {
  try {
    return readdirSync(dir).sort();
  } catch {
    return null;
  }
}

/** Whether a folder's names as kept (`a`) are the names it has now (`b`). */
export function sameNames(a: readonly string[] | null | false | undefined, b: readonly string[] | null): boolean {
  if (a === false || a === undefined) return false;
  if (a === null || b === null) return a === b;
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index += 1) if (a[index] !== b[index]) return false;
  return true;
}

/** The record in `text` if it has the shape this version writes and the key asked for; else null. */
export function parseRecord(text: string | null, key: string): KeptBuild | null {
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as Partial<KeptBuild> | null;
    if (value?.version !== RECORD_VERSION || value.key !== key || typeof value.savedAt !== 'number') return null;
    if (!Array.isArray(value.roots) || !Array.isArray(value.modules) || typeof value.dirs !== 'object' || value.dirs === null || typeof value.name !== 'string') return null;
    if (!keptModules(value.modules)) return null;
    if (value.deferred !== undefined && (!Array.isArray(value.deferred) || value.deferred.some((path) => typeof path !== 'string'))) return null;
    if (value.rest !== undefined && (typeof value.rest !== 'string' || !/^[0-9a-f]{40}$/.test(value.rest))) return null;
    if (value.deferredExternals !== undefined && (!Array.isArray(value.deferredExternals) || value.deferredExternals.some((item) => typeof item?.specifier !== 'string'))) return null;
    if (value.scopes !== undefined && (typeof value.scopes !== 'object' || value.scopes === null || Object.values(value.scopes).some((type) => type !== null && typeof type !== 'string'))) return null;
    return value as KeptBuild;
  } catch {
    return null;
  }
}

/** Whether a parsed list has the shape of kept modules. */
function keptModules(modules: unknown[]): boolean {
  for (const item of modules) {
    const kept = item as Partial<KeptModule> | null;
    if (typeof kept?.path !== 'string' || typeof kept.file !== 'string' || typeof kept.size !== 'number' || typeof kept.ino !== 'number' || typeof kept.sourceHash !== 'string' || typeof kept.blobHash !== 'string') return false;
    if (typeof kept.record !== 'object' || kept.record === null) return false;
    if (kept.transform === null ? typeof kept.source !== 'string' || typeof kept.error !== 'object' : typeof kept.transform?.code !== 'string') return false;
  }
  return true;
}

/** The segment in `text` if it has the shape this version writes and was made in the folder state `dirs` names; else null. */
export function parseSegment(text: string | null, dirs: string): KeptSegment | null {
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as Partial<KeptSegment> | null;
    if (value?.version !== RECORD_VERSION || value.dirs !== dirs || !Array.isArray(value.modules) || !keptModules(value.modules)) return null;
    if (!Array.isArray(value.unresolved) || !Array.isArray(value.broken) || typeof value.totalBytes !== 'number') return null;
    return value as KeptSegment;
  } catch {
    return null;
  }
}

/**
 * What of a record still holds: `whole` when every folder has its names and every module its
 * identity, so the build is the record's; else the modules whose files are unchanged.
 */
export function checkRecord(kept: KeptBuild, root: string, maxFileBytes: number): { whole: boolean; unchanged: Set<string>; racy: number; checkedAt: number } {
  const checkedAt = Date.now();
  const whole = foldersHold(kept.dirs, kept.rejected ?? {}, root) && Object.entries(kept.scopes ?? {}).every(([dir, type]) => packageScopeAt(dir) === type);
  const { unchanged, racy, changed } = checkModules(kept.modules, root, maxFileBytes, kept.savedAt);
  return { whole: whole && !changed, unchanged, racy, checkedAt };
}

/** The `type` of the package.json in `dir` ("" without one, or one that does not parse: Node's default), or null when there is none. */
export function packageScopeAt(dir: string): string | null {
  try {
    const parsed = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { type?: unknown } | null;
    return typeof parsed?.type === 'string' ? parsed.type : '';
  } catch (error) {
    const code = (error as { code?: string }).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? null : '';
  }
}

/** Whether every folder still has the names kept and every passed-over path is what it was: then every kept resolution stands. */
export function foldersHold(dirs: KeptBuild['dirs'], rejected: Readonly<Record<string, string>>, root: string): boolean {
  for (const dir of Object.keys(dirs)) {
    if (!sameNames(dirs[dir], folderNames(dir === '' ? root : join(root, ...dir.split('/'))))) return false;
  }
  for (const [path, identity] of Object.entries(rejected)) {
    if (pathIdentity(`${root}/${path}`) !== identity) return false;
  }
  return true;
}

/** Which of `modules` still stat as kept (racy ones: hash as kept); `changed` when any does not. */
export function checkModules(modules: readonly KeptModule[], root: string, maxFileBytes: number, savedAt: number): { unchanged: Set<string>; racy: number; changed: boolean } {
  const unchanged = new Set<string>();
  let racy = 0;
  let changed = false;
  for (const item of modules) {
    const stats = statSync(`${root}/${item.path}`, { throwIfNoEntry: false });
    let same = stats !== undefined && stats.isFile() && stats.ino === item.ino && stats.size === item.size && stats.mtimeMs === item.mtimeMs && stats.ctimeMs === item.ctimeMs;
    // Racy: changed within a tick of when the file was looked at, so its stat may hide a later change.
    const racyAfter = (item.seenAt ?? savedAt) - RACY_MS;
    if (same && (item.ctimeMs >= racyAfter || item.mtimeMs >= racyAfter)) {
      // Changed within a timestamp tick of when it was looked at: the content decides.
      racy += 1;
      try {
        const bytes = readModuleFile(item.file, maxFileBytes);
        same = bytes !== null && sha256Hex(bytes) === item.sourceHash;
      } catch {
        same = false;
      }
    }
    if (same) unchanged.add(item.path);
    else changed = true;
  }
  return { unchanged, racy, changed };
}

/**
 * A build cut along its lazy imports: `main`, what `roots` reach through imports `defers` does
 * not defer (a start builds that), and the modules deferred imports of `main` name.
 */
export function segmentBuild(records: ReadonlyMap<string, ModuleRecord>, roots: readonly string[], defers: (importer: string, record: ModuleRecord, index: number) => boolean): { main: Set<string>; deferred: Set<string> } {
  const main = new Set<string>();
  const found = new Set<string>();
  const queue = roots.filter((path) => records.has(path));
  for (let at = 0; at < queue.length; at += 1) {
    const path = queue[at]!;
    if (main.has(path)) continue;
    main.add(path);
    const record = records.get(path)!;
    for (const [index, entry] of record.imports.entries()) {
      if (entry.kind !== 'module' || entry.module === undefined || main.has(entry.module)) continue;
      if (defers(path, record, index)) found.add(entry.module);
      else if (records.has(entry.module)) queue.push(entry.module);
    }
  }
  return { main, deferred: new Set([...found].filter((path) => !main.has(path))) };
}

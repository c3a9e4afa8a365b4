// Folder → snapshot content. The builder keeps a table of files and their transforms, so a
// rebuild after an edit re-reads and re-transforms only the files named as changed; resolution,
// which is cheap and depends on which files exist, is redone for every module each time.
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, posix } from 'node:path';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { formatBytes } from '../format.ts';
import ignoreModule from 'ignore';
import { examineFile, isModuleFile, listFiles, readModuleFile, type FoundFile, type SkippedFile } from './files.ts';
import { appNameProblem, defaultEntry, lazyEdge, policyKey, withTlaBelow, resolveSpecifier, sha256Hex, type BlobRef, type LazyPolicy, type ImportRecord, type ModuleError, type ModuleRecord, type PackageInfo, type ResolveTree, type SnapshotContent } from '../snapshot/index.ts';
import { nativeModule, parsesAsCommonJs, transformModule, type ModuleTransform } from './transform.ts';
import { recordFingerprint, type TransformCache } from './cache.ts';
import { checkModules, checkRecord, dirsHash, folderNames, foldersHold, packageScopeAt, parseRecord, parseSegment, pathIdentity, recordKey, sameNames, segmentBuild, RECORD_VERSION, type KeptBuild, type KeptModule, type KeptSegment } from './record.ts';
import { ProgramCollector, type ProgramOptions } from './program.ts';
import { monotonicMs } from '../clock.ts';

export interface BuildOptions {
  /** Fail the build on any unresolved import (for CI). */
  readonly strict: boolean;
  readonly maxFileBytes: number;
  readonly maxTotalBytes: number;
  /** Real folders to leave out (e.g. publish output inside the folder). */
  readonly exclude: readonly string[];
  /** Module to start by default; else the package entry or main/index. */
  readonly entry: string | null;
  /**
   * Build only the modules these reach through static and literal dynamic imports (and
   * `package.json`); an empty list means "from the entry". null (the default): the whole folder.
   * A local run builds what it runs; `extend` adds roots as the program reaches further.
   */
  readonly reach: readonly string[] | null;
  /** The app name the manifest binds to; else package.json's `name`, else the folder's name. */
  readonly name: string | null;
  /** Where transforms are kept between runs (local runs: the store's builds/ folder); null: none. */
  readonly cache: TransformCache | null;
  /**
   * The whole program travels (publish, serve): every file of the folder and the npm packages
   * it reaches (see program.ts). null (the default): modules only, as a local run needs.
   */
  readonly program: ProgramOptions | null;
  /**
   * A local run's lazy policy (the registry's): a lazily imported module whose graph the build
   * record shows free of top-level await is left unbuilt until its first read (`extend`), and
   * the record keeps its graph apart (record.ts segments). Not with `strict`, which checks the
   * whole graph at start. null (the default): build everything reached.
   */
  readonly lazy: LazyPolicy | null;
  /**
   * Leave the `.js`/`.ts` files Node would run as CommonJS to Node (the default), in a build
   * whose files a client has (a program build, a local run). false: they are ES modules all the
   * same, as under `"type": "module"` — for a harness that runs every file as a module, as the
   * test262 runner's Node side does with a load hook. A snapshot of modules only (no `program`,
   * the whole folder) runs them as live modules too: its clients lay out no files.
   */
  readonly commonjs: boolean;
}

export const DEFAULT_BUILD_OPTIONS: Readonly<BuildOptions> = Object.freeze({
  strict: false,
  // Popular packages ship single modules over 3 MB and folders over 16 MB.
  maxFileBytes: 32 * 1024 * 1024,
  maxTotalBytes: 512 * 1024 * 1024,
  exclude: [],
  entry: null,
  reach: null,
  cache: null,
  name: null,
  program: null,
  lazy: null,
  commonjs: true,
});

export interface UnresolvedImport {
  readonly path: string;
  readonly line: number;
  readonly column: number;
  readonly specifier: string;
  readonly reason: string;
}

/** A file that does not parse (or has an early error): published marked, its import fails. */
export interface BrokenModule extends ModuleError {
  readonly path: string;
}

export interface BuildResult {
  readonly content: SnapshotContent;
  readonly unresolved: readonly UnresolvedImport[];
  /** Modules published marked because they do not parse; sorted by path. */
  readonly broken: readonly BrokenModule[];
  readonly skipped: readonly SkippedFile[];
  /** Module paths transformed in this build (the rest came from the builder's table or its build cache). */
  readonly transformed: readonly string[];
  /** Module paths whose blob differs from the previous build (added, changed or removed). */
  readonly changed: readonly string[];
  readonly totalBytes: number;
  /** Packages the modules import that are not installed in the folder: clients must have them. */
  readonly missingPackages: readonly string[];
  readonly durationMs: number;
  /** The whole build came from the folder's build record (record.ts): no file was read, no import resolved. */
  readonly restored?: boolean;
  /** Lazily imported modules left unbuilt (BuildOptions.lazy): `extend` builds one at its first read. */
  readonly deferred?: readonly string[];
  /** The packages the unbuilt modules import: a start loads them all the same. */
  readonly deferredExternals?: KeptBuild['deferredExternals'];
}

/** Files whose kind a package scope decides (`.js`, `.ts`, and a file without an extension); `.mjs`/`.mts` are ES modules, `.cjs`/`.cts` CommonJS, by name. */
const SCRIPT_FILE = /(?:\.[jt]s|(?:^|\/)[^./]+)$/;
/** A file name without an extension. */
const EXTENSIONLESS = /(?:^|\/)[^./]+$/;

/** The files the folder's package.json names in `bin` (a string, or command → path), as module paths. */
function binPaths(root: string): Set<string> {
  const paths = new Set<string>();
  try {
    const bin = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin?: unknown } | null)?.bin;
    for (const value of typeof bin === 'string' ? [bin] : bin !== null && typeof bin === 'object' ? Object.values(bin) : []) {
      if (typeof value === 'string') paths.add(posix.normalize(value.replaceAll('\\', '/')).replace(/^\.\//, ''));
    }
  } catch {
    // No package.json, or not JSON: no commands.
  }
  return paths;
}

interface Entry {
  readonly file: FoundFile;
  readonly sourceHash: string;
  /** null when the file does not parse: then `error` says why and the blob is the source. */
  readonly transform: ModuleTransform | null;
  /** The transform came from the build cache, not from running the transformer. */
  readonly cached?: boolean;
  readonly error: ModuleError | null;
  readonly blob: Buffer;
  readonly blobHash: string;
  readonly map: Buffer | null;
  readonly mapHash: string | null;
  /** For a file whose kind its package scope decided (no ES module syntax): that scope's `type`. */
  readonly scope?: string;
}

/** Build records waiting to be written, written at exit if their moment has not come (one listener for all builders). */
const recordsAtExit = new Set<() => void>();
let exitHooked = false;

/**
 * JSON with every character past ASCII escaped: the record is read back as latin1, a plain copy
 * of its bytes (UTF-8 decoding and validation cost more than the parse).
 */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A module as its build record kept it, its file checked unchanged at `checkedAt`. */
function keptEntry(item: KeptModule, checkedAt: number): Entry {
  const file: FoundFile = { path: item.path, file: item.file, size: item.size, mtimeMs: item.mtimeMs, ctimeMs: item.ctimeMs, ino: item.ino, seenAt: checkedAt, ...(item.executable ? { executable: true } : {}) };
  const scope = typeof item.scope === 'string' ? { scope: item.scope } : {};
  if (item.transform === null) {
    return { file, sourceHash: item.sourceHash, transform: null, error: item.error, cached: true, blob: Buffer.from(item.source!, 'base64'), blobHash: item.blobHash, map: null, mapHash: null, ...scope };
  }
  const { transform } = item;
  return { file, sourceHash: item.sourceHash, transform, error: null, cached: true, blob: Buffer.from(transform.code), blobHash: item.blobHash, map: transform.map === null ? null : Buffer.from(transform.map), mapHash: item.mapHash, ...scope };
}

export function formatUnresolved(item: UnresolvedImport): string {
  return `${item.path}:${item.line}:${item.column}: cannot resolve "${item.specifier}": ${item.reason}`;
}

export function formatBroken(item: BrokenModule): string {
  return `${item.path}:${item.line}:${item.column}: ${item.message}`;
}

/** The transform, or the reason the file is not a module livemod can run. */
function transformOrError(path: string, source: string): { transform: ModuleTransform; error: null } | { transform: null; error: ModuleError } {
  try {
    return { transform: transformModule(path, source), error: null };
  } catch (error) {
    const details = error instanceof LivemodError && error.code === ErrorCodes.BUILD_FAILED ? error.details : null;
    if (!details || typeof details.reason !== 'string') throw error;
    return { transform: null, error: { message: details.reason, line: details.line as number, column: details.column as number } };
  }
}

function readPackageInfo(root: string): PackageInfo | null {
  let text: string;
  try {
    text = readFileSync(`${root}/package.json`, 'utf8');
  } catch {
    return null;
  }
  try {
    const json = JSON.parse(text) as Record<string, unknown>;
    return {
      name: typeof json.name === 'string' ? json.name : null,
      exports: json.exports,
      imports: json.imports,
      main: typeof json.main === 'string' ? json.main : null,
    };
  } catch {
    throw new LivemodError('build', ErrorCodes.BUILD_FAILED, `package.json in ${root} is not valid JSON; fix it (it decides how the package's own name resolves)`, { path: 'package.json' });
  }
}

export class SnapshotBuilder {
  readonly root: string;
  readonly options: Readonly<BuildOptions>;
  private entries = new Map<string, Entry>();
  private readonly skipped = new Map<string, SkippedFile>();
  private readonly dirty = new Set<string>();
  private scanned = false;
  /**
   * Module files of the folder, by path: all of them after a walk; in reach mode, only those
   * looked at so far (null: no module there), since a local run of one file in a big folder
   * should not walk the folder.
   */
  private readonly files = new Map<string, FoundFile | null>();
  /**
   * During one build in reach mode: each folder's entry names, read once, so a resolution
   * candidate that is not there (\`x.ts\` beside \`x.js\`, \`x/index.ts\`) costs no syscall.
   */
  private listings: Map<string, ReadonlySet<string> | null> | null = null;
  /**
   * Every folder resolution looked in during this builder's life, with its sorted names (null:
   * absent); false once a later look found other names (a build record is then never whole).
   */
  private readonly consulted = new Map<string, readonly string[] | null | false>();
  /** Listed paths resolution took for no module, with what each was (record.ts pathIdentity), for the build record. */
  private readonly rejected = new Map<string, string>();
  /** The last build, while its record waits to be written, and what writes it now. */
  private pendingRecord: BuildResult | null = null;
  private writePending: (() => void) | null = null;
  /** Modules a stale build record vouches for (their files are unchanged): the first build reads none of them. */
  private known: Map<string, Entry> | null = null;
  private filesChanged = false;
  private readonly roots: Set<string>;
  /** The roots the last build walked from (its entry and package.json included): a record's start builds what they reach. */
  private walkRoots: readonly string[] = [];
  /** Lazily imported modules a restored build left unbuilt. */
  private readonly deferred = new Set<string>();
  /** Deferred modules a first read asked for (extend), for the next build to add; not kept as roots, so the next start defers them again. */
  private readonly toGrow = new Set<string>();
  /** extend() added a root since the last build: the next build walks. */
  private rootsAdded = false;
  /**
   * Since a restore, until a build walks: the record taken, the folder state it was made in, its
   * segment once read (what the start left out), and the last result.
   */
  private segmentBase: { kept: KeptBuild; dirs: string; rest: Map<string, KeptModule> | null; result: BuildResult } | null = null;
  /** What the segment says of the modules it holds that do not parse or import what is not there. */
  private readonly restFindings: { unresolved: UnresolvedImport[]; broken: BrokenModule[] } = { unresolved: [], broken: [] };
  /** Records of the last build, reused for unchanged files while no module was added or removed. */
  private records = new Map<string, { entry: Entry; record: ModuleRecord }>();
  private readonly program: ProgramCollector | null;
  /** Which files are modules: by extension, less what --exclude leaves out. */
  private readonly accept: (path: string) => boolean = isModuleFile;
  /** CommonJS records with their re-exported names added (addReexports), kept so an unchanged build gives the same object. */
  private readonly widened = new WeakMap<ModuleRecord, { key: string; record: ModuleRecord }>();
  /** Package scopes looked up during one build: folder (a path) → its package.json `type` ("" none; null: no package.json there). */
  private readonly scopes = new Map<string, string | null>();
  /** Every package scope a build of this builder looked up (or its restored record had), for the build record. */
  private readonly scopesSeen = new Map<string, string | null>();
  /** What travelled in the last build, to tell a change of a file or package from none. */
  private lastProgram: { files: Readonly<Record<string, BlobRef>>; packages: string } | null = null;

  constructor(dir: string, options: Partial<BuildOptions> = {}) {
    let root: string;
    try {
      root = realpathSync(dir);
      if (!statSync(root).isDirectory()) throw new Error('not a directory');
    } catch {
      throw new LivemodError('build', ErrorCodes.DIR_INVALID, `${dir} is not a readable folder; pass the folder of modules to publish`, { dir });
    }
    this.root = root;
    this.options = Object.freeze({ ...DEFAULT_BUILD_OPTIONS, ...options, exclude: [...(options.exclude ?? [])] });
    this.roots = new Set(this.options.reach ?? []);
    this.program = this.options.program ? new ProgramCollector(root, this.limits(), this.options.program) : null;
    const exclude = this.options.program?.exclude ?? [];
    if (exclude.length > 0) {
      const rules = ignoreModule.default().add([...exclude]);
      this.accept = (path) => isModuleFile(path) && !rules.ignores(path);
    }
    // A file without an extension (a package's `bin/tool`, `#!/usr/bin/env node`) is a module when named as the one to run: Node runs it.
    // So is a command the folder's package.json names in `bin`, which a URL may name to run.
    const byName = this.accept;
    const commands = binPaths(root);
    this.accept = (path) => byName(path) || (EXTENSIONLESS.test(path) && (path === this.options.entry || this.roots.has(path) || commands.has(path)));
  }

  /** Reach mode: also build these modules (and what they reach) from the next build on. */
  extend(paths: Iterable<string>): void {
    for (const path of paths) {
      if (this.deferred.has(path)) {
        this.toGrow.add(path);
      } else if (!this.roots.has(path)) {
        this.roots.add(path);
        this.rootsAdded = true;
      }
    }
  }

  /** Where `specifier` imported from `importer` (a module path; null: the folder itself) resolves among all the folder's files. */
  resolve(specifier: string, importer: string | null): string | null {
    const resolution = resolveSpecifier(specifier, importer ?? 'index.js', this.resolveTree());
    return resolution.kind === 'module' ? resolution.module : null;
  }

  /** The module file at `path`, looked at now in reach mode if it was not yet. */
  private file(path: string): FoundFile | null {
    if (this.options.reach === null || this.files.has(path)) return this.files.get(path) ?? null;
    if (this.listings) {
      const slash = path.lastIndexOf('/');
      const dir = slash === -1 ? '' : path.slice(0, slash);
      let names = this.listings.get(dir);
      if (names === undefined) {
        const list = folderNames(dir === '' ? this.root : join(this.root, ...dir.split('/')));
        names = list === null ? null : new Set(list);
        this.listings.set(dir, names);
        const before = this.consulted.get(dir);
        this.consulted.set(dir, before === undefined || sameNames(before, list) ? list : false);
      }
      if (names === null || !names.has(path.slice(slash + 1))) {
        this.files.set(path, null);
        return null;
      }
    }
    // What is there is taken before it is examined: a change after that shows in the record as a different identity.
    const identity = this.recording() ? pathIdentity(join(this.root, ...path.split('/'))) : null;
    const found = examineFile(this.root, path, this.limits(), this.accept);
    if (found !== null && 'reason' in found) this.skipped.set(path, found);
    const file = found !== null && !('reason' in found) ? found : null;
    this.files.set(path, file);
    if (identity !== null && file === null && identity !== 'absent') this.rejected.set(path, identity);
    else this.rejected.delete(path);
    return file;
  }

  private resolveTree(): ResolveTree {
    return { has: (path) => this.file(path) !== null, packageInfo: this.file('package.json') ? readPackageInfo(this.root) : null };
  }

  /** Marks module paths (relative, posix) as changed, added or removed since the last build. */
  invalidate(paths: Iterable<string>): void {
    for (const path of paths) this.dirty.add(path);
  }

  /** Forgets everything known, so the next build rescans the folder. */
  rescan(): void {
    this.scanned = false;
  }

  /** Checked before transforming anything, so an oversized folder costs a directory walk only. */
  private checkTotal(totalBytes: number): void {
    if (totalBytes > this.options.maxTotalBytes) {
      throw new LivemodError('build', ErrorCodes.TOO_LARGE, `${this.root} holds ${formatBytes(totalBytes)} of modules, over the ${formatBytes(this.options.maxTotalBytes)} limit; raise it with --max-total-size or publish a smaller folder`, { totalBytes });
    }
  }

  private limits(): { maxFileBytes: number; exclude: readonly string[] } {
    return { maxFileBytes: this.options.maxFileBytes, exclude: this.options.exclude };
  }

  /** `force`: read the file even if size and mtime match (an event said it changed). */
  private load(file: FoundFile, force: boolean): Entry {
    const previous = this.entries.get(file.path) ?? this.known?.get(file.path);
    const before = previous?.file;
    if (!force && before && before.mtimeMs === file.mtimeMs && before.size === file.size && before.file === file.file && before.ctimeMs === file.ctimeMs && before.ino === file.ino && this.sameScope(previous!)) return previous!;
    const bytes = readModuleFile(file.file, this.options.maxFileBytes);
    if (!bytes) throw new LivemodError('build', ErrorCodes.TOO_LARGE, `${file.path} grew past the ${formatBytes(this.options.maxFileBytes)} per-file limit while it was read; it is left out until it is smaller (raise it with --max-file-size)`, { path: file.path });
    const sourceHash = sha256Hex(bytes);
    if (previous && previous.sourceHash === sourceHash && this.sameScope(previous)) return { ...previous, file };
    const cached = this.options.cache?.get(file.path, sourceHash) ?? null;
    const text = bytes.toString('utf8');
    const { transform, error } = cached ?? transformOrError(file.path, text);
    if (!cached) this.options.cache?.set(file.path, sourceHash, transform ? { transform, error: null } : { transform: null, error: error! });
    const scope = this.scopeDeciding(file.path, text, transform);
    if (scope !== undefined && scope !== 'module') {
      return { file, sourceHash, transform: nativeModule(file.path, text), error: null, cached: cached !== null, blob: bytes, blobHash: sourceHash, map: null, mapHash: null, scope };
    }
    const scoped = scope !== undefined ? { scope } : {};
    if (!transform) return { file, sourceHash, transform, error, cached: cached !== null, blob: bytes, blobHash: sourceHash, map: null, mapHash: null, ...scoped };
    const blob = Buffer.from(transform.code);
    const map = transform.map === null ? null : Buffer.from(transform.map);
    return { file, sourceHash, transform, error, cached: cached !== null, blob, blobHash: sha256Hex(blob), map, mapHash: map ? sha256Hex(map) : null, ...scoped };
  }

  /**
   * For a `.js`/`.ts` file whose kind its package scope decides — it has no ES module syntax (or
   * does not parse as a module but does as CommonJS: sloppy code such as `with`, a top-level `return`)
   * — that scope's `type`: Node runs the file as CommonJS unless it is "module", and livemod
   * then leaves it to Node (a `.cjs`/`.cts` file is CommonJS by its name, transformModule).
   * undefined for a file its syntax or name decides.
   */
  private scopeDeciding(path: string, text: string, transform: ModuleTransform | null): string | undefined {
    // A snapshot of modules only (the API's default) lays out no files for Node to load a file from: every such file is a live module there.
    if (!this.options.commonjs || !SCRIPT_FILE.test(path) || (this.program === null && this.options.reach === null)) return undefined;
    if (transform ? transform.esm !== false : !parsesAsCommonJs(path, text)) return undefined;
    return this.scopeType(path);
  }

  /** Whether a file its scope decides is still in a scope of the same type (a package.json's `type` may have changed). */
  private sameScope(entry: Entry): boolean {
    return entry.scope === undefined || entry.scope === this.scopeType(entry.file.path);
  }

  /**
   * The `type` of the package.json nearest above `path` ("" without one: Node's default,
   * CommonJS), looked up as Node does, past the folder up to the file system's root: a local run
   * is Node's reading of the files on disk, and a published version is the publisher's.
   */
  private scopeType(path: string): string {
    let dir = dirname(join(this.root, ...path.split('/')));
    for (;;) {
      let type = this.scopes.get(dir);
      if (type === undefined) {
        type = packageScopeAt(dir);
        this.scopes.set(dir, type);
        this.scopesSeen.set(dir, type);
      }
      if (type !== null) return type;
      const up = dirname(dir);
      if (up === dir || basename(dir) === 'node_modules') return '';
      dir = up;
    }
  }

  /**
   * Builds the folder; after the first build only invalidated paths are looked at again. With
   * `hold`, files marked changed are left as the last build had them, and stay marked for the
   * next build: a build that only reaches further (a local run's import() of an unbuilt module)
   * must not take an edit the watcher has yet to publish as a version of its own.
   */
  build(options: { hold?: boolean } = {}): BuildResult {
    try {
      return this.buildNow(options);
    } finally {
      // Listings hold for one build only: between builds files come and go.
      this.listings = null;
      this.scopes.clear();
      this.known = null;
    }
  }

  /** Reach-mode builds of modules only (local runs) with a cache keep a record of themselves (record.ts). */
  private recording(): this is { options: { cache: Required<Pick<TransformCache, 'loadRecord' | 'saveRecord'>> } } {
    return this.options.reach !== null && this.options.program === null && typeof this.options.cache?.loadRecord === 'function' && typeof this.options.cache.saveRecord === 'function';
  }

  private recordKey(): string {
    const { reach, entry, exclude, maxFileBytes, maxTotalBytes, strict, name, commonjs } = this.options;
    return recordKey(recordFingerprint(), this.root, { reach: [...(reach ?? [])].sort(), entry, exclude, maxFileBytes, maxTotalBytes, strict, name, lazy: policyKey(this.deferPolicy()), ...(commonjs ? {} : { commonjs }) });
  }

  /**
   * The lazy policy this builder defers by: a recording build's, not a strict one's, and not one
   * with an eager filter function — a record cannot tell that function from another of the same
   * text (one that reads a list from a file), so a record made under it could defer an import
   * the function now keeps eager.
   */
  private deferPolicy(): LazyPolicy | null {
    const policy = this.options.lazy;
    return policy !== null && policy.lazy !== 'none' && policy.eager?.filter === undefined && !this.options.strict && this.recording() ? policy : null;
  }

  /**
   * The first build, taken from the folder's build record when it still holds (null: build). A
   * record that holds only in part leaves its unchanged modules known, so they are not read.
   */
  private restore(started: number): BuildResult | null {
    if (!this.recording()) return null;
    const kept = parseRecord(this.options.cache.loadRecord(this.recordKey()), this.recordKey());
    if (kept === null) return null;
    const checked = checkRecord(kept, this.root, this.options.maxFileBytes);
    const { unchanged, racy, checkedAt } = checked;
    const entries = new Map<string, Entry>();
    for (const item of kept.modules) if (unchanged.has(item.path)) entries.set(item.path, keptEntry(item, checkedAt));
    // What the last run reached through import() is built at start again: it will likely be reached again.
    for (const root of kept.roots) this.roots.add(root);
    // Every import of a module the record holds leads to a module it holds or to one it deferred.
    const present = new Set(kept.modules.map((item) => item.path));
    const deferred = new Set((kept.deferred ?? []).filter((path) => !present.has(path)));
    const closed = kept.modules.every((item) => item.record.imports.every((entry) => entry.kind !== 'module' || entry.module === undefined || present.has(entry.module) || deferred.has(entry.module)));
    const whole = checked.whole && closed && (deferred.size === 0 || kept.rest !== undefined);
    if (!whole) {
      this.known = entries;
      return null;
    }
    const modules: Record<string, ModuleRecord> = {};
    const blobs = new Map<string, Buffer>();
    for (const item of kept.modules) {
      const entry = entries.get(item.path)!;
      const record = Object.freeze(item.record);
      modules[item.path] = record;
      this.records.set(item.path, { entry, record });
      this.files.set(item.path, entry.file);
      blobs.set(entry.blobHash, entry.blob);
      if (entry.map && entry.mapHash) blobs.set(entry.mapHash, entry.map);
    }
    for (const [dir, names] of Object.entries(kept.dirs)) this.consulted.set(dir, names);
    for (const [dir, type] of Object.entries(kept.scopes ?? {})) this.scopesSeen.set(dir, type);
    for (const [path, identity] of Object.entries(kept.rejected ?? {})) {
      this.rejected.set(path, identity);
      this.files.set(path, null);
    }
    for (const item of kept.skipped) this.skipped.set(item.path, item);
    this.entries = entries;
    this.scanned = true;
    this.filesChanged = false;
    this.checkStrict(kept.broken, kept.unresolved);
    const result: BuildResult = {
      content: { name: kept.name, modules, entry: kept.entry, blobs },
      unresolved: kept.unresolved,
      broken: kept.broken,
      skipped: [...kept.skipped],
      transformed: [],
      changed: [...entries.keys()].sort(),
      totalBytes: kept.totalBytes,
      missingPackages: [],
      durationMs: monotonicMs() - started,
      restored: true,
      ...(deferred.size > 0 ? { deferred: [...deferred], ...(kept.deferredExternals?.length ? { deferredExternals: kept.deferredExternals } : {}) } : {}),
    };
    for (const path of deferred) this.deferred.add(path);
    this.segmentBase = { kept, dirs: dirsHash(kept.dirs), rest: null, result };
    // Files read because they were written close to the record (racy) are settled now: written
    // again, the record spares the next start those reads.
    if (racy > 0) this.saveRecord(result);
    return result;
  }

  /**
   * A restored build grown by the deferred modules asked for (`extend`) and their graphs, taken
   * from the record's segment: their files stat as kept and the folders hold as the record found
   * them, so their records stand as kept; no file is read, no import resolved. null: build
   * instead (the segment is gone or from another folder state, a file changed, an edit is pending).
   */
  private growFromSegment(started: number): BuildResult | null {
    const base = this.segmentBase;
    if (base === null || this.rootsAdded || this.dirty.size > 0 || !this.recording() || base.kept.rest === undefined) return null;
    if (!foldersHold(base.kept.dirs, base.kept.rejected ?? {}, this.root)) return null;
    if (base.rest === null) {
      const segment = parseSegment(this.options.cache.loadRecord(base.kept.rest), base.dirs);
      if (segment === null) return null;
      base.rest = new Map(segment.modules.map((item) => [item.path, item]));
      for (const item of segment.unresolved) this.restFindings.unresolved.push(item);
      for (const item of segment.broken) this.restFindings.broken.push(item);
    }
    // The graphs of the modules asked for, as far as they are not built already.
    const adding = new Map<string, KeptModule>();
    const queue = [...this.toGrow];
    for (let at = 0; at < queue.length; at += 1) {
      const path = queue[at]!;
      if (this.entries.has(path) || adding.has(path)) continue;
      const item = base.rest.get(path);
      if (!item) return null;
      adding.set(path, item);
      for (const entry of item.record.imports) if (entry.kind === 'module' && entry.module !== undefined) queue.push(entry.module);
    }
    const checkedAt = Date.now();
    const { unchanged, changed } = checkModules([...adding.values()], this.root, this.options.maxFileBytes, base.kept.savedAt);
    if (changed) {
      // The build that follows reads none of the unchanged files.
      this.known = new Map([...adding.values()].filter((item) => unchanged.has(item.path)).map((item) => [item.path, keptEntry(item, checkedAt)]));
      return null;
    }
    const last = base.result;
    const modules: Record<string, ModuleRecord> = { ...last.content.modules };
    const blobs = new Map(last.content.blobs);
    for (const item of adding.values()) {
      const entry = keptEntry(item, checkedAt);
      const record = Object.freeze(item.record);
      modules[item.path] = record;
      this.entries.set(item.path, entry);
      this.records.set(item.path, { entry, record });
      this.files.set(item.path, entry.file);
      blobs.set(entry.blobHash, entry.blob);
      if (entry.map && entry.mapHash) blobs.set(entry.mapHash, entry.map);
    }
    for (const path of [...this.toGrow, ...adding.keys()]) this.deferred.delete(path);
    this.toGrow.clear();
    const result: BuildResult = {
      content: { ...last.content, modules, blobs },
      unresolved: [...last.unresolved, ...this.restFindings.unresolved.filter((item) => adding.has(item.path))],
      broken: [...last.broken, ...this.restFindings.broken.filter((item) => adding.has(item.path))].sort((a, b) => (a.path < b.path ? -1 : 1)),
      skipped: last.skipped,
      transformed: [],
      changed: [...adding.keys()].sort(),
      totalBytes: last.totalBytes + [...adding.values()].reduce((sum, item) => sum + item.size, 0),
      missingPackages: [],
      durationMs: monotonicMs() - started,
      restored: true,
      ...(this.deferred.size > 0 ? { deferred: [...this.deferred] } : {}),
      ...(last.deferredExternals ? { deferredExternals: last.deferredExternals } : {}),
    };
    this.segmentBase = { ...base, result };
    return result;
  }

  /**
   * Keeps the build just made as the folder's record: written a moment later, or at exit if that
   * comes first, so a start's output and a watcher's swap do not wait for it, and rebuilds in a
   * burst write it once.
   */
  private saveRecord(result: BuildResult): void {
    if (!this.recording()) return;
    const pending = this.pendingRecord === null;
    this.pendingRecord = result;
    if (!pending) return;
    const write = (): void => {
      clearTimeout(timer);
      recordsAtExit.delete(write);
      this.writePending = null;
      const last = this.pendingRecord;
      this.pendingRecord = null;
      if (last !== null) this.writeRecord(last);
    };
    this.writePending = write;
    const timer = setTimeout(write, 200);
    timer.unref();
    if (!exitHooked) {
      exitHooked = true;
      process.on('exit', () => {
        for (const each of [...recordsAtExit]) each();
      });
    }
    recordsAtExit.add(write);
  }

  /** Writes the build record waiting to be written now (it is written shortly after a build, or at exit). */
  flushRecord(): void {
    this.writePending?.();
  }

  /** Writes the record of the builder's state as of `result`, its last build (best effort: it is a cache). */
  private writeRecord(result: BuildResult): void {
    if (!this.recording()) return;
    const modules = new Map<string, KeptModule>();
    for (const [path, { entry, record }] of this.records) {
      const { file } = entry;
      // Files found before record keeping knew their identity are left out: the next start reads them.
      if (file.ino === undefined || file.ctimeMs === undefined) continue;
      modules.set(path, {
        path,
        file: file.file,
        size: file.size,
        mtimeMs: file.mtimeMs,
        ctimeMs: file.ctimeMs,
        ino: file.ino,
        ...(file.seenAt !== undefined ? { seenAt: file.seenAt } : {}),
        ...(file.executable ? { executable: true } : {}),
        sourceHash: entry.sourceHash,
        blobHash: entry.blobHash,
        mapHash: entry.mapHash,
        transform: entry.transform,
        error: entry.error,
        ...(entry.transform === null ? { source: entry.blob.toString('base64') } : {}),
        ...(entry.scope !== undefined ? { scope: entry.scope } : {}),
        record,
      });
    }
    const key = this.recordKey();
    const dirs = Object.fromEntries(this.consulted);
    let main: KeptModule[] = [...modules.values()];
    let unresolved = result.unresolved;
    let broken = result.broken;
    let totalBytes = result.totalBytes;
    let deferred: readonly string[] = [];
    let rest: string | undefined;
    let deferredExternals: KeptBuild['deferredExternals'] = [];
    const policy = this.deferPolicy();
    const base = this.segmentBase;
    if (base !== null) {
      // Restored and not walked since: the start's part of the record is the same, and so are its segment and what it deferred.
      const inMain = new Set(base.kept.modules.map((item) => item.path));
      main = main.filter((item) => inMain.has(item.path));
      ({ unresolved, broken, totalBytes } = base.kept);
      deferred = base.kept.deferred ?? [];
      rest = base.kept.rest;
      deferredExternals = base.kept.deferredExternals ?? [];
    } else if (policy !== null) {
      // The start builds what the roots reach through eager imports; the rest of the build goes
      // to a segment, written first (the record names it by the hash of its text). A namespace
      // import is never deferred: its face needs the module's names before the module is built.
      const records = new Map([...this.records].map(([path, { record }]) => [path, record]));
      // A build that walked holds the whole graph: a module it lacks (unresolved) counts as awaiting.
      const withTla = withTlaBelow(Object.fromEntries(records), () => true);
      const cut = segmentBuild(records, this.walkRoots, (importer, record, index) => {
        const entry = record.imports[index]!;
        return !entry.names.includes('*') && !withTla.has(entry.module!) && lazyEdge(policy, record, index, importer, 'module', entry.module).lazy;
      });
      if (cut.deferred.size > 0) {
        const within = (paths: ReadonlySet<string>, inside: boolean) => ({
          modules: main.filter((item) => paths.has(item.path) === inside),
          unresolved: result.unresolved.filter((item) => paths.has(item.path) === inside),
          broken: result.broken.filter((item) => paths.has(item.path) === inside),
        });
        const left = within(cut.main, false);
        const segment: KeptSegment = { version: RECORD_VERSION, dirs: dirsHash(dirs), ...left, totalBytes: left.modules.reduce((sum, item) => sum + item.size, 0) };
        const text = asciiJson(segment);
        rest = sha256Hex(Buffer.from(text)).slice(0, 40);
        this.options.cache.saveRecord(rest, text);
        deferred = [...cut.deferred];
        // The packages the left-out modules import (but those lazy mode `all` leaves to a first read).
        const packages = new Map<string, { specifier: string; attributes?: Readonly<Record<string, string>> }>();
        for (const item of left.modules) {
          for (const [index, entry] of item.record.imports.entries()) {
            if (entry.dynamic || entry.kind !== 'external' || lazyEdge(policy, item.record, index, item.path, 'external', undefined).lazy) continue;
            packages.set(JSON.stringify([entry.specifier, entry.attributes ?? null]), { specifier: entry.specifier, ...(entry.attributes ? { attributes: entry.attributes } : {}) });
          }
        }
        deferredExternals = [...packages.values()];
        ({ modules: main, unresolved, broken } = within(cut.main, true));
        totalBytes = main.reduce((sum, item) => sum + item.size, 0);
      }
    }
    const kept: KeptBuild = {
      version: RECORD_VERSION,
      key,
      savedAt: Date.now(),
      roots: [...this.roots],
      dirs,
      rejected: Object.fromEntries(this.rejected),
      modules: main,
      ...(deferred.length > 0 && rest !== undefined ? { deferred, rest, ...(deferredExternals.length > 0 ? { deferredExternals } : {}) } : {}),
      ...(this.scopesSeen.size > 0 ? { scopes: Object.fromEntries(this.scopesSeen) } : {}),
      entry: result.content.entry,
      name: result.content.name ?? this.appName(null),
      unresolved,
      broken,
      skipped: result.skipped,
      totalBytes,
    };
    this.options.cache.saveRecord(key, asciiJson(kept));
  }

  private checkStrict(broken: readonly BrokenModule[], unresolved: readonly UnresolvedImport[]): void {
    if (this.options.strict && broken.length > 0) {
      throw new LivemodError('build', ErrorCodes.BUILD_FAILED, `${broken.length} module(s) do not parse, with --strict: ${broken.slice(0, 5).map(formatBroken).join('; ')}${broken.length > 5 ? '; …' : ''}`, { broken });
    }
    if (this.options.strict && unresolved.length > 0) {
      throw new LivemodError('build', ErrorCodes.UNRESOLVED_IMPORT, `${unresolved.length} unresolved import(s) with --strict: ${unresolved.slice(0, 5).map(formatUnresolved).join('; ')}${unresolved.length > 5 ? '; …' : ''}`, { unresolved });
    }
  }

  private buildNow(options: { hold?: boolean }): BuildResult {
    const hold = options.hold === true;
    const started = monotonicMs();
    const fresh = !this.scanned;
    if (fresh && !hold && this.dirty.size === 0) {
      const restored = this.restore(started);
      if (restored !== null) return restored;
    }
    if (this.toGrow.size > 0) {
      const grown = this.growFromSegment(started);
      if (grown !== null) return grown;
    }
    // This build walks, deferring nothing: what the record knew no longer describes the builder's
    // state, and the record written after it holds the whole graph again.
    this.segmentBase = null;
    this.rootsAdded = false;
    this.toGrow.clear();
    this.deferred.clear();
    const transformed: string[] = [];
    const next = new Map<string, Entry>();
    const errors: LivemodError[] = [];
    const take = (file: FoundFile, force: boolean): void => {
      const before = this.entries.get(file.path);
      if (hold && before && this.dirty.has(file.path)) {
        next.set(file.path, before);
        return;
      }
      try {
        const entry = this.load(file, force);
        if (entry !== before && entry.transform !== before?.transform && entry.cached !== true) transformed.push(file.path);
        next.set(file.path, entry);
      } catch (error) {
        if (!(error instanceof LivemodError)) throw error;
        errors.push(error);
      }
    };

    if (this.options.reach !== null) {
      this.listings = new Map();
      // Reach mode looks at files as resolution asks for them: what changed is looked at again.
      if (!this.scanned) {
        this.files.clear();
        this.skipped.clear();
      }
      if (!hold) {
        for (const path of this.dirty) {
          this.files.delete(path);
          this.skipped.delete(path);
        }
      }
      this.filesChanged ||= (this.dirty.size > 0 && !hold) || !this.scanned;
    } else if (!this.scanned) {
      const { files, skipped } = listFiles(this.root, this.limits(), this.accept);
      this.skipped.clear();
      for (const item of skipped) this.skipped.set(item.path, item);
      this.checkTotal(files.reduce((sum, file) => sum + file.size, 0));
      this.files.clear();
      for (const file of files) this.files.set(file.path, file);
      this.filesChanged = true;
    } else {
      for (const path of this.dirty) {
        this.skipped.delete(path);
        const had = this.files.delete(path);
        const found = examineFile(this.root, path, this.limits(), this.accept);
        if (found !== null && 'reason' in found) this.skipped.set(path, found);
        else if (found !== null) this.files.set(path, found);
        if (had !== (found !== null && !('reason' in found))) this.filesChanged = true;
      }
    }
    if (this.options.reach === null) {
      for (const file of this.files.values()) if (file) take(file, this.dirty.has(file.path));
    } else {
      // Reach mode: what the roots import, statically or through a literal import(), transitively.
      const tree = this.resolveTree();
      const roots = [...this.roots];
      if (roots.length === 0 || this.options.entry !== null) {
        const entry = this.options.entry ?? defaultEntry(tree);
        if (entry !== null) roots.push(entry);
      }
      if (this.file('package.json')) roots.push('package.json');
      this.walkRoots = roots;
      const queue = roots.filter((path) => this.file(path) !== null);
      for (let at = 0; at < queue.length; at += 1) {
        const path = queue[at]!;
        if (next.has(path)) continue;
        take(this.file(path)!, this.dirty.has(path));
        const transform = next.get(path)?.transform;
        if (!transform) continue;
        for (const specifier of [...transform.imports.map((site) => site.specifier), ...(transform.requires ?? [])]) {
          const resolution = resolveSpecifier(specifier, path, tree);
          if (resolution.kind === 'module' && !next.has(resolution.module)) queue.push(resolution.module);
        }
      }
    }
    if (errors.length > 0) {
      const first = errors[0]!;
      const more = errors.length > 1 ? ` (and ${errors.length - 1} more: ${errors.slice(1, 4).map((error) => error.details.path).join(', ')}${errors.length > 4 ? ', …' : ''})` : '';
      throw new LivemodError('build', ErrorCodes.BUILD_FAILED, first.message.replace(/^\[livemod build\] /, '') + more, { ...first.details, errors: errors.length });
    }

    let totalBytes = 0;
    for (const entry of next.values()) totalBytes += entry.file.size;
    this.checkTotal(totalBytes);

    const treeChanged = this.filesChanged || next.size !== this.entries.size || [...next.keys()].some((path) => !this.entries.has(path)) || next.get('package.json') !== this.entries.get('package.json');
    this.filesChanged = false;
    const content = this.assemble(next, treeChanged);
    const changedSet = new Set([...next.keys(), ...this.entries.keys()].filter((path) => next.get(path)?.blobHash !== this.entries.get(path)?.blobHash));
    let missingPackages: readonly string[] = [];
    if (this.program) {
      const required = [...next.values()].flatMap((entry) => entry.transform?.packages ?? []);
      const program = this.program.collect(content.snapshot.modules, this.options.maxTotalBytes, required);
      const blobs = new Map(content.snapshot.blobs);
      for (const [hash, bytes] of program.blobs) blobs.set(hash, bytes);
      // Node loads a CommonJS module from the version's folder: it travels as a file even where the ignore rules leave files out.
      for (const [path, record] of Object.entries(content.snapshot.modules)) {
        if (record.commonjs && program.files[path]?.hash !== record.blob.hash) program.files[path] = { hash: record.blob.hash, size: record.blob.size };
      }
      content.snapshot = {
        ...content.snapshot,
        blobs,
        files: program.files,
        ...(program.packages ? { packages: program.packages } : {}),
        ...(program.layout ? { layout: program.layout } : {}),
        ...(program.links && Object.keys(program.links).length > 0 ? { links: program.links } : {}),
        externals: program.externals,
      };
      for (const item of program.skipped) this.skipped.set(item.path, item);
      missingPackages = program.missing;
      // A changed file that is not a module (a template, a .wasm) or a changed package is a new version too.
      const before = this.lastProgram;
      for (const path of new Set([...Object.keys(program.files), ...Object.keys(before?.files ?? {})])) {
        if (program.files[path]?.hash !== before?.files[path]?.hash) changedSet.add(path);
      }
      const packages = JSON.stringify([program.packages, program.layout, program.links, program.externals]);
      if (before && packages !== before.packages) changedSet.add('node_modules');
      this.lastProgram = { files: program.files, packages };
      totalBytes += program.totalBytes;
    }
    const changed = [...changedSet].sort();
    this.entries = next;
    if (!hold) this.dirty.clear();
    this.scanned = true;

    this.checkStrict(content.broken, content.unresolved);
    const result: BuildResult = {
      content: content.snapshot,
      unresolved: content.unresolved,
      broken: content.broken,
      skipped: [...this.skipped.values()].sort((a, b) => (a.path < b.path ? -1 : 1)),
      transformed: transformed.sort(),
      changed,
      totalBytes,
      missingPackages,
      durationMs: monotonicMs() - started,
    };
    if (fresh || changed.length > 0) this.saveRecord(result);
    return result;
  }

  /** Resolution depends on which modules exist: with the same set, an unchanged file's record stands. */
  private assemble(entries: ReadonlyMap<string, Entry>, treeChanged: boolean): { snapshot: SnapshotContent; unresolved: UnresolvedImport[]; broken: BrokenModule[] } {
    const records = new Map<string, { entry: Entry; record: ModuleRecord }>();
    // Resolution sees every module file of the folder; in reach mode, every module an import
    // resolves to was reached, so the manifest has it.
    const tree = this.resolveTree();
    const modules: Record<string, ModuleRecord> = {};
    const blobs = new Map<string, Buffer>();
    const unresolved: UnresolvedImport[] = [];
    const broken: BrokenModule[] = [];
    for (const [path, entry] of entries) {
      if (entry.error) broken.push({ path, ...entry.error });
      const previous = this.records.get(path);
      if (!treeChanged && previous?.entry === entry) {
        records.set(path, previous);
        modules[path] = previous.record;
        for (const item of previous.record.imports) {
          if (item.kind === 'unresolved') unresolved.push({ path, line: item.line!, column: item.column!, specifier: item.specifier, reason: item.reason! });
        }
        blobs.set(entry.blobHash, entry.blob);
        if (entry.map && entry.mapHash) blobs.set(entry.mapHash, entry.map);
        continue;
      }
      const transform = entry.transform;
      if (!transform) {
        const record: ModuleRecord = Object.freeze({ blob: { hash: entry.blobHash, size: entry.blob.byteLength }, map: null, imports: [], exports: [], star: [], tla: false, error: entry.error! });
        modules[path] = record;
        records.set(path, { entry, record });
        blobs.set(entry.blobHash, entry.blob);
        continue;
      }
      const imports: ImportRecord[] = transform.imports.map((site) => {
        const resolution = resolveSpecifier(site.specifier, path, tree);
        const base = { specifier: site.specifier, names: site.names, dynamic: site.dynamic, ...(site.defer ? { defer: true } : {}), ...(site.phase ? { phase: site.phase } : {}), ...(site.attributes ? { attributes: site.attributes } : {}) };
        if (resolution.kind === 'module') return { ...base, kind: 'module', module: resolution.module };
        if (resolution.kind === 'external') return { ...base, kind: 'external' };
        unresolved.push({ path, line: site.line, column: site.column, specifier: site.specifier, reason: resolution.reason });
        return { ...base, kind: 'unresolved', reason: resolution.reason, line: site.line, column: site.column };
      });
      // Frozen: the signer caches the canonical bytes of frozen records by identity.
      const record: ModuleRecord = Object.freeze({
        blob: { hash: entry.blobHash, size: entry.blob.byteLength },
        map: entry.map && entry.mapHash ? { hash: entry.mapHash, size: entry.map.byteLength } : null,
        imports,
        exports: transform.exports,
        star: transform.star,
        ...(Object.keys(transform.indirect).length > 0 ? { indirect: transform.indirect } : {}),
        tla: transform.tla,
        ...(transform.commonjs ? { commonjs: true as const } : {}),
      });
      modules[path] = record;
      records.set(path, { entry, record });
      blobs.set(entry.blobHash, entry.blob);
      if (entry.map && entry.mapHash) blobs.set(entry.mapHash, entry.map);
    }
    this.addReexports(modules, entries, tree);
    let entry = this.options.entry;
    if (entry !== null && this.file(entry) === null) {
      throw new LivemodError('build', ErrorCodes.BUILD_FAILED, `entry "${entry}" is not a module of ${this.root}; name a module path relative to the folder`, { entry });
    }
    entry ??= defaultEntry(tree);
    // Reach mode with roots of its own: the folder's entry is in the manifest only if reached.
    if (entry !== null && !entries.has(entry)) entry = null;
    this.records = records;
    broken.sort((a, b) => (a.path < b.path ? -1 : 1));
    return { snapshot: { name: this.appName(tree.packageInfo), modules, entry, blobs }, unresolved, broken };
  }

  /**
   * A CommonJS module's names with those of the files of the folder it re-exports whole
   * (`module.exports = require('./impl')`), as Node's loader follows its lexer's re-exports, so
   * that a named import of an index file links as in Node. A re-export of a package is not
   * followed: its names are what the file itself shows.
   */
  private addReexports(modules: Record<string, ModuleRecord>, entries: ReadonlyMap<string, Entry>, tree: ResolveTree): void {
    for (const [path, record] of Object.entries(modules)) {
      if (!record.commonjs || !entries.get(path)?.transform?.reexports) continue;
      const names = new Set(record.exports);
      const seen = new Set([path]);
      const queue = [path];
      for (let at = 0; at < queue.length && at < 1000; at += 1) {
        const from = queue[at]!;
        for (const specifier of entries.get(from)?.transform?.reexports ?? []) {
          const resolution = resolveSpecifier(specifier, from, tree);
          if (resolution.kind !== 'module' || seen.has(resolution.module) || !modules[resolution.module]?.commonjs) continue;
          seen.add(resolution.module);
          queue.push(resolution.module);
          for (const name of modules[resolution.module]!.exports) names.add(name);
        }
      }
      if (names.size === record.exports.length) continue;
      const exports = [...names].sort();
      const key = exports.join('\0');
      const kept = this.widened.get(record);
      if (kept?.key === key) {
        modules[path] = kept.record;
      } else {
        modules[path] = Object.freeze({ ...record, exports });
        this.widened.set(record, { key, record: modules[path] });
      }
    }
  }

  /** The name the manifest binds to: what the user gave, else the package's, else the folder's. */
  private appName(info: PackageInfo | null): string {
    const [name, from] = this.options.name !== null ? [this.options.name, '--name'] : info?.name ? [info.name, 'package.json "name"'] : [basename(this.root), 'the folder name'];
    const problem = appNameProblem(name);
    if (problem !== null) throw new LivemodError('build', ErrorCodes.BUILD_FAILED, `the app name from ${from} must be ${problem}; pass another with --name`, { name: name.slice(0, 200) });
    return name;  }
}

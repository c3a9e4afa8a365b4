// The program on disk: each app version's files laid out as a real folder (trees/<id>), each npm
// package version laid out once and shared (packages/<id>), both as hard links to the verified
// blobs, plus a per-process view (run/<pid>-<origin>) that points at the version the process
// runs. Live modules get file: URLs through the view, so Node's own idioms (import.meta.dirname,
// readFileSync(new URL('./x', import.meta.url)), createRequire, resolution of packages from
// node_modules) work, and a hot swap re-points the view so unchanged modules read new files too.
//
// Folder ids are hashes of what the signed manifest says, computed here: a package's id covers
// its files and the packages its dependencies resolve to (transitively), so two apps share a
// folder exactly when Node would load the same code through it.
import { chmodSync, copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { canonicalJson, sha256Hex, type FileRef, type Manifest } from '../snapshot/index.ts';
import { inspectBlob } from './blobs.ts';
import type { StoreContext } from './context.ts';
import type { LayoutIds } from './records.ts';
import { HOST_TAG, pidAlive, randomHex, tempName } from './files.ts';
import { blobPath } from './location.ts';

/** A file map as it is laid out: path → hash (+x when executable); pack offsets say nothing about content. */
function contentOf(files: Readonly<Record<string, FileRef>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const path of Object.keys(files)) out[path] = files[path]!.executable ? `${files[path]!.hash}+x` : files[path]!.hash;
  return out;
}

/**
 * The id of a version's node_modules folder: what sits where (file hashes by location) and the
 * links. App versions whose packages did not change share it; so do apps with the same install.
 */
export function modulesId(manifest: Manifest): string | null {
  if (manifest.layout === undefined) return null;
  // Once per manifest: a start asks for it twice, and a snapshot with 1,700 package files took 6 ms each time.
  let id = modulesIds.get(manifest);
  if (id === undefined) {
    const packages = manifest.packages ?? {};
    const layout: Record<string, Record<string, string>> = {};
    for (const [location, key] of Object.entries(manifest.layout)) layout[location] = contentOf(packages[key]?.files ?? {});
    id = sha256Hex(canonicalJson({ layout, links: manifest.links ?? {} })).slice(0, 32);
    modulesIds.set(manifest, id);
  }
  return id;
}

const modulesIds = new WeakMap<Manifest, string>();

/** The id of an app version's folder: its files and the node_modules folder it links. */
export function treeId(manifest: Manifest): string {
  return sha256Hex(canonicalJson({ files: contentOf(manifest.files ?? {}), modules: modulesId(manifest) })).slice(0, 32);
}

function incomplete(missing: string[]): LivemodError {
  return new LivemodError('store', ErrorCodes.STORE_INCOMPLETE, `${missing.length} blob(s) of the program are missing from the store or failed their hash check; sync again`, { missing });
}

/**
 * Places blob `ref` at `dest`: a hard link to the stored blob (no copy), after re-hashing it
 * once unless this sync just verified it (a folder is laid out once, and what is linked is what
 * Node will load); a copy where the file system has no hard links.
 */
function place(context: StoreContext, ref: FileRef, dest: string, missing: string[], fresh: ReadonlySet<string>, made: Set<string>): void {
  // Bytes this sync verified and wrote a moment ago are not hashed again (nor looked for: a link to one that is gone fails with ENOENT).
  if (!fresh.has(ref.hash) && typeof inspectBlob(context, ref.hash) === 'string') {
    missing.push(ref.hash);
    return;
  }
  // Each folder made once per layout, not once per file: a folder of 500 modules made 500 mkdir calls.
  const parent = dirname(dest);
  if (!made.has(parent)) {
    mkdirSync(parent, { recursive: true });
    made.add(parent);
  }
  const blob = blobPath(context.dir, ref.hash);
  try {
    if (ref.executable) {
      // A mode is the inode's, shared by every link: an executable file is a copy of its own.
      copyFileSync(blob, dest);
      chmodSync(dest, 0o755);
      return;
    }
    try {
      linkSync(blob, dest);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK' && code !== 'ENOTSUP') throw error;
      copyFileSync(blob, dest);
    }
  } catch (error) {
    // The blob went missing (another process's prune): fetched again, as any missing one.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !existsSync(parent)) throw error;
    missing.push(ref.hash);
  }
}

/** Lays out `files` (path → blob) under `dir`; a path that is both a file and a folder is the manifest's fault. */
function placeFiles(context: StoreContext, files: Readonly<Record<string, FileRef>>, dir: string, missing: string[], fresh: ReadonlySet<string>): void {
  const made = new Set<string>();
  for (const path of Object.keys(files).sort()) {
    const dest = join(dir, ...path.split('/'));
    try {
      place(context, files[path]!, dest, missing, fresh, made);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR') {
        throw new LivemodError('store', ErrorCodes.MANIFEST_INVALID, `the manifest lists ${JSON.stringify(path.slice(0, 200))} both as a file and as a folder (or twice); the publisher must rebuild it`, { path: path.slice(0, 200) });
      }
      throw error;
    }
  }
}

/** A symlink at `link` (built in tmp/, to be found at `finalLink`) to `target`, relative: the store may move. */
function linkTo(link: string, finalLink: string, target: string, inside: string): void {
  mkdirSync(dirname(link), { recursive: true });
  // The manifest was validated so that nothing lies under a link; this holds it on disk too.
  if (!(realpathSync(dirname(link)) + sep).startsWith(realpathSync(inside) + sep)) {
    throw new LivemodError('store', ErrorCodes.MANIFEST_INVALID, `the manifest lays out ${JSON.stringify(basename(link))} through a link, outside the folder being laid out; refused`, {});
  }
  try {
    symlinkSync(relative(dirname(finalLink), target), link, 'dir');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new LivemodError('store', ErrorCodes.MANIFEST_INVALID, `the manifest places a link where a file or folder is already laid out (${JSON.stringify(relative(inside, link).slice(0, 200))}); the publisher must rebuild it`, {});
    throw error;
  }
}

/** Builds a folder in tmp/ and renames it into place; another process that got there first wins (same content). */
function buildFolder(context: StoreContext, final: string, fill: (dir: string) => void): void {
  if (existsSync(final)) return;
  const tmp = join(context.tmp, tempName());
  try {
    mkdirSync(tmp, { recursive: true });
    fill(tmp);
    mkdirSync(dirname(final), { recursive: true });
    try {
      renameSync(tmp, final);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export const PROGRAM_LAYOUT: { readonly trees: 'trees'; readonly packages: 'packages'; readonly run: 'run' } = Object.freeze({ trees: 'trees', packages: 'packages', run: 'run' } as const);

/**
 * Lays out an app version (its files and node_modules) and the packages it needs, each once.
 * `ids`, when given, are the folder ids the store recorded for these manifest bytes at commit
 * (OriginState.layout), so they are not computed again. Returns the version's folder. Throws STORE_INCOMPLETE (`details.missing`) when blobs are not
 * in the store, so the caller fetches them and calls again.
 */
export function layoutProgram(context: StoreContext, manifest: Manifest, fresh: ReadonlySet<string> = new Set(), ids: LayoutIds | null = null): string {
  const tree = join(context.dir, PROGRAM_LAYOUT.trees, ids?.tree ?? treeId(manifest));
  ensureScope(context.dir);
  const missing: string[] = [];
  const modules = ids ? ids.modules : modulesId(manifest);
  const modulesDir = modules === null ? null : join(context.dir, PROGRAM_LAYOUT.packages, modules);
  // A version laid out before is reused only with the node_modules it links (a verify or a prune
  // may have taken that; a folder holding only a resolutions record a start wrote as it went is not laid out).
  if (existsSync(tree) && (modulesDir === null || existsSync(join(modulesDir, 'node_modules')))) {
    touch(tree, modulesDir);
    return tree;
  }
  if (modulesDir !== null) {
    // Folders come whole (renamed into place): one without its node_modules is a record a start
    // saved while a prune took the folder away, and goes.
    if (existsSync(modulesDir) && !existsSync(join(modulesDir, 'node_modules'))) rmSync(modulesDir, { recursive: true, force: true });
    buildFolder(context, modulesDir, (dir) => {
      // Read only here: a start of a version laid out before never parses the packages (seal.ts, reopenManifest).
      const packages = manifest.packages ?? {};
      // Sorted: a package is placed before the packages nested in its node_modules.
      for (const location of Object.keys(manifest.layout!).sort()) placeFiles(context, packages[manifest.layout![location]!]!.files, join(dir, ...location.split('/')), missing, fresh);
      for (const [location, target] of Object.entries(manifest.links ?? {})) {
        linkTo(join(dir, ...location.split('/')), join(modulesDir, ...location.split('/')), join(modulesDir, ...target.split('/')), dir);
      }
      if (missing.length > 0) throw incomplete(missing);
    });
  }
  // Marked in use, so a concurrent prune's grace period spares it until the tree links it.
  touch(modulesDir);
  buildFolder(context, tree, (dir) => {
    placeFiles(context, manifest.files ?? {}, dir, missing, fresh);
    if (modulesDir !== null) linkTo(join(dir, 'node_modules'), join(tree, 'node_modules'), join(modulesDir, 'node_modules'), dir);
    if (missing.length > 0) throw incomplete(missing);
  });
  return tree;
}

/** Marks laid-out folders in use now (their mtime), for prune's grace period; best effort. */
function touch(...folders: (string | null)[]): void {
  const now = new Date();
  for (const folder of folders) {
    if (folder === null) continue;
    try {
      utimesSync(folder, now, now);
    } catch {
      // Read-only or gone: prune's other rules still apply.
    }
  }
}

/** The view of one process on one origin: a symlink it re-points when it swaps versions. */
export interface ProgramView {
  /** The view's folder path (what file: URLs of live modules go through). */
  readonly path: string;
  /** Points the view at a version's folder (atomically: a rename over the old link). */
  point(tree: string): void;
  /** Removes the view (at exit). */
  close(): void;
}

/** Removes views of processes that are gone (killed ones leave theirs behind). */
function cleanViews(runDir: string): void {
  let names: string[];
  try {
    names = readdirSync(runDir);
  } catch {
    return;
  }
  for (const name of names) {
    // Only this host's views: a store shared between hosts (or pid namespaces) sees other pids.
    const match = /^([0-9a-f]{8})\.(\d+)-/.exec(name);
    const pid = Number(match?.[2]);
    if (!match || match[1] !== HOST_TAG || !Number.isSafeInteger(pid) || pid === process.pid || pidAlive(pid)) continue;
    try {
      if (lstatSync(join(runDir, name)).isSymbolicLink()) unlinkSync(join(runDir, name));
    } catch {
      // Removed by another process meanwhile.
    }
  }
}

export function openView(context: StoreContext, originKey: string, tree: string): ProgramView {
  const runDir = join(context.dir, PROGRAM_LAYOUT.run);
  mkdirSync(runDir, { recursive: true });
  cleanViews(runDir);
  const path = join(runDir, `${HOST_TAG}.${process.pid}-${sha256Hex(originKey).slice(0, 12)}-${randomHex(3)}`);
  const point = (target: string): void => {
    const tmp = `${path}.${randomHex(4)}`;
    symlinkSync(relative(runDir, target), tmp, 'dir');
    renameSync(tmp, path);
  };
  point(tree);
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    process.off('exit', close);
    try {
      unlinkSync(path);
    } catch {
      // Gone already.
    }
  };
  process.on('exit', close);
  return { path, point, close };
}


function names(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

/**
 * The store's own `package.json`, `{}`: where Node's lookup of a laid-out file's package scope
 * stops, for a version without a package.json of its own — so its CommonJS files are CommonJS
 * wherever the store is, as at the publisher, even under a folder whose package.json says
 * "type": "module".
 */
const SCOPE_FILE = 'package.json';
const scoped = new Set<string>();

function ensureScope(storeDir: string): void {
  if (scoped.has(storeDir)) return;
  const file = join(storeDir, SCOPE_FILE);
  try {
    if (!existsSync(file)) {
      const temp = `${file}.${process.pid}.tmp`;
      writeFileSync(temp, '{}\n');
      renameSync(temp, file);
    }
    scoped.add(storeDir);
  } catch {
    // A read-only store: its versions were laid out by a livemod that wrote it, or lay none out now.
  }
}

/** The node_modules folder id a laid-out version links to, if any. */
function linkedModules(tree: string, packagesDir: string): string | null {
  try {
    const target = resolve(tree, readlinkSync(join(tree, 'node_modules')));
    const rel = relative(packagesDir, target);
    return rel.startsWith('..') ? null : rel.split(/[\\/]/)[0]!;
  } catch {
    return null;
  }
}

export interface ProgramPrune {
  readonly removed: number;
  readonly kept: number;
}

/**
 * Removes laid-out versions no stored manifest names and no running process views (past the
 * grace period), the packages no kept version links to, and views of processes that are gone.
 */
export function pruneProgram(context: StoreContext, keepTrees: ReadonlySet<string>, options: { graceMs: number; dryRun: boolean }): ProgramPrune {
  const treesDir = join(context.dir, PROGRAM_LAYOUT.trees);
  const packagesDir = join(context.dir, PROGRAM_LAYOUT.packages);
  const runDir = join(context.dir, PROGRAM_LAYOUT.run);
  const keep = new Set(keepTrees);
  if (!options.dryRun) cleanViews(runDir);
  for (const name of names(runDir)) {
    try {
      keep.add(basename(resolve(runDir, readlinkSync(join(runDir, name)))));
    } catch {
      // Not a link (a stray file): ignored.
    }
  }
  const now = Date.now();
  const young = (path: string): boolean => {
    try {
      return now - statSync(path).mtimeMs < options.graceMs;
    } catch {
      return false;
    }
  };
  let removed = 0;
  let kept = 0;
  const keepPackages = new Set<string>();
  const queue: string[] = [];
  for (const id of names(treesDir)) {
    const path = join(treesDir, id);
    if (keep.has(id) || young(path)) {
      kept += 1;
      queue.push(path);
      continue;
    }
    if (!options.dryRun) rmSync(path, { recursive: true, force: true });
    removed += 1;
  }
  for (const tree of queue) {
    const id = linkedModules(tree, packagesDir);
    if (id !== null) keepPackages.add(id);
  }
  for (const id of names(packagesDir)) {
    const path = join(packagesDir, id);
    if (keepPackages.has(id) || young(path)) {
      kept += 1;
      continue;
    }
    if (!options.dryRun) rmSync(path, { recursive: true, force: true });
    removed += 1;
  }
  return { removed, kept };
}

/** Removes every laid-out version and package folder holding one of these files (`dev:ino`); returns their store-relative paths. */
export function dropFoldersLinking(context: StoreContext, inodes: ReadonlySet<string>): string[] {
  const dropped: string[] = [];
  const holds = (folder: string): boolean => {
    for (const entry of readdirSync(folder, { withFileTypes: true, recursive: true })) {
      if (!entry.isFile()) continue;
      const stat = lstatSync(join(entry.parentPath, entry.name), { throwIfNoEntry: false });
      if (stat && inodes.has(`${stat.dev}:${stat.ino}`)) return true;
    }
    return false;
  };
  for (const kind of [PROGRAM_LAYOUT.packages, PROGRAM_LAYOUT.trees]) {
    for (const id of names(join(context.dir, kind))) {
      const folder = join(context.dir, kind, id);
      // A version whose node_modules went with a dropped package folder goes too.
      const orphan = kind === PROGRAM_LAYOUT.trees && lstatSync(join(folder, 'node_modules'), { throwIfNoEntry: false })?.isSymbolicLink() === true && !existsSync(join(folder, 'node_modules'));
      if (!orphan && !holds(folder)) continue;
      rmSync(folder, { recursive: true, force: true });
      dropped.push(`${kind}/${id}`);
    }
  }
  return dropped;
}

// What travels with the modules: every file of the folder (module sources as written, templates,
// .wasm, .sql …) and every npm package version the program reaches, read from the publisher's
// own node_modules the way Node resolves it: from the folder, then from each package's real
// folder — its declared dependencies and every bare specifier its files require or import
// (npm's flat layout lets code use packages it never declared). Packages travel as their
// installed files (content-addressed blobs), and the node_modules layout as the publisher had
// it — where each package sits, nested copies and hoisting included, and the links of a pnpm
// layout — so the client lays out a tree Node resolves in exactly as it did on the publisher's disk.
import { isBuiltin } from 'node:module';
import { readFileSync, readdirSync, readlinkSync, realpathSync, statSync, type Dirent } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import ignoreModule from 'ignore';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { formatBytes } from '../format.ts';
import { sha256Hex, type BlobRef, type ModuleRecord, type PackageRecord } from '../snapshot/index.ts';
import { listFiles, readModuleFile, type FileLimits, type SkippedFile } from './files.ts';

export type ExternalsMode = 'bundle' | 'installed';

export interface ProgramOptions {
  /** bundle (default): packages travel in the snapshot; installed: clients use their own node_modules. */
  readonly externals: ExternalsMode;
  /** Packages kept out on purpose: the client resolves them from its own node_modules. */
  readonly external: readonly string[];
  /** .gitignore-style patterns to leave out, beside the folder's .gitignore (modules too). */
  readonly exclude?: readonly string[];
}

export interface ProgramContent {
  readonly files: Record<string, FileRef>;
  /** null with --externals installed: no package travels, clients bring their own node_modules. */
  readonly packages: Record<string, PackageRecord> | null;
  /** Where each package sits in node_modules (location → key), and the links of a pnpm layout (location → location). */
  readonly layout: Record<string, string> | null;
  readonly links: Record<string, string> | null;
  readonly externals: Record<string, string>;
  readonly blobs: Map<string, Buffer>;
  readonly skipped: readonly SkippedFile[];
  /** Packages a module imports that are not installed in the folder (nor kept out on purpose). */
  readonly missing: readonly string[];
  readonly totalBytes: number;
}

interface ReadFile {
  readonly size: number;
  readonly mtimeMs: number;
  readonly hash: string;
  readonly bytes: Buffer;
}

interface FoundPackage {
  /** Real folder. */
  readonly dir: string;
  readonly name: string;
  readonly version: string;
  readonly files: Record<string, FileRef>;
  readonly blobs: Map<string, Buffer>;
  /** Bare specifiers its files name (require, import, import()), and its declared dependencies. */
  readonly wants: readonly string[];
  /** Of those, its optionalDependencies (declared nowhere else): it runs without them. */
  readonly optional: readonly string[];
  /** Why it cannot travel (a native addon, an install script), or null. */
  readonly native: string | null;
  readonly bytes: number;
}

type FileRef = BlobRef & { readonly executable?: true };

/** Where a package was found: the path Node looked at (maybe a symlink) and its real folder. */
interface Found {
  readonly apparent: string;
  readonly real: string;
}

// Bare specifiers in CommonJS and ESM source: in require(…), import(…), `import …` and `from …`.
const SPECIFIERS = /(?:\brequire\s*\(\s*|\bimport\s*\(\s*|\bfrom\s*|\bimport\s+)(['"])([^'"\n]{1,214})\1/g;
const CODE_FILE = /\.(?:c|m)?js$/;

/** The package a bare specifier names: "a" of "a/b", "@s/a" of "@s/a/b"; null for relative, URL, builtin and livemod's own. */
export function packageOf(specifier: string): string | null {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('#') || /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(specifier)) return null;
  if (isBuiltin(specifier)) return null;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  if (name === 'livemod' || name === '') return null;
  return name;
}

function readJson(file: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function names(value: unknown): string[] {
  return value && typeof value === 'object' ? Object.keys(value) : [];
}

/** Node's lookup of a package folder from `from` (a real folder): `node_modules/<name>` in it and in every folder above. */
function findPackage(name: string, from: string): Found | null {
  for (let dir = from; ; dir = dirname(dir)) {
    if (!dir.endsWith(`${sep}node_modules`)) {
      const candidate = join(dir, 'node_modules', ...name.split('/'));
      try {
        if (statSync(join(candidate, 'package.json')).isFile()) return { apparent: candidate, real: realpathSync(candidate) };
      } catch {
        // Not here: look further up.
      }
    }
    if (dirname(dir) === dir) return null;
  }
}

/**
 * A path's place in the client's layout: from its first `node_modules` segment on (the folders
 * above are the publisher's, and every node_modules root the program sees becomes the tree's
 * own); null for a path under no node_modules (a workspace package linked in).
 */
function locationOf(path: string): string | null {
  const parts = path.split(sep);
  const at = parts.indexOf('node_modules');
  return at === -1 ? null : parts.slice(at).join('/');
}

/** Collects the program around the modules; keeps what it read between builds (watch mode). */
export class ProgramCollector {
  private readonly root: string;
  private readonly limits: FileLimits;
  private readonly options: ProgramOptions;
  private readonly read = new Map<string, ReadFile>();
  private readonly packageCache = new Map<string, { stamp: string; found: FoundPackage }>();

  constructor(root: string, limits: FileLimits, options: ProgramOptions) {
    this.root = root;
    this.limits = limits;
    this.options = options;
  }

  /** Reads a file, reusing the last read while its size and mtime are the same. */
  private readFile(file: string, size: number, mtimeMs: number): ReadFile {
    const known = this.read.get(file);
    if (known && known.size === size && known.mtimeMs === mtimeMs) return known;
    const bytes = readModuleFile(file, this.limits.maxFileBytes);
    if (bytes === null) throw new LivemodError('build', ErrorCodes.TOO_LARGE, `${file} grew over the ${formatBytes(this.limits.maxFileBytes)} per-file limit while it was read; raise it with --max-file-size`, { file });
    const entry = { size, mtimeMs, hash: sha256Hex(bytes), bytes };
    this.read.set(file, entry);
    return entry;
  }

  private ignoreRules(): (path: string) => boolean {
    const rules = ignoreModule.default();
    rules.add([...(this.options.exclude ?? [])]);
    try {
      rules.add(readFileSync(join(this.root, '.gitignore'), 'utf8'));
    } catch {
      // No .gitignore: only the built-in rules apply.
    }
    return (path) => !rules.ignores(path);
  }

  /** `requiredByCommonJs`: packages the program's CommonJS files require by a literal name (their records import nothing). */
  collect(modules: Readonly<Record<string, ModuleRecord>>, maxTotalBytes: number, requiredByCommonJs: Iterable<string> = []): ProgramContent {
    const blobs = new Map<string, Buffer>();
    const files: Record<string, FileRef> = {};
    let totalBytes = 0;
    const { files: found, skipped } = listFiles(this.root, this.limits, this.ignoreRules());
    const skippedPackages: SkippedFile[] = [];
    for (const file of found) {
      const read = this.readFile(file.file, file.size, file.mtimeMs);
      files[file.path] = file.executable ? { hash: read.hash, size: read.size, executable: true } : { hash: read.hash, size: read.size };
      blobs.set(read.hash, read.bytes);
      totalBytes += read.size;
    }
    const packages: Record<string, PackageRecord> = {};
    const layout: Record<string, string> = {};
    const links: Record<string, string> = {};
    const externals: Record<string, string> = {};
    const missing: string[] = [];
    const info = readJson(join(this.root, 'package.json'));
    const ranges = { ...(info?.peerDependencies as object), ...(info?.optionalDependencies as object), ...(info?.dependencies as object) } as Record<string, unknown>;
    const range = (name: string): string => (typeof ranges[name] === 'string' ? (ranges[name] as string).slice(0, 256) : '');

    // Roots: every package the modules import, and every package the folder declares (code may
    // reach them through createRequire or a computed import() the scan cannot see).
    const imported = new Set<string>();
    for (const record of Object.values(modules)) {
      for (const item of record.imports) {
        if (item.kind !== 'external') continue;
        const name = packageOf(item.specifier);
        if (name !== null) imported.add(name);
      }
    }
    for (const specifier of requiredByCommonJs) {
      const name = packageOf(specifier);
      if (name !== null) imported.add(name);
    }
    const roots = new Set([...imported, ...names(info?.dependencies), ...names(info?.optionalDependencies)]);
    const kept = new Set(this.options.external);
    if (this.options.externals === 'installed') {
      for (const name of [...roots].sort()) externals[name] = range(name);
      return { files, packages: null, layout: null, links: null, externals, blobs, skipped, missing: [], totalBytes };
    }

    // Every package reached, from where Node would find it: the roots from the folder, then what
    // each package wants from its own real folder. A package kept out (--external) is not
    // entered, so what only it needs stays out too.
    const byReal = new Map<string, FoundPackage>();
    /** Layout location → the real folder placed there (a package), or the location a link there points to. */
    const placed = new Map<string, { real: string; depth: number }>();
    const linked = new Map<string, string>();
    /** Workspace packages (real folder) → their place out of node_modules. */
    const workspaceAt = new Map<string, string>();
    const native: string[] = [];
    // Optional dependencies that cannot travel (a platform's prebuilt addon, say): left out, as
    // npm leaves out one it cannot install, since what wants them runs without them.
    const leftOut = new Map<string, string>();
    const queue: Found[] = [];
    const reach = (found: Found, optional: boolean): void => {
      if (optional && !byReal.has(found.real)) {
        const pkg = this.readPackage(found.real);
        if (pkg.native) {
          leftOut.set(locationOf(found.apparent) ?? pkg.name, `${pkg.name}@${pkg.version}: reached only through optional dependencies, and has a ${pkg.native}: left out (built for this machine, it cannot travel). A package that loads it in a try runs without it, as when npm does not install it; one that needs it fails on clients`);
          return;
        }
      }
      // findPackage's path always runs through a node_modules folder; the real one may not (a workspace link).
      const apparent = locationOf(found.apparent)!;
      const real = locationOf(found.real);
      const depth = found.apparent.split(sep).length;
      const place = (location: string): void => {
        const before = placed.get(location);
        // Two node_modules roots hold one name (a monorepo's and the app's): the one nearest the program wins, as for its own imports.
        if (!before || depth > before.depth) placed.set(location, { real: found.real, depth });
      };
      if (real !== null && apparent !== real) {
        // A link Node followed (a pnpm layout): laid out as a link, the package at its real place.
        linked.set(apparent, real);
        place(real);
      } else if (real === null) {
        // A link out of every node_modules (a workspace package): laid out as a link too, the
        // package out of node_modules (workspaces/<name>), where Node strips its TypeScript as
        // it does at the publisher, and finds its dependencies in the node_modules beside it.
        let at = workspaceAt.get(found.real);
        if (at === undefined) {
          const name = apparent.slice(apparent.lastIndexOf('node_modules/') + 'node_modules/'.length);
          at = `workspaces/${name}`;
          for (let copy = 2; [...workspaceAt.values()].includes(at); copy += 1) at = `workspaces/${name}-${copy}`;
          workspaceAt.set(found.real, at);
        }
        linked.set(apparent, at);
        place(at);
      } else {
        // No link: the package where Node found it.
        place(apparent);
      }
      if (!byReal.has(found.real)) {
        byReal.set(found.real, this.readPackage(found.real));
        queue.push(found);
      }
    };
    // The program's optional dependencies that nothing imports: reached in the second pass below.
    const optionalRoots = new Set(names(info?.optionalDependencies).filter((name) => !imported.has(name) && !names(info?.dependencies).includes(name) && !kept.has(name)));
    for (const name of [...roots].sort()) {
      if (kept.has(name) || optionalRoots.has(name)) {
        if (kept.has(name)) externals[name] = range(name);
        continue;
      }
      const found = findPackage(name, this.root);
      if (found === null) {
        // Imported but not installed here: the client must have it (as before packages travelled).
        if (!imported.has(name) && !names(info?.dependencies).includes(name)) continue;
        externals[name] = range(name);
        missing.push(name);
        continue;
      }
      reach(found, false);
    }
    // Two passes: what the program needs (dependencies, requires), then what only optional
    // dependencies reach, where a package that cannot travel is left out rather than refused.
    const later: [name: string, from: string][] = [...optionalRoots].sort().map((name) => [name, this.root]);
    const walk = (optional: boolean): void => {
      for (let at = 0; at < queue.length; at += 1) {
        const pkg = byReal.get(queue[at]!.real)!;
        if (pkg.native) native.push(`${pkg.name}@${pkg.version} (${pkg.native})`);
        for (const name of pkg.wants) {
          if (name === pkg.name || kept.has(name)) continue;
          if (!optional && pkg.optional.includes(name)) {
            later.push([name, pkg.dir]);
            continue;
          }
          const found = findPackage(name, pkg.dir);
          // Not installed: an optional dependency, or a require in a branch that never runs here; Node fails alike.
          if (found !== null) reach(found, optional);
        }
      }
    };
    walk(false);
    const required = queue.length;
    for (const [name, from] of later) {
      const found = findPackage(name, from);
      if (found !== null) reach(found, true);
    }
    queue.splice(0, required);
    walk(true);
    for (const [location, reason] of [...leftOut].sort(([a], [b]) => (a < b ? -1 : 1))) skippedPackages.push({ path: location, reason });
    if (native.length > 0) {
      const list = native.sort();
      throw new LivemodError(
        'build',
        ErrorCodes.NATIVE_PACKAGE,
        `${list.length} package(s) cannot travel in the snapshot: ${list.slice(0, 5).join(', ')}${list.length > 5 ? ', …' : ''}; keep each out with --external NAME (clients then install it themselves), or publish with --externals installed`,
        { packages: list },
      );
    }
    // Keys: name@version, with #2, #3 … for a further copy whose files differ.
    const keyOf = new Map<string, string>();
    const taken = new Map<string, string>();
    for (const real of [...byReal.keys()].sort()) {
      const pkg = byReal.get(real)!;
      const base = `${pkg.name}@${pkg.version}`;
      const signature = JSON.stringify(pkg.files);
      let key = base;
      for (let copy = 2; taken.has(key) && taken.get(key) !== signature; copy += 1) key = `${base}#${copy}`;
      if (!taken.has(key)) {
        taken.set(key, signature);
        packages[key] = { name: pkg.name, version: pkg.version, files: pkg.files };
        totalBytes += pkg.bytes;
      }
      keyOf.set(real, key);
      for (const [hash, bytes] of pkg.blobs) blobs.set(hash, bytes);
    }
    for (const location of [...placed.keys()].sort()) layout[location] = keyOf.get(placed.get(location)!.real)!;
    for (const location of [...linked.keys()].sort()) if (!Object.hasOwn(layout, location)) links[location] = linked.get(location)!;
    // The commands npm linked for them (node_modules/.bin/<name> → a file of a package laid out),
    // so a program that runs `node_modules/.bin/x` (execa's preferLocal, say) finds it as from disk.
    for (const [name, target] of this.binLinks(layout, packages, links)) links[`node_modules/.bin/${name}`] = target;
    if (totalBytes > maxTotalBytes) {
      throw new LivemodError('build', ErrorCodes.TOO_LARGE, `${this.root} with its packages holds ${formatBytes(totalBytes)}, over the ${formatBytes(maxTotalBytes)} limit; raise it with --max-total-size, keep big packages out with --external NAME, or publish with --externals installed`, { totalBytes });
    }
    return { files, packages, layout, links, externals, blobs, skipped: [...skipped, ...skippedPackages], missing: missing.sort(), totalBytes };
  }

  /**
   * The folder's `node_modules/.bin` links whose target is a file of a package that travels:
   * [command name, the target's location]. Anything else there (a shim file instead of a link, a
   * target outside the packages laid out, or under a link) is left out, as a package not carried.
   */
  private binLinks(layout: Readonly<Record<string, string>>, packages: Readonly<Record<string, PackageRecord>>, links: Readonly<Record<string, string>>): [string, string][] {
    const bin = join(this.root, 'node_modules', '.bin');
    let entries: string[];
    try {
      entries = readdirSync(bin);
    } catch {
      return [];
    }
    const out: [string, string][] = [];
    for (const name of entries.sort()) {
      if (name.startsWith('.') || name.includes('\\')) continue;
      let target: string;
      try {
        target = readlinkSync(join(bin, name));
      } catch {
        continue;
      }
      const location = relative(this.root, resolve(bin, target)).split(sep).join('/');
      if (!location.startsWith('node_modules/') || location.split('/').some((part) => part === '..' || part === '.' || part === '')) continue;
      if (Object.keys(links).some((link) => location.startsWith(`${link}/`))) continue;
      const place = Object.keys(layout).find((at) => location.startsWith(`${at}/`) && Object.hasOwn(packages[layout[at]!]?.files ?? {}, location.slice(at.length + 1)));
      if (place !== undefined) out.push([name, location]);
    }
    return out;
  }

  /** One installed package: its files (not its own node_modules), what it wants, and whether it can travel. */
  private readPackage(dir: string): FoundPackage {
    const json = readJson(join(dir, 'package.json'));
    let stamp = '';
    try {
      const stat = statSync(join(dir, 'package.json'));
      stamp = `${stat.size}:${stat.mtimeMs}`;
    } catch {
      // No package.json: read afresh each build.
    }
    const cached = this.packageCache.get(dir);
    if (cached && stamp !== '' && cached.stamp === stamp) return cached.found;
    const name = typeof json?.name === 'string' ? json.name : basename(dir);
    const version = typeof json?.version === 'string' && json.version.length > 0 ? json.version.slice(0, 256) : '0.0.0';
    const files: Record<string, FileRef> = {};
    const blobs = new Map<string, Buffer>();
    const wants = new Set<string>([...names(json?.dependencies), ...names(json?.optionalDependencies), ...names(json?.peerDependencies)]);
    const optional = names(json?.optionalDependencies).filter((name) => !names(json?.dependencies).includes(name) && !names(json?.peerDependencies).includes(name));
    let bytes = 0;
    let native: string | null = null;
    const scripts = json?.scripts as Record<string, unknown> | undefined;
    for (const hook of ['preinstall', 'install', 'postinstall']) {
      if (scripts && typeof scripts[hook] === 'string') native = `${hook} script`;
    }
    // Real folders walked: a link back up (`x -> ..`) is entered once, not until the path is too long.
    const walked = new Set<string>();
    const walk = (folder: string, prefix: string): void => {
      let entries: Dirent[];
      try {
        const real = realpathSync(folder);
        if (walked.has(real)) return;
        walked.add(real);
        entries = readdirSync(folder, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const path = prefix + entry.name;
        if (entry.name === 'node_modules' || entry.name === '.git') continue;
        const full = join(folder, entry.name);
        let stats;
        try {
          stats = statSync(full);
        } catch {
          continue;
        }
        if (stats.isDirectory()) {
          walk(full, `${path}/`);
        } else if (stats.isFile()) {
          if (entry.name.endsWith('.node') || (prefix === '' && entry.name === 'binding.gyp')) native = entry.name.endsWith('.node') ? `native addon ${path}` : 'binding.gyp';
          if (stats.size > this.limits.maxFileBytes) {
            throw new LivemodError('build', ErrorCodes.TOO_LARGE, `${full} (of package ${name}) is ${formatBytes(stats.size)}, over the ${formatBytes(this.limits.maxFileBytes)} per-file limit; raise it with --max-file-size or keep the package out with --external ${name}`, { file: full });
          }
          const read = this.readFile(full, stats.size, stats.mtimeMs);
          blobs.set(read.hash, read.bytes);
          files[path] = (stats.mode & 0o111) !== 0 ? { hash: read.hash, size: read.size, executable: true } : { hash: read.hash, size: read.size };
          bytes += read.size;
          if (CODE_FILE.test(entry.name)) {
            const text = read.bytes.toString('latin1');
            for (const match of text.matchAll(SPECIFIERS)) {
              const wanted = packageOf(match[2]!);
              if (wanted !== null) wants.add(wanted);
            }
          }
        }
      }
    };
    walk(dir, '');
    const found: FoundPackage = { dir, name, version, files, blobs, wants: [...wants].sort(), optional: optional.sort(), native, bytes };
    if (stamp !== '') this.packageCache.set(dir, { stamp, found });
    return found;
  }
}

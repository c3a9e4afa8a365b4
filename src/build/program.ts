// What travels with the modules: every file of the folder (module sources as written, templates,
// .wasm, .sql …) and every npm package version the program reaches, read from the publisher's
// own node_modules the way Node would resolve it from the folder. Packages travel as their
// installed files (content-addressed blobs) plus the resolution of each of their dependencies,
// so a client can lay out a node_modules tree that Node's own resolver walks unchanged.
import { isBuiltin } from 'node:module';
import { readFileSync, readdirSync, realpathSync, statSync, type Dirent } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
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
  readonly files: Record<string, BlobRef>;
  readonly packages: Record<string, PackageRecord>;
  readonly dependencies: Record<string, string>;
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
  readonly dir: string;
  readonly name: string;
  readonly version: string;
  readonly files: Record<string, BlobRef>;
  readonly blobs: Map<string, Buffer>;
  /** Dependency name → the real folder it resolved to. */
  readonly resolved: Map<string, string>;
  /** Why it cannot travel (a native addon, an install script), or null. */
  readonly native: string | null;
  readonly bytes: number;
}

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

/** Node's lookup of a package folder from `from`: `node_modules/<name>` in it and in every folder above. */
function findPackage(name: string, from: string): string | null {
  for (let dir = from; ; dir = dirname(dir)) {
    if (!dir.endsWith(`${sep}node_modules`)) {
      try {
        const candidate = join(dir, 'node_modules', ...name.split('/'));
        if (statSync(join(candidate, 'package.json')).isFile()) return realpathSync(candidate);
      } catch {
        // Not here: look further up.
      }
    }
    if (dirname(dir) === dir) return null;
  }
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

  collect(modules: Readonly<Record<string, ModuleRecord>>, maxTotalBytes: number): ProgramContent {
    const blobs = new Map<string, Buffer>();
    const files: Record<string, BlobRef> = {};
    let totalBytes = 0;
    const { files: found, skipped } = listFiles(this.root, this.limits, this.ignoreRules());
    for (const file of found) {
      const read = this.readFile(file.file, file.size, file.mtimeMs);
      files[file.path] = { hash: read.hash, size: read.size };
      blobs.set(read.hash, read.bytes);
      totalBytes += read.size;
    }
    const packages: Record<string, PackageRecord> = {};
    const dependencies: Record<string, string> = {};
    const externals: Record<string, string> = {};
    const missing: string[] = [];
    const info = readJson(join(this.root, 'package.json'));
    const ranges = { ...(info?.peerDependencies as object), ...(info?.optionalDependencies as object), ...(info?.dependencies as object) } as Record<string, unknown>;
    const range = (name: string): string => (typeof ranges[name] === 'string' ? (ranges[name] as string).slice(0, 256) : '');

    // Roots: every package the modules import, and every package the folder declares (code may
    // reach them through createRequire or a computed import() the scan cannot see).
    const roots = new Set<string>();
    for (const record of Object.values(modules)) {
      for (const item of record.imports) {
        if (item.kind !== 'external') continue;
        const name = packageOf(item.specifier);
        if (name !== null) roots.add(name);
      }
    }
    for (const name of names(info?.dependencies)) roots.add(name);
    for (const name of names(info?.optionalDependencies)) roots.add(name);
    const kept = new Set(this.options.external);
    if (this.options.externals === 'installed') {
      for (const name of [...roots].sort()) externals[name] = range(name);
      return { files, packages: {}, dependencies: {}, externals, blobs, skipped, missing: [], totalBytes };
    }

    const byDir = new Map<string, FoundPackage>();
    const native: string[] = [];
    const visit = (dir: string): FoundPackage => {
      let pkg = byDir.get(dir);
      if (pkg) return pkg;
      pkg = this.readPackage(dir);
      byDir.set(dir, pkg);
      if (pkg.native) native.push(`${pkg.name}@${pkg.version} (${pkg.native})`);
      for (const depDir of pkg.resolved.values()) visit(depDir);
      return pkg;
    };
    const top = new Map<string, string>();
    for (const name of [...roots].sort()) {
      if (kept.has(name)) {
        externals[name] = range(name);
        continue;
      }
      const dir = findPackage(name, this.root);
      if (dir === null) {
        // Imported but not installed here: the client must have it (as before packages travelled).
        if (names(info?.optionalDependencies).includes(name) && !Object.values(modules).some((record) => record.imports.some((item) => packageOf(item.specifier) === name))) continue;
        externals[name] = range(name);
        missing.push(name);
        continue;
      }
      top.set(name, dir);
      visit(dir);
    }
    if (native.length > 0) {
      const list = native.sort();
      throw new LivemodError(
        'build',
        ErrorCodes.NATIVE_PACKAGE,
        `${list.length} package(s) cannot travel in the snapshot: ${list.slice(0, 5).join(', ')}${list.length > 5 ? ', …' : ''}; keep each out with --external NAME (clients then install it themselves), or publish with --externals installed`,
        { packages: list },
      );
    }
    // Keys: name@version, with #2, #3 … for further copies that differ (another resolution of their dependencies, or other files).
    const keyOf = new Map<string, string>();
    const taken = new Map<string, string>();
    const signature = (pkg: FoundPackage): string => JSON.stringify([pkg.files, [...pkg.resolved.entries()].map(([name, dir]) => [name, `${byDir.get(dir)!.name}@${byDir.get(dir)!.version}`]).sort()]);
    for (const dir of [...byDir.keys()].sort()) {
      const pkg = byDir.get(dir)!;
      const base = `${pkg.name}@${pkg.version}`;
      const sig = signature(pkg);
      let key = base;
      for (let copy = 2; taken.has(key) && taken.get(key) !== sig; copy += 1) key = `${base}#${copy}`;
      taken.set(key, sig);
      keyOf.set(dir, key);
    }
    for (const [dir, pkg] of byDir) {
      const key = keyOf.get(dir)!;
      const deps: Record<string, string> = {};
      for (const [name, depDir] of [...pkg.resolved.entries()].sort()) deps[name] = keyOf.get(depDir)!;
      const record = packages[key];
      // Same name, version and files, but another copy on disk: one record serves both when their dependencies resolve alike.
      if (record && JSON.stringify(record.dependencies) !== JSON.stringify(deps)) throw new Error(`internal: two copies of ${key} resolve differently`);
      packages[key] = { name: pkg.name, version: pkg.version, files: pkg.files, dependencies: deps };
      totalBytes += record ? 0 : pkg.bytes;
    }
    for (const [name, dir] of top) dependencies[name] = keyOf.get(dir)!;
    if (totalBytes > maxTotalBytes) {
      throw new LivemodError('build', ErrorCodes.TOO_LARGE, `${this.root} with its packages holds ${formatBytes(totalBytes)}, over the ${formatBytes(maxTotalBytes)} limit; raise it with --max-total-size, keep big packages out with --external NAME, or publish with --externals installed`, { totalBytes });
    }
    for (const pkg of byDir.values()) for (const [hash, bytes] of pkg.blobs) blobs.set(hash, bytes);
    return { files, packages, dependencies, externals, blobs, skipped, missing: missing.sort(), totalBytes };
  }

  /** One installed package: its files (not its own node_modules), where its dependencies resolve, and whether it can travel. */
  private readPackage(dir: string): FoundPackage {
    const json = readJson(join(dir, 'package.json'));
    const stamp = (() => {
      try {
        const stat = statSync(join(dir, 'package.json'));
        return `${stat.size}:${stat.mtimeMs}`;
      } catch {
        return '';
      }
    })();
    const cached = this.packageCache.get(dir);
    if (cached && cached.stamp === stamp) return cached.found;
    const name = typeof json?.name === 'string' ? json.name : relative(join(dir, '..'), dir).split(sep).join('/');
    const version = typeof json?.version === 'string' && json.version.length > 0 ? json.version.slice(0, 256) : '0.0.0';
    const files: Record<string, BlobRef> = {};
    const blobs = new Map<string, Buffer>();
    let bytes = 0;
    let native: string | null = null;
    const scripts = json?.scripts as Record<string, unknown> | undefined;
    for (const hook of ['preinstall', 'install', 'postinstall']) {
      if (scripts && typeof scripts[hook] === 'string') native = `${hook} script`;
    }
    const walk = (folder: string, prefix: string): void => {
      let entries: Dirent[];
      try {
        entries = readdirSync(folder, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const path = prefix + entry.name;
        if (prefix === '' && entry.name === 'node_modules') continue;
        if (entry.name === '.git') continue;
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
          files[path] = { hash: read.hash, size: read.size };
          bytes += read.size;
        }
      }
    };
    walk(dir, '');
    const resolved = new Map<string, string>();
    const optional = new Set([...names(json?.optionalDependencies), ...names(json?.peerDependencies)]);
    for (const dep of [...names(json?.dependencies), ...optional]) {
      if (resolved.has(dep) || dep === name) continue;
      const depDir = findPackage(dep, dir);
      // A regular dependency missing here is missing under Node too: the client fails as Node would.
      if (depDir !== null) resolved.set(dep, depDir);
    }
    const found: FoundPackage = { dir, name, version, files, blobs, resolved, native, bytes };
    this.packageCache.set(dir, { stamp, found });
    return found;
  }
}

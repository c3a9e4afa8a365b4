// Resolution inside a published folder, as TS users expect it: relative specifiers with or
// without extension, `index` files, `.js` naming a `.ts` source, the package's own name through
// its `exports` map (Node's self-reference) and its `imports` map (`#internal`). Everything else
// bare, and `node:` builtins, is external: loaded natively from the running program.
import { posix } from 'node:path';

export type Resolution =
  | { readonly kind: 'module'; readonly module: string }
  | { readonly kind: 'external' }
  | { readonly kind: 'unresolved'; readonly reason: string };

export interface PackageInfo {
  readonly name: string | null;
  readonly exports: unknown;
  readonly imports: unknown;
  readonly main: string | null;
}

export interface ResolveTree {
  has(modulePath: string): boolean;
  readonly packageInfo: PackageInfo | null;
}

/** Conditions tried in order, as Node's ESM loader does for `import`, plus our own. */
const CONDITIONS = ['livemod', 'node', 'import', 'module-sync', 'default'];
const EXTENSIONS = ['.ts', '.tsx', '.mts', '.js', '.jsx', '.mjs', '.json'];
const SOURCE_FOR = new Map([
  ['.js', ['.ts', '.tsx']],
  ['.jsx', ['.tsx']],
  ['.mjs', ['.mts']],
  ['.cjs', ['.cts']],
]);

function candidates(path: string): string[] {
  const out = [path];
  const ext = posix.extname(path);
  for (const replacement of SOURCE_FOR.get(ext) ?? []) out.push(path.slice(0, -ext.length) + replacement);
  for (const extension of EXTENSIONS) out.push(path + extension);
  for (const extension of EXTENSIONS) out.push(`${path}/index${extension}`);
  return out;
}

/** Resolves a path relative to the folder root ("" is the root itself). */
function resolveInTree(path: string, tree: ResolveTree, specifier: string): Resolution {
  const normal = posix.normalize(path);
  if (normal === '..' || normal.startsWith('../') || posix.isAbsolute(normal)) {
    return { kind: 'unresolved', reason: `"${specifier}" points outside the published folder` };
  }
  const base = normal === '.' ? '' : normal.replace(/\/$/, '');
  // The path as written first: it is nearly always the module (a start resolves every import of
  // every module it reaches, and building the other sixteen candidates each time showed up).
  if (base !== '' && tree.has(base)) return { kind: 'module', module: base };
  for (const candidate of base === '' ? EXTENSIONS.map((extension) => `index${extension}`) : candidates(base).slice(1)) {
    if (tree.has(candidate)) return { kind: 'module', module: candidate };
  }
  return { kind: 'unresolved', reason: `no module "${base || '.'}" (tried it with ${EXTENSIONS.join(', ')} and as a folder with an index file)` };
}

/** Node's PACKAGE_TARGET_RESOLVE, reduced to what a folder needs: strings, conditions, arrays. */
function target(value: unknown, star: string | null): string | null {
  if (typeof value === 'string') return star === null ? value : value.replaceAll('*', star);
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = target(item, star);
      if (found !== null) return found;
    }
    return null;
  }
  if (typeof value === 'object' && value !== null) {
    const map = value as Record<string, unknown>;
    for (const condition of Object.keys(map)) {
      if (CONDITIONS.includes(condition)) {
        const found = target(map[condition], star);
        if (found !== null) return found;
      }
    }
  }
  return null;
}

/** Looks a subpath ("." or "./x" or "#x") up in an exports/imports map, with `*` patterns. */
function lookup(map: unknown, subpath: string): string | null {
  if (typeof map === 'string' || Array.isArray(map)) return subpath === '.' ? target(map, null) : null;
  if (typeof map !== 'object' || map === null) return null;
  const entries = map as Record<string, unknown>;
  const keys = Object.keys(entries);
  if (!keys.some((key) => key.startsWith('.') || key.startsWith('#'))) return subpath === '.' ? target(map, null) : null;
  if (Object.hasOwn(entries, subpath) && !subpath.includes('*')) return target(entries[subpath], null);
  // The longest matching pattern wins, as in Node.
  let best: { key: string; star: string } | null = null;
  for (const key of keys) {
    const at = key.indexOf('*');
    if (at === -1) continue;
    const prefix = key.slice(0, at);
    const suffix = key.slice(at + 1);
    if (subpath.length >= key.length && subpath.startsWith(prefix) && subpath.endsWith(suffix) && (!best || key.length > best.key.length)) {
      best = { key, star: subpath.slice(prefix.length, subpath.length - suffix.length) };
    }
  }
  return best ? target(entries[best.key], best.star) : null;
}

function selfReference(specifier: string, info: PackageInfo, tree: ResolveTree): Resolution | null {
  const name = info.name;
  if (name === null || (specifier !== name && !specifier.startsWith(`${name}/`))) return null;
  const subpath = specifier === name ? '.' : `.${specifier.slice(name.length)}`;
  // Without an exports map Node does not self-reference: the name is looked up in node_modules
  // like any package, so here it is an external.
  if (info.exports === undefined || info.exports === null) return null;
  const found = lookup(info.exports, subpath);
  if (found === null) return { kind: 'unresolved', reason: `package.json "exports" of "${name}" has no entry for "${subpath}" under the conditions ${CONDITIONS.join(', ')}` };
  return resolveInTree(found, tree, specifier);
}

export function resolveSpecifier(specifier: string, importer: string, tree: ResolveTree): Resolution {
  if (specifier.startsWith('./') || specifier.startsWith('../') || specifier === '.' || specifier === '..') {
    return resolveInTree(posix.join(posix.dirname(importer), specifier), tree, specifier);
  }
  if (specifier.startsWith('/')) return { kind: 'unresolved', reason: `absolute path "${specifier}" is not portable; import it with a relative specifier` };
  if (/^[a-z][a-z0-9+.-]*:/i.test(specifier) && !specifier.startsWith('node:')) {
    return { kind: 'unresolved', reason: `URL import "${specifier}" is not supported; put the module in the folder or install it as a package` };
  }
  if (specifier === '' || specifier.includes('\0')) return { kind: 'unresolved', reason: 'empty or malformed specifier' };
  const info = tree.packageInfo;
  if (specifier.startsWith('#')) {
    const found = info ? lookup(info.imports, specifier) : null;
    if (found === null) return { kind: 'unresolved', reason: `package.json "imports" has no entry for "${specifier}"` };
    return found.startsWith('./') ? resolveInTree(found, tree, specifier) : { kind: 'external' };
  }
  if (info) {
    const self = selfReference(specifier, info, tree);
    if (self) return self;
  }
  return { kind: 'external' };
}

/** The module `livemod run <origin>` starts with: the package's own entry, else a conventional name. */
export function defaultEntry(tree: ResolveTree): string | null {
  const info = tree.packageInfo;
  if (info?.name) {
    const self = resolveSpecifier(info.name, 'package.json', tree);
    if (self.kind === 'module') return self.module;
  }
  if (info?.main) {
    const main = resolveInTree(info.main, tree, info.main);
    if (main.kind === 'module') return main.module;
  }
  for (const name of ['main', 'index', 'src/main', 'src/index']) {
    for (const extension of EXTENSIONS.slice(0, 6)) if (tree.has(name + extension)) return name + extension;
  }
  return null;
}

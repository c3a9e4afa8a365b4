// CommonJS files of the program. Node runs a `.cjs` file, or a `.js` file of a scope without
// `"type": "module"` that has no ES module syntax, as CommonJS; livemod leaves such a file to
// Node too (the builder marks its record `commonjs`). Its module in the registry is a stand-in
// with the names Node's lexer found: evaluating it requires the file, from the version's own
// folder, with Node's own loader, so `require`, `module`, `__dirname` and the require cache are
// Node's; the entry is loaded as Node's main module (`require.main === module`). Its named
// exports take the values of `module.exports` when it has run, as Node's do.
import Module from 'node:module';
import { sep } from 'node:path';
import type { ModuleFactory } from './compile.ts';

interface Publisher {
  x(getters: Readonly<Record<string, () => unknown>>): void;
  readonly w: Record<string, unknown>;
}

/** Node's loader entry point that can load a file as the main module (not in the public types). */
const load = (Module as unknown as { _load(request: string, parent: undefined, isMain: boolean): unknown })._load;
const cache = (Module as unknown as { _cache: Record<string, unknown> })._cache;
/** Node's memo of where a require resolved (request and search paths → file). */
const pathCache = (Module as unknown as { _pathCache?: Record<string, string> })._pathCache;

function value(exports: unknown, name: string): unknown {
  if (name === 'default' || name === 'module.exports') return exports;
  return exports !== null && (typeof exports === 'object' || typeof exports === 'function') ? (exports as Record<string, unknown>)[name] : undefined;
}

/**
 * Forgets the CommonJS modules Node loaded from `folder` (but its packages), and where their
 * requires resolved: a new version of the program's CommonJS code read from the same folder (a
 * local run's swap) runs its files again, not what the require cache kept of the last version;
 * the modules of a version no longer run (a remote version's own folder) are let go.
 */
export function forgetCommonJs(folder: string): void {
  const prefix = folder.endsWith(sep) ? folder : folder + sep;
  const own = (file: string): boolean => file.startsWith(prefix) && !file.slice(prefix.length).split(sep).includes('node_modules');
  for (const file of Object.keys(cache)) if (own(file)) delete cache[file];
  // Where requires resolved too: a file that became a folder (lib.js → lib/index.js) is found again.
  if (pathCache) for (const [request, file] of Object.entries(pathCache)) if (own(file)) delete pathCache[request];
}

/**
 * The module function of a CommonJS file at `file` (a path): registers `names` (each reads
 * `module.exports` until it has run), then, when evaluated, loads the file with Node's loader
 * (`main`: as the process's main module) and publishes what it exported.
 */
export function commonJsFactory(file: string, names: readonly string[], main: boolean, before: () => void): ModuleFactory {
  return function* (context: unknown) {
    const publisher = context as Publisher;
    // Until the file has run, its names read nothing (undefined), as a CommonJS module's in a cycle.
    const loaded: { exports?: unknown } = {};
    const getters: Record<string, () => unknown> = {};
    for (const name of names) getters[name] = () => value(loaded.exports, name);
    publisher.x(getters);
    yield;
    before();
    // Loaded from no parent module, as an ES module's import of it is (module.parent is not a CommonJS module).
    loaded.exports = load(file, undefined, main);
    for (const name of names) publisher.w[name] = value(loaded.exports, name);
  } as ModuleFactory;
}

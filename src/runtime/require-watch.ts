// What Node's CommonJS loader is loading: a wrapper of Module._load (the entry point of every
// require(), and of an import of a CommonJS file) keeps the requests in progress, innermost last,
// each with its parent module. Two readers: the resolutions replay (resolutions.ts) tells a
// require() from a require.resolve() — which asks the resolve hook the same question and does not
// pass here — and the registry learns which CommonJS file requires a live module (registry.ts
// `requiredModule`, through the load hook). The wrapper keeps Module._load's name and length.
/** A module as Node's CommonJS loader has it (not in the public types). */
export interface ParentModule {
  readonly filename?: string;
  readonly paths?: string[];
}

/** Node's CommonJS loader, as far as livemod reads it. */
export interface CommonJsLoader {
  _load: (request: string, parent: unknown, isMain: boolean, ...rest: unknown[]) => unknown;
  _resolveFilename: unknown;
  _findPath: unknown;
  _resolveLookupPaths: unknown;
  _nodeModulePaths: (from: string) => string[];
  _extensions: Record<string, unknown>;
  register?: (...args: unknown[]) => unknown;
  syncBuiltinESMExports(): void;
}

interface Request {
  readonly request: string;
  readonly parent: unknown;
  /** Its resolution was asked (the resolve hook took it). */
  asked: boolean;
}

const requests: Request[] = [];
let loader: CommonJsLoader | undefined;

/** Starts watching Node's CommonJS loader (once); returns it. */
export function watchRequires(): CommonJsLoader {
  if (loader !== undefined) return loader;
  const modules = process.getBuiltinModule('node:module') as unknown as CommonJsLoader;
  const load = modules._load;
  const wrapped = function (this: unknown, request: string, parent: unknown, isMain: boolean, ...rest: unknown[]): unknown {
    // An import of a CommonJS file hands over a resolution it made (`resolved`): no question follows.
    const options = rest[0] as { resolved?: unknown } | undefined;
    requests.push({ request, parent, asked: options?.resolved !== undefined });
    try {
      return load.call(this, request, parent, isMain, ...rest);
    } finally {
      requests.pop();
    }
  };
  Object.defineProperty(wrapped, 'name', { value: load.name });
  modules._load = wrapped;
  loader = modules;
  return modules;
}

/**
 * The require() whose resolution is being asked now, once: the innermost request in progress
 * if its resolution was not asked yet (a require.resolve inside a module a require is loading
 * finds that one asked already). Null when none.
 */
export function takeRequire(): { readonly request: string; readonly parent: unknown } | null {
  const innermost = requests.at(-1);
  if (innermost === undefined || innermost.asked) return null;
  innermost.asked = true;
  return innermost;
}

/** The module whose require() is loading a file now (the innermost request's parent), if any. */
export function requiringModule(): ParentModule | null {
  const parent = requests.at(-1)?.parent;
  return parent !== null && typeof parent === 'object' ? (parent as ParentModule) : null;
}

// `lazy(() => import("pkg"))`: a package's namespace, typed as the import gives it, loaded at the
// first read of one of its properties — synchronously, exactly as that `import()` would load it
// (runtime/hooks.ts `requireExternal`: the same resolution from the calling module, the same
// module instance). For code that wants one heavy package lazily without a global mode. The
// function is never called: the specifier is read from its text, which must be one literal
// `import("…")`, and resolved as the registry resolves the calling live module's imports of
// packages (or, outside live code, from the calling file). Packages and builtins only: a
// module of the program itself is loaded lazily with `import defer` or `livemod run --lazy`.
// The object is a plain one whose prototype is, until the load, a Proxy that loads the package
// (its names are unknown until then) and, from the load on, the package's namespace itself: a
// read then costs what reading the namespace costs (`npm run bench:lazy`), where a Proxy's trap
// on every read cost 45× a plain property read.
import { pathToFileURL } from 'node:url';
import { requireExternal, requireFailure } from './runtime/hooks.ts';
import { prototypeFace } from './runtime/namespace.ts';
import { externalsParentFor } from './runtime/registry.ts';
import { ErrorCodes, LivemodError } from './errors.ts';

const LITERAL_IMPORT = /\bimport\s*\(\s*(['"`])([^'"`\s]+)\1\s*[,)]/;

/** The file of the code that called `fn` (a file URL), from V8's structured stack. */
function callerUrl(fn: (...args: never[]) => unknown): string | null {
  const original = Error.prepareStackTrace;
  const holder: { stack?: NodeJS.CallSite[] } = {};
  try {
    Error.prepareStackTrace = (_error, frames) => frames;
    Error.captureStackTrace(holder, fn);
    const file = holder.stack?.find((frame) => frame.getFileName())?.getFileName() ?? null;
    if (file === null) return null;
    return /^[a-z][a-z0-9+.-]*:/i.test(file) && !file.startsWith('/') ? file : pathToFileURL(file).href;
  } finally {
    Error.prepareStackTrace = original;
  }
}

export function lazyImport<T extends object>(load: () => Promise<T>, caller: (...args: never[]) => unknown = lazyImport): T {
  if (typeof load !== 'function') throw new TypeError(`lazy() takes a function returning import("<package>"), not ${typeof load}`);
  const specifier = LITERAL_IMPORT.exec(Function.prototype.toString.call(load))?.[2];
  if (specifier === undefined) throw new TypeError('lazy() takes a function returning one literal import("<package>"), e.g. lazy(() => import("typescript"))');
  if (specifier.startsWith('.') || specifier.startsWith('/') || /^file:/i.test(specifier)) {
    throw new TypeError(`lazy(() => import(${JSON.stringify(specifier)})): lazy() loads packages and builtins; load a module of the program lazily with \`import defer * as ns from ${JSON.stringify(specifier)}\` or \`livemod run --lazy\``);
  }
  // In a live module, as the registry resolves that module's own imports of packages (its URL
  // may be a server's); elsewhere, from the calling file.
  const from = callerUrl(caller);
  const parent = (from !== null ? externalsParentFor(from, specifier) : null) ?? (from?.startsWith('file:') ? from : pathToFileURL(`${process.cwd()}/`).href);
  let namespace: Record<PropertyKey, unknown> | null = null;
  // A namespace-like object. Its names are on its prototype: before the load a Proxy whose traps
  // load the package (so `in`, `for…in` and reads load it), after it the package's namespace,
  // whose reads V8 caches as any property's. Assignments fail as on a namespace (the prototype's
  // [[Set]] refuses them). As a deferred namespace (import defer), symbol keys and `then` do not
  // load the package, so the object can be awaited, returned from an async function or
  // inspected for its tag freely. Unlike a namespace, its own keys are none: `Object.keys()` and
  // spreading list nothing (spread `await import()` for that), and until the load defining or
  // deleting a property on it is not refused (the prototype must still be changeable).
  const loaded = (): Record<PropertyKey, unknown> => {
    if (namespace !== null) return namespace;
    try {
      namespace = requireExternal(specifier, parent);
    } catch (error) {
      throw new LivemodError('runtime', ErrorCodes.LAZY_LOAD, `lazy(() => import(${JSON.stringify(specifier)})) in ${parent} failed at its first read: ${requireFailure(error, 'import it normally')}`, { module: specifier, importer: parent }, { cause: error });
    }
    become(namespace);
    return namespace;
  };
  const quiet = (key: PropertyKey): boolean => typeof key === 'symbol' || key === 'then';
  const trigger = new Proxy(Object.create(null) as object, {
    get: (_target, key) => (quiet(key) ? undefined : loaded()[key]),
    has: (_target, key) => (quiet(key) ? false : key in loaded()),
    ownKeys: () => Reflect.ownKeys(loaded()),
    getOwnPropertyDescriptor: (_target, key) => {
      const descriptor = Reflect.getOwnPropertyDescriptor(loaded(), key);
      return descriptor === undefined ? undefined : { ...descriptor, configurable: true };
    },
    set: () => false,
    defineProperty: () => false,
    deleteProperty: () => false,
    setPrototypeOf: () => false,
  });
  const { face, become } = prototypeFace(trigger, `lazy ${specifier}`);
  Object.defineProperty(face, Symbol.toStringTag, { value: 'Module' });
  return face as T;
}

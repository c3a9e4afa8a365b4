// The runtime's only loader hooks, registered once per process (module.registerHooks, sync and
// in-thread). Four jobs:
// - Externals are resolved by Node itself, as if imported from the program's own folder: the
//   runtime asks for `livemod-external:<json>` and the hook hands Node the real specifier with
//   that parent. So an external resolves and behaves exactly as under plain Node — same
//   conditions, same module cache — and `livemod` itself resolves to this very copy, so live
//   code and the runtime share one registry.
// - Namespace shells: a real module namespace object with given export names and values the
//   runtime sets (see exact.ts for why). They are tiny native modules served from memory.
// - Resolutions from inside a laid-out package folder are answered from its record when Node
//   answered them before (resolutions.ts).
// - A require() or import() that loads a live module of the program (from a CommonJS file of
//   it, or a createRequire) is handed the registry's module, not the file (registry.ts requiredModule).
import { createRequire, isBuiltin, registerHooks } from 'node:module';
import { pathToFileURL } from 'node:url';
import { ownEntry } from '../own.ts';
import { inert } from '../text.ts';
import { followResolutions, replayedFileMissing, replayResolution, type ResolutionRecord } from './resolutions.ts';

const MARKER = 'livemod-external:';
const SHELL = 'livemod-namespace:';
const SHELL_INNER = 'livemod-namespace-inner:';
const SELF = ownEntry('index').href;
const HANDOVER = Symbol.for('livemod.namespaceShell');
const CONFIG_FILE = /\/livemod\.config\.[mc]?[jt]s(?:\?[^/]*)?$/;

let registered = false;
/** A package name, not a path, URL, builtin scheme or `#import`. */
const BARE = /^[^./#]/;
let programParent: ((parentURL: string, specifier: string) => string | null) | null = null;

/**
 * Where a package required by a file of the program (a CommonJS module Node loads from the
 * version's folder) resolves from, when not from that folder: `find` answers null to leave it.
 */
export function redirectProgramPackages(find: (parentURL: string, specifier: string) => string | null): void {
  ensureHooks();
  programParent = find;
}
const shellSources = new Map<string, string>();

/** A live module of the program as a require() or an import() gets it: its exact namespace's shell. */
export interface RequiredModule {
  /** The URL of the shell module (NamespaceShell.url). */
  readonly url: string;
  readonly names: readonly string[];
  /**
   * For an import(): evaluates the module when the module standing for it evaluates, as an
   * import evaluates its target (a promise when its graph has top-level await). Absent for a
   * require(), whose module evaluated at once.
   */
  readonly evaluate?: () => unknown;
  readonly tla?: boolean;
}
let programModule: ((url: string, required: boolean, importer: string | undefined) => RequiredModule | null) | null = null;
/**
 * The file that imported each file: URL last (an import(), a static import of Node's loader), for
 * a live module a CommonJS file imports: its importer, which the load hook does not see. Bounded:
 * what is looked up is the URL just resolved.
 */
const importedFrom = new Map<string, string>();
const IMPORTED_FROM_MAX = 256;

function rememberImporter(url: string, parentURL: string): void {
  importedFrom.delete(url);
  importedFrom.set(url, parentURL);
  if (importedFrom.size > IMPORTED_FROM_MAX) importedFrom.delete(importedFrom.keys().next().value!);
}
const EVALUATE = 'livemod-evaluate:';
const EVALUATORS = Symbol.for('livemod.evaluators');
const evaluators = new Map<string, () => unknown>();

/**
 * Which files a require() or an import() loads are live modules of a registry (`find` answers
 * their shell, or null to leave the file to Node).
 */
export function redirectProgramModules(find: (url: string, required: boolean, importer: string | undefined) => RequiredModule | null): void {
  ensureHooks();
  programModule = find;
  // What the module standing for an imported one calls as it evaluates (one call per evaluator).
  Object.defineProperty(globalThis, EVALUATORS, {
    value: (key: string): unknown => {
      const evaluate = evaluators.get(key);
      evaluators.delete(key);
      return evaluate?.();
    },
  });
}

/**
 * What a require() or an import() of a live module of the program loads in place of the file: a
 * module that re-exports the registry's module (its exact namespace's shell), so the program has
 * one instance of it as under Node — for an import(), after a module that evaluates the live one
 * when the import's evaluation reaches it (awaiting it when its graph has top-level await).
 * Taken at the load, not the resolution: require.resolve() only resolves, and Node's caches keep
 * the file's own path and URL (so a later require() or import() of it gets the same module).
 */
function standIn(live: RequiredModule): string {
  const from = JSON.stringify(live.url);
  const exports = `export*from ${from};${live.names.includes('default') ? `export{default}from ${from};` : ''}`;
  if (live.evaluate === undefined) return exports;
  // Not guessable: program code reaching the global cannot take another import's evaluation.
  const key = `${EVALUATE}${process.getBuiltinModule('node:crypto').randomUUID()}`;
  evaluators.set(key, live.evaluate);
  shellSources.set(key, `${live.tla ? 'await ' : ''}globalThis[Symbol.for(${JSON.stringify(EVALUATORS.description)})](${JSON.stringify(key)});`);
  return `import ${JSON.stringify(key)};${exports}`;
}

let watched: { readonly ids: ReadonlySet<string>; readonly first: () => void } | null = null;

/** Calls `first` (once) before any of these builtins is first resolved by an import or a require. */
export function beforeBuiltins(ids: ReadonlySet<string>, first: () => void): void {
  ensureHooks();
  watched = { ids, first };
}

function notice(specifier: string): void {
  if (watched === null || !watched.ids.has(specifier)) return;
  const { first } = watched;
  watched = null;
  first();
}

function ensureHooks(): void {
  if (registered) return;
  registered = true;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      if (specifier.startsWith(SHELL) || specifier.startsWith(SHELL_INNER) || specifier.startsWith(EVALUATE)) return { url: specifier, shortCircuit: true };
      // A project's livemod.config.ts imports defineConfig from this livemod, installed in the project or not.
      if (specifier === 'livemod' && context.parentURL !== undefined && CONFIG_FILE.test(context.parentURL)) return { url: SELF, shortCircuit: true };
      if (!specifier.startsWith(MARKER)) {
        notice(specifier);
        // From inside a laid-out package folder: the answer Node gave before, or Node's, recorded.
        const replayed = replayResolution(specifier, context, nextResolve);
        if (replayed !== undefined) return replayed;
        // A package a CommonJS file of the program requires: from where the registry takes that package from.
        if (programParent !== null && context.parentURL !== undefined && BARE.test(specifier) && !isBuiltin(specifier)) {
          const parent = programParent(context.parentURL, specifier);
          if (parent !== null) {
            // Node's resolution of a require() takes its parent from the requiring module, not from the context: resolved here from the folder.
            if (context.conditions?.includes('require')) {
              try {
                return { url: pathToFileURL(createRequire(new URL('livemod-resolve.js', parent)).resolve(specifier)).href, shortCircuit: true };
              } catch {
                return nextResolve(specifier, context);
              }
            }
            return nextResolve(specifier, { ...context, parentURL: parent });
          }
        }
        const resolved = nextResolve(specifier, context);
        // An import of a file by a file (not a require): who imported it, should it be a live module (the load hook).
        if (programModule !== null && context.parentURL?.startsWith('file:') && resolved.url.startsWith('file:') && context.conditions?.includes('require') !== true) rememberImporter(resolved.url, context.parentURL);
        return resolved;
      }
      const { specifier: real, parent } = JSON.parse(decodeURIComponent(specifier.slice(MARKER.length))) as { specifier: string; parent: string };
      notice(real);
      if (real === 'livemod') return { url: SELF, shortCircuit: true };
      return nextResolve(real, { ...context, parentURL: parent });
    },
    load(url, context, nextLoad) {
      const source = shellSources.get(url);
      if (source === undefined) {
        // A require() or import() of a live module of the program: the registry's (a require() evaluates it now, as Node's require(esm)).
        if (programModule !== null && url.startsWith('file:')) {
          const required = context.conditions?.includes('require') === true;
          const live = programModule(url, required, required ? undefined : importedFrom.get(url));
          if (live !== null) return { format: 'module', source: standIn(live), shortCircuit: true };
        }
        try {
          return nextLoad(url, context);
        } catch (error) {
          throw replayedFileMissing(url, error, context.conditions?.includes('require') === true) ?? error;
        }
      }
      return { format: 'module', source, shortCircuit: true };
    },
  });
}

/** Answers resolutions from inside `record`'s folder from it from now on, and records Node's new answers there. */
export function replayResolutions(record: ResolutionRecord): void {
  ensureHooks();
  followResolutions(record);
}

function marked(specifier: string, parent: string): string {
  ensureHooks();
  return MARKER + encodeURIComponent(JSON.stringify({ specifier, parent }));
}

/** Imports a project's config module, with `livemod` resolving to this copy. */
export function importConfigModule(url: string): Promise<Record<string, unknown>> {
  ensureHooks();
  return import(url) as Promise<Record<string, unknown>>;
}

/** Node's resolution of `specifier` imported from `parent` (a file URL), through the hook. */
export function resolveExternal(specifier: string, parent: string): string {
  return import.meta.resolve(marked(specifier, parent));
}

/** Imports an external natively, as if from `parent`, with the import's attributes. */
export function importExternal(specifier: string, parent: string, attributes?: Readonly<Record<string, string>>): Promise<Record<string, unknown>> {
  const url = marked(specifier, parent);
  return (attributes ? import(url, { with: attributes }) : import(url)) as Promise<Record<string, unknown>>;
}

export interface NamespaceShell {
  /** A real module namespace object with exactly these export names. */
  readonly namespace: object;
  /** The URL of the module whose namespace it is (imported by URL, it is this very namespace). */
  readonly url: string;
  /** Sets the value of the export at `index` of the names given. */
  readonly set: (index: number, value: unknown) => void;
  /** Sets every export, in the order of the names given. */
  readonly setAll: (values: readonly unknown[]) => void;
}

interface Handover {
  setters?: { set: (index: number, value: unknown) => void; all: (values: readonly unknown[]) => void };
  namespace?: object;
}

let shellCount = 0;
let requireShell: NodeRequire | undefined;

/**
 * An external's namespace, loaded synchronously: what `import * as ns from specifier` in a module
 * at `parent` gives — the same conditions, the same module instance, a CommonJS package's named
 * exports as Node's own import finds them — through require(esm) of a one-line wrapper that
 * imports it. For a lazy external's first read (lazy mode `all`). Throws as the import would, and
 * ERR_REQUIRE_ASYNC_MODULE for a package with top-level await (which cannot load synchronously).
 */
export function requireExternal(specifier: string, parent: string, attributes?: Readonly<Record<string, string>>): Record<string, unknown> {
  const clause = attributes ? ` with ${JSON.stringify(attributes)}` : '';
  const handover = requireFromMemory((slot) => [[`${SHELL}${shellCount}`, `import*as ns from ${JSON.stringify(marked(specifier, parent))}${clause};${slot}.namespace=ns;`]]);
  return handover.namespace as Record<string, unknown>;
}

/**
 * How a synchronous load of a package failed, for a lazy first read's message: the first line of
 * `shown` (the error as the caller names it; default the error), `fix` for a package with
 * top-level await, and whether a later read can succeed — a package not found (or a name it
 * lacks) can come right; Node keeps one whose evaluation threw as failed.
 */
export function requireFailure(error: unknown, fix: string, shown: unknown = error): string {
  const code = (error as { code?: string } | null)?.code;
  const what = shown instanceof Error ? `${shown.name}: ${shown.message.split('\n')[0]}` : String(shown);
  const hint = code === 'ERR_REQUIRE_ASYNC_MODULE' ? ` (it has top-level await, so it cannot load at a read: ${fix})` : '';
  const retry = code === 'ERR_MODULE_NOT_FOUND' || (error instanceof SyntaxError && /does not provide an export/.test(error.message)) ? 'the next read tries it again' : 'a package whose evaluation threw stays failed, as under import';
  return `${inert(what, 300)}${hint}; ${retry}`;
}

/**
 * Runs modules served from memory (the last one given is required, synchronously, through
 * require(esm)); they hand values out through a global slot (`slot`, an expression) that exists
 * only for the duration of this call. `sources` gets the slot and gives [url, source] pairs.
 */
function requireFromMemory(sources: (slot: string) => ReadonlyArray<readonly [string, string]>): Handover {
  ensureHooks();
  shellCount += 1;
  const made = sources(`globalThis[Symbol.for(${JSON.stringify(HANDOVER.description)})]`);
  for (const [url, source] of made) shellSources.set(url, source);
  const handover: Handover = {};
  const global = globalThis as Record<symbol, unknown>;
  global[HANDOVER] = handover;
  try {
    requireShell ??= createRequire(import.meta.url);
    requireShell(made.at(-1)![0]);
  } finally {
    delete global[HANDOVER];
    for (const [url] of made) shellSources.delete(url);
  }
  return handover;
}

/**
 * A real, native module namespace with the given export names (sorted, as namespaces have them)
 * whose values only the runtime can set. It is made synchronously with require(esm): an outer
 * module without a default export (so require hands back no interop wrapper) imports the inner
 * one, whose namespace is the shell; the inner module hands its setter out while it evaluates
 * and the outer one hands out the namespace, both through a global slot that exists only for
 * the duration of this call. Native modules are never freed, so callers make one per name set
 * of a namespace, not per read.
 */
export function namespaceShell(names: readonly string[]): NamespaceShell {
  const locals = names.map((_, index) => `v${index}`);
  // Two functions, each compiled once: `all` fills every binding from an array (a new face), and
  // `set` finds one binding by a binary search over its index (a later write): a switch cost its
  // length per call (n² to fill a face), and a closure per binding cost a compile each.
  const search = (low: number, high: number): string => (high - low === 1 ? `${locals[low]}=value;` : `if(index<${(low + high) >> 1}){${search(low, (low + high) >> 1)}}else{${search((low + high) >> 1, high)}}`);
  const setterSources = `set:(index,value)=>{${locals.length === 0 ? '' : search(0, locals.length)}},all:(values)=>{${locals.map((local, index) => `${local}=values[${index}];`).join('')}}`;
  let inner = '';
  const handover = requireFromMemory((slot) => {
    inner = `${SHELL_INNER}${shellCount}`;
    return [
      [inner, `let _${locals.map((local) => `,${local}`).join('')};export{${locals.map((local, index) => `${local} as ${JSON.stringify(names[index])}`).join(',')}};${slot}.setters={${setterSources}};`],
      [`${SHELL}${shellCount}`, `import*as inner from ${JSON.stringify(inner)};${slot}.namespace=inner;`],
    ];
  });
  return { namespace: handover.namespace!, url: inner, set: handover.setters!.set, setAll: handover.setters!.all };
}

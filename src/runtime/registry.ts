// The registry: owns every namespace, creates module versions from a ModuleSource, and runs
// them with ES module semantics — load (every module of the graph is there and parses; import
// attributes fit), link (every imported and re-exported name resolves, linking.ts), instantiate
// (exports and hoisted functions exist: the generator's first step), evaluate (evaluation.ts:
// the spec's algorithm, cycles and top-level await included), errors cached per module as ESM
// caches them. Externals are imported natively through the loader hook, as from the program's
// folder. A swap (swap.ts plans it) replaces module versions in one transaction.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ErrorCodes, LivemodError, isLivemodError, markLinkError } from '../errors.ts';
import { changedPackages, lazyEdge, resolveSpecifier, withTlaBelow, type EagerRules, type ImportRecord, type LazyDecision, type Manifest, type ModuleRecord, type Resolution } from '../snapshot/index.ts';
import { inert, listed, quoted } from '../text.ts';
import { compileModule, withoutCompileCache, type ModuleFactory } from './compile.ts';
import { ModuleContext, type ContextHost } from './context.ts';
import { asyncTransitiveDependencies, evaluate, evaluateSync, newEvaluationState, readyForSync, type Evaluable } from './evaluation.ts';
import { createDeferredNamespace } from './deferred.ts';
import { LoadReport, type LoadHow, type LoadRecord } from './load-report.ts';
import { createHotContext, newHotHandlers, type HotContext, type HotEventCallback, type HotHandlers } from './hot.ts';
import { explainCommonJsGlobal } from './commonjs-hint.ts';
import { importExternal, redirectProgramModules, redirectProgramPackages, requireExternal, requireFailure, resolveExternal, type RequiredModule } from './hooks.ts';
import { Linker, type Binding } from './linking.ts';
import { bindGetter, bindTrigger, bindValue, createNamespace, exactNamespace, exactNamespaceShell, namesOf, prototypeFace, setNames, settle, unbind, type Getters, type Namespace } from './namespace.ts';
import { checkAttributes, importArguments, sourcePhaseError, type Attributes } from './requests.ts';
import { moduleUrl, pathUnder, type ModuleSource } from './source.ts';
import { forgetSourceMap, programSite, registerSourceMap } from './stack.ts';
import { requiringModule, watchRequires } from './require-watch.ts';
import { commonJsFactory, forgetCommonJs } from './native.ts';
import { planSwap, type SwapPlan } from './swap.ts';
import { monotonicMs } from '../clock.ts';
import { CODE_DIR } from '../own.ts';

// The intrinsics, taken before any program runs: `import()` returns a %Promise% even when the
// program has replaced the global `Promise` (as the spec says it must).
const IntrinsicPromise = Promise;
const resolved = (): Promise<void> => IntrinsicPromise.resolve();
const rejectWith = (error: unknown): Promise<never> => IntrinsicPromise.reject(error);

export interface RegistryOptions {
  /** Externals resolve as if imported from this folder (a file URL ending in "/"). Default: the working directory. */
  readonly externalsFrom: string;
  /**
   * `normal`: named, default and namespace imports of live modules are lazy — the module is
   * evaluated at the first read of one of its bindings, not with its importer. Always eager:
   * side-effect-only imports (`import './x'`), re-exports, and modules whose graph has top-level
   * await. `none` (default): only `import defer` defers.
   */
  /** `normal`: imports of live modules wait for a first read; `all`: packages' too (named and default imports). */
  readonly lazy: 'none' | 'normal' | 'all';
  /** With lazy `normal`: imports that stay eager all the same. */
  readonly eager?: EagerRules;
  /** Record each first-read load's site, time and heap growth for `loadReport()` (costs a stack capture and a heap reading per load). */
  readonly report?: boolean;
}


export type { EagerRules };

type ModuleGenerator = ReturnType<ModuleFactory>;
type VersionState = 'staged' | 'current' | 'replaced' | 'failed';

interface Instance extends Evaluable {
  readonly path: string;
  /** Its `import.meta.url`: the module's URL, with `?v=<hash>` for every version after the first. */
  readonly url: string;
  readonly record: ModuleRecord;
  readonly source: ModuleSource;
  readonly namespace: Namespace;
  generator: ModuleGenerator;
  readonly deps: Instance[];
  /** Beside `deps`: whether that import is `import defer`. */
  readonly deferred: boolean[];
  /** Lazy imports of modules not instantiated yet (lazy mode): instantiated at their first read. */
  readonly lazyPaths: string[];
  getters: Getters;
  /** Where each export of this version is shown: namespace faces and the name there. */
  readonly targets: Map<string, [Namespace, string][]>;
  readonly hot: HotHandlers;
  readonly listeners: Map<string, Set<HotEventCallback>>;
  state: VersionState;
}

/** One module in a swap report: its path and blob hashes before and after (null: added or removed). */
export interface SwappedModule {
  readonly path: string;
  readonly from: string | null;
  readonly to: string | null;
}

export interface SwapResult {
  /** applied: committed; failed: rolled back; unaccepted: nothing accepts the change (only with restartOnUnaccepted); unchanged: nothing loaded changed. */
  readonly status: 'applied' | 'failed' | 'unaccepted' | 'unchanged';
  readonly version: number;
  readonly previousVersion: number;
  readonly modules: readonly SwappedModule[];
  /** Modules that got a new version (changed ones and importers that re-ran). */
  readonly reran: readonly string[];
  /** Roots a change reached that nothing accepted: they re-ran in place (or, with restartOnUnaccepted, nothing was applied). */
  readonly unaccepted: readonly string[];
  readonly durationMs: number;
  readonly error?: unknown;
}

export interface SwapOptions {
  /** Do not apply a change that no module accepts; report it as "unaccepted" (the caller restarts). */
  readonly restartOnUnaccepted?: boolean;
  /** Module paths to treat as changed although their record is the same (invalidate()). */
  readonly forced?: readonly string[];
}

/** A module version that was replaced and is still in memory. */
export interface RetainedVersion {
  readonly path: string;
  readonly url: string;
}

// Specifiers, names and reasons come from the manifest: shown inert and bounded (src/text.ts).
function moduleNotFound(specifier: string, importer: string, detail: string): Error {
  const error = new Error(`Cannot find module '${inert(specifier, 200)}' imported from ${importer}${detail ? ` (${inert(detail, 300)})` : ''}`);
  return markLinkError(Object.assign(error, { code: 'ERR_MODULE_NOT_FOUND' }));
}

/** An Error as Node makes its own: a `code`, and `Error [CODE]: …` at the head of its stack. */
function nodeStyleError(code: string, message: string): Error {
  const error = Object.assign(new Error(message), { code });
  error.name = `Error [${code}]`;
  // The stack is formatted at its first read: now, with the code in its head; the name is Error again.
  void error.stack;
  delete (error as { name?: string }).name;
  return error;
}

function missingExport(specifier: string, name: string, importer: string): SyntaxError {
  return markLinkError(new SyntaxError(`The requested module '${inert(specifier, 200)}' does not provide an export named '${inert(name, 200)}' (imported by ${importer})`));
}

function ambiguousExport(specifier: string, name: string, importer: string): SyntaxError {
  return markLinkError(new SyntaxError(`The requested module '${inert(specifier, 200)}' contains conflicting star exports for name '${inert(name, 200)}' (imported by ${importer})`));
}

/** The SyntaxError of a module published marked because it does not parse. */
function unparsable(url: string, record: ModuleRecord): SyntaxError {
  const { message, line, column } = record.error!;
  const error = new SyntaxError(`${inert(message, 300)} (${url}:${line}:${column})`);
  error.stack = `SyntaxError: ${error.message}\n    at ${url}:${line}:${column}`;
  return markLinkError(error);
}

/**
 * A version's source map loader. Made out here so that it closes over the source and record
 * only: made inside instantiateTree it shared that scope's context, and the map table then held
 * every replaced version alive (and so its own entry, which goes when the version is freed).
 */
function mapLoader(source: ModuleSource, record: ModuleRecord): () => string | null {
  return () => (record.map ? source.map(record.map.hash) : null);
}

/** Live modules a record re-exports from (star and indirect exports). */
function reexported(record: ModuleRecord): string[] {
  const out: string[] = [];
  const from = (index: number): void => {
    const entry = record.imports[index];
    if (entry?.kind === 'module') out.push(entry.module!);
  };
  for (const index of record.star) from(index);
  if (record.indirect) for (const [index] of Object.values(record.indirect)) from(index);
  return out;
}

function externalKey(specifier: string, attributes: Attributes | undefined): string {
  return attributes ? JSON.stringify([specifier, attributes]) : specifier;
}

/** Runs callbacks in order; the first failure (a throw or a rejection) is what the swap reports. */
async function runAll(callbacks: (() => unknown)[]): Promise<void> {
  for (const callback of callbacks) await callback();
}

// Replaced versions are watched so the registry can say which are still in memory, and their
// source maps go when they are freed. (A FinalizationRegistry, not WeakRefs: creating a WeakRef
// keeps its target alive to the end of the current task, so a burst of swaps in one task would
// keep every replaced version.)
interface Watched {
  readonly url: string;
  readonly retained: Map<object, RetainedVersion>;
  readonly token: object;
}
const freed = new FinalizationRegistry<Watched>(({ url, retained, token }) => {
  retained.delete(token);
  forgetSourceMap(url);
});

/** The registries of this process, for `externalsParentFor`; weakly held, so a dropped registry goes. */
const registries = new Set<WeakRef<Registry>>();

let redirecting = false;
let requiring = false;

/** Where a package that a CommonJS file of a registry's program requires resolves from, when not from the file's folder. */
function commonJsParentFor(url: string, specifier: string): string | null {
  for (const ref of registries) {
    const parent = ref.deref()?.commonJsParent(url, specifier);
    if (parent !== undefined && parent !== null) return parent;
  }
  return null;
}

/** A live module of a registry's program that a require() or an import() loads (null: a file Node loads itself). */
function requiredModuleFor(url: string, required: boolean, importer: string | undefined): RequiredModule | null {
  for (const ref of registries) {
    const found = ref.deref()?.requiredModule(url, required, importer);
    if (found !== undefined && found !== null) return found;
  }
  return null;
}

/** Where a package imported by the live module at `url` resolves from (null: no registry of this process runs it). */
export function externalsParentFor(url: string, specifier: string): string | null {
  for (const ref of registries) {
    const registry = ref.deref();
    if (registry === undefined) {
      registries.delete(ref);
      continue;
    }
    const parent = registry.externalsParent(url, specifier);
    if (parent !== null) return parent;
  }
  return null;
}

export class Registry {
  private current: ModuleSource;
  readonly options: Readonly<RegistryOptions>;
  private readonly namespaces = new Map<string, Namespace>();
  private readonly facePaths = new WeakMap<Namespace, string>();
  /** `import defer * as ns`: one deferred namespace object per module path. */
  private readonly deferredNamespaces = new Map<string, object>();
  /** How each module came to be loaded, or why it was not (`loadReport()`). */
  private readonly loads = new LoadReport();
  /** Module paths some module imports lazily (lazy mode): their faces evaluate them on first read. */
  private readonly lazyTargets = new Set<string>();
  /** Lazily imported modules not instantiated yet: their faces instantiate them on first read. */
  private readonly pendingLazy = new Set<string>();
  /** Set while a first read instantiates a pending module's graph: lazy imports below it are instantiated too. */
  private instantiatingLazy = false;
  /** The lazy triggers this registry installed (a face keeps the one it has). */
  private readonly triggers = new WeakSet<object>();
  /** Pending modules whose faces hold triggers for the current linker's names. */
  private readonly armed = new Set<string>();
  /** Those armed while unbuilt (source.deferred), with their importers' names only: armed again with all names once built. */
  private readonly armedUnbuilt = new Set<string>();
  /** Modules armed while unbuilt and not instantiated since: their importers' names are checked at each first-read attempt. */
  private readonly unchecked = new Set<string>();
  /** Per manifest: whether a module's static graph has top-level await (such a module is never lazy). */
  private readonly tlaGraphs = new WeakMap<Manifest, ReadonlySet<string>>();
  private readonly instances = new Map<string, Instance>();
  private readonly hotData = new Map<string, Record<string, unknown>>();
  /** What every module's `__lm` context (context.ts) asks of this registry. */
  private readonly contextHost: ContextHost<Instance> = {
    dynamicImport: (specifier, options, importer, defer) => this.dynamicImport(specifier, options, importer, defer),
    sourceImport: (specifier, options, importer) => this.sourceImport(specifier, options, importer),
    publish: (owner, name, value) => this.publish(owner, name, value),
    meta: (owner, data, main) => this.meta(owner, data, main),
    exports: (owner, getters) => {
      owner.getters = getters;
    },
  };
  /** For each face and name: the version whose binding it shows (its writes update it). */
  private readonly owners = new WeakMap<Namespace, Map<string, Instance | null>>();
  private readonly externals = new Map<string, Namespace>();
  private readonly externalLoads = new Map<string, Promise<Namespace>>();
  private readonly externalUrls = new Map<string, string>();
  private readonly externalsByUrl = new Map<string, Namespace>();
  private readonly retained = new Map<object, RetainedVersion>();
  /** Sources whose CommonJS files were loaded afresh (the require cache forgot the folder's): once each. */
  private readonly forgotten = new WeakSet<ModuleSource>();
  /** Module path → current versions that import it statically (kept as versions come and go). */
  private readonly importers = new Map<string, Set<string>>();
  /** Module path → current versions that re-export from it (`export *`, `export … from`): their namespaces show its bindings. */
  private readonly reexporters = new Map<string, Set<string>>();
  /** Module path → the CommonJS files of the program that required it (registry.ts requiredModule): importers of it too, for a swap's plan. */
  private readonly requiredBy = new Map<string, Set<string>>();
  /** The swap being made: what a require() during it gets is the new version. */
  private inSwap: { readonly next: ModuleSource; readonly made: ReadonlyMap<string, Instance> } | null = null;
  /** import.meta.hot.on listeners of current versions, by event. */
  private readonly listeners = new Map<string, Map<HotEventCallback, Instance>>();
  private linker: Linker;
  private swapping: Promise<unknown> = Promise.resolve();

  constructor(source: ModuleSource, options: Partial<RegistryOptions> = {}) {
    this.current = source;
    this.options = Object.freeze({ externalsFrom: options.externalsFrom ?? `${pathToFileURL(process.cwd()).href}/`, lazy: options.lazy ?? 'none', ...(options.eager ? { eager: options.eager } : {}), report: options.report === true });
    this.linker = this.linkerFor(source.manifest);
    registries.add(new WeakRef(this));
    // A require() of a live module (a createRequire of one, or a CommonJS file's) gets this registry's.
    if (!requiring && (source.files ?? source.base).startsWith('file:')) {
      requiring = true;
      redirectProgramModules(requiredModuleFor);
    }
  }

  /**
   * Where a package imported by the module at `url` resolves from, if that module is this
   * registry's: as its own imports of packages resolve (`lazy(() => import("pkg"))` asks this).
   */
  externalsParent(url: string, specifier: string): string | null {
    return url.startsWith(this.current.base) ? this.externalsFrom(specifier) : null;
  }

  /**
   * Where a package required by the file at `url` resolves from, if that file is one of this
   * registry's program and the package does not come from the version's own node_modules (the
   * publisher kept it out, or no packages travelled): as its live modules' imports of it do.
   */
  commonJsParent(url: string, specifier: string): string | null {
    const folder = this.current.files ?? this.current.base;
    if (!url.startsWith(folder) || url.includes('/node_modules/', folder.length)) return null;
    const from = this.externalsFrom(specifier);
    return from === this.current.externalsFrom || from === folder ? null : from;
  }

  /**
   * A require() (`required`) or an import() loads the file at `url` (from a CommonJS file of the
   * program, or a createRequire of a live module). When that is a live module of the program, it
   * gets this registry's module, so the program has one instance of it, as under Node, not a
   * second one Node loads from the folder; during a swap, the version the swap makes. A require
   * evaluates it synchronously now if it has not run, as Node's require(esm); an import gets it
   * loaded and linked, and `evaluate` to run when the import evaluates. Answers the shell of its
   * exact namespace; null leaves the file to Node (not a live module: a CommonJS or JSON file,
   * one in node_modules, one of another folder; or, for an import, a graph whose packages cannot
   * load synchronously). A require throws what it would under Node: ERR_REQUIRE_ASYNC_MODULE for
   * a graph with top-level await (packages included), ERR_REQUIRE_CYCLE_MODULE for a module still
   * evaluating, the module's link errors, its own evaluation error.
   */
  requiredModule(url: string, required = true, importer?: string): RequiredModule | null {
    const source = this.inSwap?.next ?? this.current;
    const folder = source.files ?? source.base;
    if (!folder.startsWith('file:') || !url.startsWith(folder) || url.includes('/node_modules/', folder.length)) return null;
    // livemod's own files, when the program's folder holds them (a checkout of livemod run from its sources): livemod's.
    if (url.startsWith(CODE_DIR.href)) return null;
    let path: string;
    try {
      path = decodeURIComponent(url.slice(folder.length));
    } catch {
      return null;
    }
    const manifest = source.manifest;
    const record = Object.hasOwn(manifest.modules, path) ? manifest.modules[path]! : undefined;
    if (record === undefined || record.commonjs === true || /\.json$/i.test(path)) return null;
    const file = fileURLToPath(url);
    const parent = required ? requiringModule()?.filename : undefined;
    // The CommonJS file of the program that requires it, or imports it (`importer`: its URL, from the resolve hook).
    const importingFile = importer?.startsWith('file:') ? this.programPath(source, fileURLToPath(importer)) : undefined;
    // An importer Node loaded is a CommonJS file of the program (or an ES module it loaded itself as a fallback: not one).
    const requirer = parent !== undefined ? this.programPath(source, parent) : importingFile !== undefined && source.manifest.modules[importingFile]?.commonjs === true ? importingFile : undefined;
    // A CommonJS file of the program that requires or imports it: an importer of it, for a swap's plan.
    if (requirer !== undefined) {
      let by = this.requiredBy.get(path);
      if (!by) this.requiredBy.set(path, (by = new Set()));
      by.add(requirer);
    }
    const tla = this.graphHasTLA(manifest, path);
    // Evaluated or not, as Node's require(esm).
    if (required && tla) {
      throw nodeStyleError('ERR_REQUIRE_ASYNC_MODULE', `require() cannot be used on an ESM graph with top-level await. Use import() instead. To see where the top-level await comes from, use --experimental-print-required-tla.\nRequired module: ${file}${parent === undefined ? '' : `\nRequire stack:\n- ${parent}`}`);
    }
    let instance = this.inSwap?.made.get(path) ?? this.instances.get(path);
    if (instance === undefined) {
      this.loads.imported(path, required ? 'eager' : 'dynamic', requirer, required ? 'required by a CommonJS file' : undefined);
      try {
        // Its graph as a start loads one: present, checked, its packages loaded (synchronously:
        // a package with top-level await fails here, before anything runs, as under Node).
        this.loadGraphSync(path);
        this.instantiateLazy(path);
      } catch (error) {
        // Code the start did not fetch, from a source that cannot fetch while a require waits (an
        // origin served by this very process): the file, as Node loads it. An import of a graph
        // whose packages await cannot take it now: Node's own instance, as before.
        if (this.current.ensureSync === undefined && isLivemodError(error) && error.code === ErrorCodes.HASH_MISMATCH) return null;
        if (!required && (error as { code?: unknown }).code === 'ERR_REQUIRE_ASYNC_MODULE') return null;
        throw error;
      }
      instance = this.instances.get(path)!;
    }
    const settled = instance;
    const run = (): unknown => {
      const status = settled.evaluation.status;
      if (tla && status !== 'evaluated') return evaluate(settled);
      if (status === 'evaluating' || status === 'evaluating-async' || (status !== 'evaluated' && !readyForSync(settled))) {
        throw nodeStyleError('ERR_REQUIRE_CYCLE_MODULE', `Cannot require() ES Module ${file} in a cycle.${parent === undefined ? '' : ` (from ${parent})`} A cycle involving require(esm) is not allowed to maintain invariants mandated by the ECMAScript specification. Try making at least part of the dependency in the graph lazily loaded.`);
      }
      if (this.instances.get(path) === settled) this.touch(path);
      // Evaluated before: its error again, as Node's require of a module whose evaluation threw.
      evaluateSync(settled);
      return undefined;
    };
    if (!required) return { ...exactNamespaceShell(settled.namespace), evaluate: run, tla };
    run();
    return exactNamespaceShell(settled.namespace);
  }

  /** The path in `source`'s manifest of a file of its folder (a real path), if it is one. */
  private programPath(source: ModuleSource, file: string): string | undefined {
    const folder = source.files ?? source.base;
    if (!folder.startsWith('file:')) return undefined;
    const url = pathToFileURL(file).href;
    if (!url.startsWith(folder)) return undefined;
    const path = decodeURIComponent(url.slice(folder.length));
    return Object.hasOwn(source.manifest.modules, path) ? path : undefined;
  }

  /** The snapshot the registry runs now (a swap changes it). */
  get source(): ModuleSource {
    return this.current;
  }

  private linkerFor(manifest: Manifest): Linker {
    return new Linker({
      record: (path) => this.recordIn(manifest, path),
      has: (path) => Object.hasOwn(manifest.modules, path),
      external: (entry) => {
        const namespace = this.externals.get(externalKey(entry.specifier, entry.attributes));
        return { key: `external:${this.externalUrl(entry.specifier)}`, names: namespace ? Object.keys(namespace) : [] };
      },
    });
  }

  /** The program's main module (`import.meta.main`), set by the import that starts the program. */
  private mainPath: string | null = null;

  /**
   * Where an external resolves from: the version's own node_modules when its packages travelled,
   * except for a package the publisher kept out (`manifest.externals`), which the client brings
   * in its own folder (the registry's option: the working directory).
   */
  private externalsFrom(specifier?: string): string {
    const own = this.current.externalsFrom;
    if (own === undefined) return this.options.externalsFrom;
    const kept = this.current.manifest.externals;
    if (specifier !== undefined && kept) {
      const parts = specifier.split('/');
      const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
      if (Object.hasOwn(kept, name)) return this.options.externalsFrom;
    }
    return own;
  }

  /** The module paths loaded now (every one has a current version). */
  loaded(): string[] {
    return [...this.instances.keys()];
  }

  /**
   * Where `importer` imports `specifier`, as `url:line:column` in its source file, for messages;
   * null when the source is not a file here (a host without the program's files). Manifest
   * records keep no line for a resolved import, so the import is looked up in the source text.
   */
  private importSite(importer: string, specifier: string): string | null {
    const url = this.urlOf(importer);
    if (!url.startsWith('file:')) return null;
    let text: string;
    try {
      text = readFileSync(fileURLToPath(url), 'utf8');
    } catch {
      return null;
    }
    const lines = text.split('\n');
    for (let index = 0; index < lines.length; index += 1) {
      const line = lines[index]!;
      for (const quote of ["'", '"']) {
        const at = line.indexOf(`${quote}${specifier}${quote}`);
        if (at !== -1 && /\b(?:import|from)\b/.test(line)) return `${url}:${index + 1}:${at + 1}`;
      }
    }
    return null;
  }

  /**
   * Where a link error names the importer: the import's `url:line:column` when its source is a
   * file here, else the module's URL; for a remote version the origin's URL, as stack frames name
   * it (the file it runs from is in the store).
   */
  private importerInMessage(importer: string, specifier: string, source: ModuleSource = this.current): string {
    return this.shown(this.importSite(importer, specifier) ?? moduleUrl(importer, source.base), source);
  }

  /** A module's URL (and what follows it) as messages show it: a remote version's by its origin's URL, as stack frames do. */
  private shown(url: string, source: ModuleSource = this.current): string {
    return source.origin !== undefined && url.startsWith(source.base) ? `${source.origin}${url.slice(source.base.length)}` : url;
  }

  /** The URL a module path has in this registry: the `import.meta.url` of its first version. */
  urlOf(path: string): string {
    return moduleUrl(path, this.current.base);
  }

  private namespaceOf(path: string): Namespace {
    let namespace = this.namespaces.get(path);
    if (!namespace) {
      namespace = createNamespace(path);
      this.namespaces.set(path, namespace);
      this.facePaths.set(namespace, path);
    }
    return namespace;
  }

  /** Lazy mode: whether import `index` of `record` waits for the first read of its bindings. */
  private lazyDecision(manifest: Manifest, record: ModuleRecord, index: number, importer: string): LazyDecision {
    const entry = record.imports[index]!;
    const decision = lazyEdge(this.options, record, index, importer, entry.kind, entry.module);
    if (!decision.lazy || entry.kind === 'external') return decision;
    // A module a local build left unbuilt (src/build/build.ts) is one whose graph had none.
    if (this.graphHasTLA(manifest, entry.module!)) return { lazy: false, reason: 'top-level await in its graph' };
    return decision;
  }

  /** How each module of this run came to be loaded, or why it was not: `livemod run --report`. */
  loadReport(): LoadRecord[] {
    return this.loads.list();
  }

  private graphHasTLA(manifest: Manifest, path: string): boolean {
    let found = this.tlaGraphs.get(manifest);
    if (!found) {
      found = withTlaBelow(manifest.modules);
      this.tlaGraphs.set(manifest, found);
    }
    return found.has(path);
  }


  /** Whether a module that stays through the swap (not in `made`), and has run, imports `path` by a static import that is not deferred. */
  private importedByStaying(path: string, made: ReadonlyMap<string, Instance>): boolean {
    for (const importerPath of this.importers.get(path) ?? []) {
      if (made.has(importerPath)) continue;
      const importer = this.instances.get(importerPath);
      if (!importer || importer.evaluation.status !== 'evaluated' || importer.evaluation.error) continue;
      if (importer.deps.some((dep, index) => dep.path === path && !importer.deferred[index])) return true;
    }
    return false;
  }

  /**
   * The first read of a binding of a lazily imported module: evaluates it (synchronously; its
   * graph has no top-level await) unless it is evaluating or evaluated already, then shows its
   * bindings as ordinary data properties, so later reads cost what any read costs.
   */
  private touch(path: string): void {
    const instance = this.instances.get(path);
    if (!instance) return;
    if (instance.evaluation.status === 'linked') this.evaluateAtFirstRead(instance);
    if (instance.evaluation.status === 'evaluated' && !instance.evaluation.error) this.linkFace(instance, this.linker);
  }

  /** Evaluates a lazy or deferred module at its first read, recording where, how long and how much heap. */
  private evaluateAtFirstRead(instance: Instance): void {
    if (!this.options.report) {
      evaluateSync(instance);
      return;
    }
    const done = this.loads.touching(instance.path, programSite());
    try {
      evaluateSync(instance);
    } catch (error) {
      done(error);
      throw error;
    }
    done();
  }

  /** The deferred namespace of a module: its first touch evaluates the module's current version synchronously. */
  private deferredNamespaceOf(path: string): object {
    let deferred = this.deferredNamespaces.get(path);
    if (!deferred) {
      const fast = this.namespaceOf(path);
      deferred = createDeferredNamespace(fast, () => namesOf(fast), () => {
        // Dropped by a failed lazy read of the same module (lazy mode): a deferred touch instantiates it again.
        if (!this.instances.has(path)) this.instantiateLazy(path);
        const instance = this.instances.get(path)!;
        if (instance.evaluation.status === 'linked') this.evaluateAtFirstRead(instance);
        else evaluateSync(instance);
      });
      this.deferredNamespaces.set(path, deferred);
    }
    return deferred;
  }

  private recordIn(manifest: Manifest, path: string): ModuleRecord {
    const record = Object.hasOwn(manifest.modules, path) ? manifest.modules[path] : undefined;
    if (!record) throw new LivemodError('runtime', ErrorCodes.MODULE_NOT_FOUND, `no module ${quoted(path)} in the snapshot at ${this.current.base}; modules there include ${listed(Object.keys(manifest.modules), 5, (item) => quoted(item, 80))}`, { path });
    return record;
  }

  /** Imports a module of the snapshot by path and returns its namespace once evaluated. */
  async import(path: string, options: { main?: boolean; how?: LoadHow; importer?: string } = {}): Promise<Namespace> {
    if (options.main) this.mainPath = path;
    this.loads.imported(path, options.how ?? 'entry', options.importer);
    if (!Object.hasOwn(this.current.manifest.modules, path)) this.grow(`./${path}`, null);
    await this.prepare(path);
    const instance = this.instances.get(path)!;
    await evaluate(instance);
    return exactNamespace(instance.namespace) as Namespace;
  }

  /**
   * `import.defer(…)`: the module's graph loaded and linked, only the modules with top-level
   * await below it evaluated; the rest evaluates at the first touch of the deferred namespace.
   */
  private async importDeferred(path: string, importer: string): Promise<object> {
    this.loads.imported(path, 'deferred', importer);
    if (!Object.hasOwn(this.current.manifest.modules, path)) this.grow(`./${path}`, null);
    await this.prepare(path);
    const pending = asyncTransitiveDependencies(this.instances.get(path)!).map((module) => evaluate(module));
    await Promise.all(pending);
    return this.deferredNamespaceOf(path);
  }

  /**
   * Every module of the graph under `roots` that is not loaded yet (or is to be replaced):
   * present, parsed, attributes fitting; the externals they need are loaded. Throws as loading
   * a module graph throws.
   */
  private async load(source: ModuleSource, roots: readonly string[], fresh: (path: string) => boolean): Promise<void> {
    const { seen, externals, left } = this.loadable(source, roots, fresh, true);
    if (source.ensure && seen.size > 0) await source.ensure([...seen]);
    // The packages of graphs left to a first read load now, as a start always loaded them: a
    // package's evaluation may await (top-level await), which a first read cannot.
    const packages: { specifier: string; attributes?: Attributes }[] = [...externals.map(({ entry }) => entry), ...this.packagesBelow(source.manifest, left), ...(source.deferredExternals ?? [])];
    for (const entry of packages) {
      if (!this.externals.has(externalKey(entry.specifier, entry.attributes))) await this.loadExternal(entry.specifier, entry.attributes, roots[0]!);
    }
  }

  /** The packages the static graphs under `roots` import (but those lazy mode `all` leaves to a first read), for modules not instantiated yet. */
  private packagesBelow(manifest: Manifest, roots: readonly string[]): ImportRecord[] {
    const found: ImportRecord[] = [];
    const seen = new Set<string>();
    const queue = [...roots];
    for (let at = 0; at < queue.length; at += 1) {
      const path = queue[at]!;
      if (seen.has(path) || this.instances.has(path) || !Object.hasOwn(manifest.modules, path)) continue;
      seen.add(path);
      const record = manifest.modules[path]!;
      for (let index = 0; index < record.imports.length; index += 1) {
        const entry = record.imports[index]!;
        if (entry.dynamic) continue;
        if (entry.kind === 'module') queue.push(entry.module!);
        else if (entry.kind === 'external' && (this.options.lazy !== 'all' || !this.lazyDecision(manifest, record, index, path).lazy)) found.push(entry);
      }
    }
    return found;
  }

  /**
   * The load phase's walk of the graph under `roots`, over the modules `fresh` accepts: each
   * parses, its imports resolve, its attributes fit; the modules reached and the packages they
   * import (but those lazy mode `all` leaves to a first read). With `deferring`, it stops at lazy
   * imports whose graph a first read loads (a local build left it unbuilt; a source can fetch it then).
   */
  private loadable(source: ModuleSource, roots: readonly string[], fresh: (path: string) => boolean, deferring: boolean): { seen: Set<string>; externals: { entry: ImportRecord; importer: string }[]; left: string[] } {
    const externals: { entry: ImportRecord; importer: string }[] = [];
    const seen = new Set<string>();
    const left: string[] = [];
    const manifest = source.manifest;
    const collect = (current: string): void => {
      if (seen.has(current) || !fresh(current)) return;
      seen.add(current);
      const record = this.recordIn(manifest, current);
      // For messages only: a URL object per module and per import cost 2.4 MB of a 2,000-module start's allocations.
      const url = (): string => moduleUrl(current, source.base);
      if (record.error) throw unparsable(url(), record);
      for (let index = 0; index < record.imports.length; index += 1) {
        const entry = record.imports[index]!;
        if (entry.dynamic) continue;
        if (entry.kind === 'unresolved') throw moduleNotFound(entry.specifier, this.shown(`${url()}:${entry.line}`, source), entry.reason ?? '');
        if (entry.kind === 'external') {
          // Lazy mode `all`: a package imported by name loads at the first read of a binding.
          if (this.options.lazy !== 'all' || !this.lazyDecision(manifest, record, index, current).lazy) externals.push({ entry, importer: current });
          continue;
        }
        if (!Object.hasOwn(manifest.modules, entry.module!)) {
          // Left unbuilt by a local build (a lazily imported graph): its first read builds it.
          if (deferring && source.deferred?.has(entry.module!) && this.lazyDecision(manifest, record, index, current).lazy) continue;
          throw moduleNotFound(entry.specifier, this.shown(url(), source), 'not in the snapshot');
        }
        // A lazily imported graph a source can fetch at the first read is left to it (a URL run fetches only what runs).
        if (deferring && source.ensureSync && !this.instances.has(entry.module!) && !seen.has(entry.module!) && this.lazyDecision(manifest, record, index, current).lazy) {
          left.push(entry.module!);
          continue;
        }
        // Nothing to check for a module without attributes that is not JSON (checkAttributes returns at once).
        if (entry.phase !== 'source' && (entry.attributes !== undefined || entry.module!.endsWith('.json'))) checkAttributes(moduleUrl(entry.module!, source.base), entry.module!.endsWith('.json'), entry.attributes);
        collect(entry.module!);
      }
    };
    for (const root of roots) collect(root);
    return { seen, externals, left };
  }

  /**
   * Loads what the graph under `path` needs and is not loaded yet, then, without awaiting
   * anything, instantiates and links every new module. Nothing interleaves with that
   * synchronous part, so concurrent imports cannot see half a graph.
   */
  private async prepare(path: string): Promise<void> {
    await this.load(this.current, [path], (candidate) => !this.instances.has(candidate));
    if (this.instances.has(path)) return;
    this.instantiate(path, false);
  }

  /**
   * Instantiates and links the graph under `path` (loaded already) and makes it current.
   * `lazyToo`: lazy imports below are instantiated in this pass as well (a first read).
   */
  private instantiate(path: string, lazyToo: boolean): readonly Instance[] {
    const isNew = (candidate: string): boolean => !this.instances.has(candidate);
    const fresh: Instance[] = [];
    const made = new Map<string, Instance>();
    try {
      this.instantiatingLazy = lazyToo;
      try {
        withoutCompileCache(() => this.instantiateTree(this.current, path, fresh, made, isNew));
      } finally {
        this.instantiatingLazy = false;
      }
      for (const instance of fresh) this.checkLinks(instance, this.linker);
      for (const instance of fresh) if (this.unchecked.has(instance.path)) this.checkImporters(instance.path);
      const versionOf = (candidate: string): Instance => made.get(candidate) ?? this.instances.get(candidate)!;
      for (const instance of fresh) this.linkFace(instance, this.linker, versionOf);
    } catch (error) {
      if (error instanceof Error) void error.stack;
      // A graph that fails to link is not kept: the same import fails the same way again.
      this.discard(fresh);
      throw error;
    }
    for (const instance of fresh) this.makeCurrent(instance);
    this.armPending();
    return fresh;
  }

  /**
   * The faces of lazily imported modules not instantiated yet: each name a trigger that
   * instantiates the module's graph (compiled and linked from what the start already loaded:
   * the load phase walks lazy imports too) and then evaluates it, as any lazy first read does.
   */
  private armPending(): void {
    for (const path of this.pendingLazy) {
      if (this.instances.has(path)) continue;
      // A module left unbuilt (source.deferred) shows the names its importers import, which grow
      // as importers arrive; its first read builds it and checks them.
      const unbuilt = !Object.hasOwn(this.current.manifest.modules, path);
      if (this.armed.has(path) && !unbuilt && !this.armedUnbuilt.has(path)) continue;
      this.armed.add(path);
      if (unbuilt) {
        this.armedUnbuilt.add(path);
        this.unchecked.add(path);
      } else {
        this.armedUnbuilt.delete(path);
      }
      const face = this.namespaceOf(path);
      const names = unbuilt ? this.importedNames(path) : this.linker.names(path);
      for (const name of names) this.installTrigger(face, path, name);
      setNames(face, names);
    }
  }

  /** The names the current importers of `path` import from it (not through import()). */
  private importedNames(path: string): string[] {
    const names = new Set<string>();
    for (const importer of this.importers.get(path) ?? []) {
      for (const entry of this.instances.get(importer)?.record.imports ?? []) {
        if (entry.dynamic || entry.kind !== 'module' || entry.module !== path) continue;
        for (const name of entry.names) if (name !== '*') names.add(name);
      }
    }
    return [...names].sort();
  }

  /**
   * What a first read needs before it instantiates `path`'s graph, when the start's load phase
   * left that graph out (a local build deferred it, a URL run did not fetch it): the graph built
   * or fetched, and checked as a load phase checks it. Its packages loaded at start; one the
   * start did not know of (a deferred file that imports a new package) is loaded now,
   * synchronously.
   */
  private loadDeferred(path: string): void {
    // A source that fetches at a first read is asked every time: a graph whose read failed, or
    // that a swap's new version never fetched, may still be missing (missingBlobs makes it cheap).
    if (!this.unchecked.has(path) && !this.current.ensureSync) return;
    this.loadGraphSync(path);
  }

  /** The load phase of `path`'s graph, synchronously: built, fetched, checked, its packages loaded. */
  private loadGraphSync(path: string): void {
    if (this.unchecked.has(path)) this.buildDeferred(path);
    // After the build: a deferred module's build grows the current source.
    const source = this.current;
    const { seen, externals } = this.loadable(source, [path], (candidate) => !this.instances.has(candidate), false);
    // The graph's blobs the start did not fetch, in one batch; then its packages.
    source.ensureSync?.([...seen]);
    for (const { entry, importer: current } of externals) {
      if (this.externals.has(externalKey(entry.specifier, entry.attributes))) continue;
      let namespace: Namespace;
      try {
        namespace = requireExternal(entry.specifier, this.externalsFrom(entry.specifier), entry.attributes) as Namespace;
      } catch (error) {
        if ((error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') throw Object.assign(moduleNotFound(entry.specifier, this.shown(this.urlOf(current)), this.missingExternal(entry.specifier)), { cause: error });
        throw error;
      }
      this.externals.set(externalKey(entry.specifier, entry.attributes), namespace);
      this.externalsByUrl.set(this.externalUrl(entry.specifier), namespace);
    }
  }

  /**
   * A lazily imported module a local build left unbuilt, built now at its first read; its graph
   * (which had no top-level await when the build record was made) must still have none. The
   * names its importers import are checked when it is instantiated (checkImporters).
   */
  private buildDeferred(path: string): void {
    if (!Object.hasOwn(this.current.manifest.modules, path) && !this.grow(`./${path}`, null)) throw new LivemodError('runtime', ErrorCodes.MODULE_NOT_FOUND, `no module ${quoted(path)} in ${this.current.base} any more: it was left to be built at its first read, and is gone`, { path });
    if (this.graphHasTLA(this.current.manifest, path)) {
      throw new LivemodError('runtime', ErrorCodes.LAZY_AWAIT, `${path} now has top-level await in its graph, which a first read cannot wait for; restart (the next start imports it eagerly) or keep it eager with an eager rule`, { path });
    }
  }

  /**
   * The link check a start makes of a module's importers, made when a module armed unbuilt is
   * instantiated (by its own first read, inside another lazy graph's, or through import()):
   * every name they import from it is there.
   */
  private checkImporters(path: string): void {
    for (const importer of this.importers.get(path) ?? []) {
      const instance = this.instances.get(importer);
      if (!instance) continue;
      for (const entry of instance.record.imports) {
        if (entry.dynamic || entry.kind !== 'module' || entry.module !== path) continue;
        for (const name of entry.names) {
          if (name === '*') continue;
          const resolution = this.linker.resolveExport(path, name);
          if (resolution === null) throw missingExport(entry.specifier, name, this.importerInMessage(importer, entry.specifier, instance.source));
          if (resolution === 'ambiguous') throw ambiguousExport(entry.specifier, name, this.importerInMessage(importer, entry.specifier, instance.source));
        }
      }
    }
  }


  /**
   * prepare() without the load phase (done at start): synchronous, for a first read. The whole
   * graph below is instantiated in this one pass (its lazy imports still evaluate at their own
   * first reads): instantiating it module by module, one first read at a time, cost a first
   * touch of a 1,000-module graph 1.4× an eager start.
   */
  private instantiateLazy(path: string): readonly Instance[] {
    return this.instantiate(path, true);
  }

  /** Makes a version the current one of its path, with its import edges indexed. */
  private makeCurrent(instance: Instance): void {
    const old = this.instances.get(instance.path);
    if (old && old !== instance) this.unindex(old);
    instance.state = 'current';
    this.instances.set(instance.path, instance);
    const add = (index: Map<string, Set<string>>, path: string): void => {
      let set = index.get(path);
      if (!set) {
        set = new Set();
        index.set(path, set);
      }
      set.add(instance.path);
    };
    for (const dep of instance.deps) add(this.importers, dep.path);
    for (const path of instance.lazyPaths) add(this.importers, path);
    this.pendingLazy.delete(instance.path);
    this.armed.delete(instance.path);
    this.armedUnbuilt.delete(instance.path);
    this.unchecked.delete(instance.path);
    for (const path of reexported(instance.record)) add(this.reexporters, path);
  }

  private unindex(old: Instance): void {
    for (const dep of old.deps) this.importers.get(dep.path)?.delete(old.path);
    for (const path of old.lazyPaths) this.importers.get(path)?.delete(old.path);
    for (const path of reexported(old.record)) this.reexporters.get(path)?.delete(old.path);
    for (const [event, callbacks] of old.listeners) for (const callback of callbacks) this.listeners.get(event)?.delete(callback);
  }

  private discard(instances: readonly Instance[]): void {
    for (const instance of instances) {
      for (const [event, callbacks] of instance.listeners) for (const callback of callbacks) this.listeners.get(event)?.delete(callback);
      instance.listeners.clear();
      // Its source map (whose loader holds the whole source) goes now: a failed version never runs again.
      if (instance.state !== 'failed') forgetSourceMap(instance.url);
      instance.state = 'failed';
      for (const targets of instance.targets.values()) for (const [face, key] of targets) this.ownersOf(face).set(key, null);
      instance.targets.clear();
    }
  }

  private loadExternal(specifier: string, attributes: Attributes | undefined, importer: string): Promise<Namespace> {
    const key = externalKey(specifier, attributes);
    let load = this.externalLoads.get(key);
    if (!load) {
      load = importExternal(specifier, this.externalsFrom(specifier), attributes).then(
        (namespace) => {
          this.externals.set(key, namespace);
          this.externalsByUrl.set(this.externalUrl(specifier), namespace);
          return namespace;
        },
        (error: unknown) => {
          this.externalLoads.delete(key);
          const code = (error as { code?: string }).code;
          if (code === 'ERR_MODULE_NOT_FOUND') throw Object.assign(moduleNotFound(specifier, this.shown(this.urlOf(importer)), this.missingExternal(specifier)), { cause: error });
          throw error;
        },
      );
      this.externalLoads.set(key, load);
    }
    return load;
  }

  /** Why an external was not found, and what to do: what the manifest says of its package, and where it was looked for. */
  private missingExternal(specifier: string): string {
    const from = this.externalsFrom(specifier);
    const where = from.startsWith('file:') ? fileURLToPath(from) : from;
    const parts = specifier.split('/');
    const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
    const { manifest } = this.current;
    const range = manifest.externals && Object.hasOwn(manifest.externals, name) ? manifest.externals[name] : undefined;
    if (range !== undefined) {
      return `package ${inert(name, 120)} does not travel in the snapshot${range ? ` (the publisher's package.json asks for ${inert(range, 60)})` : ''}; install it in ${where}: npm install ${inert(name, 120)}${range ? `@'${inert(range, 60)}'` : ''}`;
    }
    if (manifest.layout !== undefined) return `the snapshot carries no package ${inert(name, 120)} (the publisher's folder had none installed): the publisher must install it and publish again`;
    return `externals resolve from ${where}; install it there`;
  }

  /** An external's identity: the URL Node resolves it to (`path` and `node:path` are one module). */
  private externalUrl(specifier: string): string {
    let url = this.externalUrls.get(specifier);
    if (url === undefined) {
      try {
        url = resolveExternal(specifier, this.externalsFrom(specifier));
      } catch {
        url = specifier;
      }
      this.externalUrls.set(specifier, url);
    }
    return url;
  }

  /**
   * Instantiates `path` from `source` if `isNew(path)`, and everything new below it; modules not
   * new are the current versions. `made` holds the versions made in this pass (cycles).
   */
  private instantiateTree(source: ModuleSource, path: string, fresh: Instance[], made: Map<string, Instance>, isNew: (path: string) => boolean): Instance {
    const done = made.get(path) ?? (isNew(path) ? undefined : this.instances.get(path));
    if (done) return done;
    const record = this.recordIn(source.manifest, path);
    const replacing = this.instances.has(path);
    const base = moduleUrl(path, source.base);
    const url = replacing ? `${base}?v=${record.blob.hash.slice(0, 12)}` : base;
    const namespaces: (Namespace | object)[] = [];
    const livePaths: { path: string; deferred: boolean }[] = [];
    const lazyPaths: string[] = [];
    for (let index = 0; index < record.imports.length; index += 1) {
      const entry = record.imports[index]!;
      if (entry.dynamic) continue;
      if (entry.kind === 'module') {
        namespaces.push(entry.defer ? this.deferredNamespaceOf(entry.module!) : this.namespaceOf(entry.module!));
        const decision = entry.defer ? { lazy: false } : this.lazyDecision(source.manifest, record, index, path);
        const lazy = decision.lazy;
        if (lazy && !this.lazyTargets.has(entry.module!)) {
          this.lazyTargets.add(entry.module!);
          // Instantiated already (an `import defer` of it, say) but not run: its face gets its triggers now.
          const existing = this.instances.get(entry.module!);
          if (existing && existing.evaluation.status === 'linked') this.linkFace(existing, this.linker);
        }
        this.loads.imported(entry.module!, entry.defer ? 'deferred' : lazy ? 'lazy' : 'eager', path, decision.reason);
        // A lazy import of a module nothing instantiated yet is left for its first read:
        // compiling, linking and evaluating its graph wait until then.
        // A module the source left unbuilt stays pending even in a first read's pass: its own first read builds it.
        const unbuilt = !Object.hasOwn(source.manifest.modules, entry.module!);
        if (lazy && (!this.instantiatingLazy || unbuilt) && !made.has(entry.module!) && !this.instances.has(entry.module!)) {
          this.pendingLazy.add(entry.module!);
          lazyPaths.push(entry.module!);
          continue;
        }
        livePaths.push({ path: entry.module!, deferred: entry.defer === true || lazy });
      } else {
        const loaded = this.externals.get(externalKey(entry.specifier, entry.attributes));
        if (loaded) {
          namespaces.push(loaded);
        } else {
          this.loads.imported(`external:${entry.specifier}`, 'lazy', path);
          namespaces.push(this.lazyExternalFace(entry.specifier, entry.names, path));
        }
      }
    }
    registerSourceMap(url, mapLoader(source, record), this.shown(url, source));
    let data = this.hotData.get(path);
    if (!data) {
      data = {};
      this.hotData.set(path, data);
    }
    const instance: Instance = {
      path,
      url,
      record,
      source,
      namespace: this.namespaceOf(path),
      generator: undefined as unknown as ModuleGenerator,
      deps: [],
      deferred: [],
      lazyPaths: [],
      getters: {},
      targets: new Map(),
      hot: newHotHandlers(),
      listeners: new Map(),
      state: 'staged',
      hasTLA: record.tla,
      evaluation: newEvaluationState(),
      execute: () => {
        // A version dropped by a failed swap is not run, even when a dependency it waited on
        // (top-level await) settles after the rollback.
        if (instance.state === 'failed') return undefined;
        this.loads.ran(path);
        let step: IteratorResult<unknown> | Promise<unknown>;
        try {
          step = instance.generator.next();
        } catch (error) {
          explainCommonJsGlobal(error);
          this.loads.failed(path, error);
          throw error;
        }
        if (record.tla) return step as Promise<unknown>;
        // A lazily imported module that ran by another path: its face drops the triggers.
        if (this.lazyTargets.has(path) && this.instances.get(path) === instance) this.linkFace(instance, this.linker);
        return undefined;
      },
    };
    made.set(path, instance);
    fresh.push(instance);
    if (record.commonjs && !redirecting) {
      redirecting = true;
      redirectProgramPackages(commonJsParentFor);
      // Which CommonJS file requires a live module: an importer of it, for a swap's plan.
      watchRequires();
    }
    const factory = record.commonjs ? this.commonJs(source, path, replacing) : compileModule(source.blob(record.blob.hash), namespaces.length, url, record.tla, source.codeCache ? { cache: source.codeCache, hash: record.blob.hash } : undefined);
    const context = new ModuleContext(this.contextHost, instance, data, namespaces, path === this.mainPath);
    instance.generator = factory(context, ...namespaces);
    // Instantiation: the prologue registers the exports; function declarations are hoisted.
    // (An async module's first step also runs synchronously up to its `yield`.)
    void instance.generator.next();
    for (const live of livePaths) {
      instance.deps.push(this.instantiateTree(source, live.path, fresh, made, isNew));
      instance.deferred.push(live.deferred);
    }
    instance.lazyPaths.push(...lazyPaths);
    return instance;
  }

  /**
   * The module function of a CommonJS file of the program (record `commonjs`), which Node loads
   * from the version's folder: a remote version's own folder, not the view a swap re-points,
   * since Node keeps the real path of each file it loaded for the life of the process.
   */
  private commonJs(source: ModuleSource, path: string, replacing: boolean): ModuleFactory {
    const folder = source.files ?? source.base;
    if (!folder.startsWith('file:')) {
      throw new LivemodError('runtime', ErrorCodes.MODULE_NOT_FOUND, `${quoted(path)} is CommonJS, which Node loads from the program's files, and this source (${folder}) lays out no files; run it through livemod run, which lays out the version's folder`, { path });
    }
    // Joined, not parsed as a URL: a path's `%2e%2e` or `#` is a file name's text, never a way out of the folder.
    const root = fileURLToPath(folder);
    const file = join(root, ...path.split('/'));
    // A new version read from the folder the last one was read from (a local run) runs its CommonJS files again.
    const before = (): void => {
      if (!replacing || this.forgotten.has(source)) return;
      this.forgotten.add(source);
      forgetCommonJs(root);
    };
    return commonJsFactory(file, this.recordIn(source.manifest, path).exports, path === this.mainPath, before);
  }

  /** InitializeEnvironment's checks: every re-export and import resolves. */
  private checkLinks(instance: Instance, linker: Linker): void {
    const { record, url } = instance;
    const base = instance.source.base;
    if (record.indirect) {
      for (const name of Object.keys(record.indirect)) {
        const resolution = linker.resolveExport(instance.path, name);
        if (resolution === null || resolution === 'ambiguous') {
          const entry = record.imports[record.indirect[name]![0]]!;
          const imported = record.indirect[name]![1];
          throw resolution === null ? markLinkError(new SyntaxError(`Detected cycle or missing export while resolving name '${imported}' in '${entry.specifier}' (re-exported as '${name}' by ${url})`)) : ambiguousExport(entry.specifier, imported, url);
        }
      }
    }
    for (const entry of record.imports) {
      if (entry.dynamic) continue;
      if (entry.phase === 'source') throw sourcePhaseError(entry.kind === 'module' ? moduleUrl(entry.module!, base) : this.externalUrl(entry.specifier));
      for (const name of entry.names) {
        if (name === '*') continue;
        if (entry.kind === 'module') {
          // A module left unbuilt is checked when it is instantiated (checkImporters).
          if (!linker.has(entry.module!)) continue;
          const resolution = linker.resolveExport(entry.module!, name);
          if (resolution === null) throw missingExport(entry.specifier, name, this.importerInMessage(instance.path, entry.specifier, instance.source));
          if (resolution === 'ambiguous') throw ambiguousExport(entry.specifier, name, this.importerInMessage(instance.path, entry.specifier, instance.source));
        } else {
          // A lazy external not loaded yet is checked at its first read.
          const loaded = this.externals.get(externalKey(entry.specifier, entry.attributes));
          if (loaded && !Object.hasOwn(loaded, name)) throw missingExport(entry.specifier, name, this.importerInMessage(instance.path, entry.specifier, instance.source));
        }
      }
    }
  }

  /** Shows every name of a module's namespace on its face, bound to the versions `versionOf` gives. */
  private linkFace(instance: Instance, linker: Linker, versionOf: (path: string) => Instance = (path) => this.instances.get(path)!): void {
    const { record, path } = instance;
    const names = linker.names(path);
    const shown = new Set(names);
    for (const name of namesOf(instance.namespace)) {
      if (!shown.has(name)) this.unbindFace(instance.namespace, name);
    }
    // Lazy mode: until the module runs, each binding is a trigger that runs it on first read.
    const lazy = this.lazyTargets.has(path) && instance.evaluation.status === 'linked';
    for (const name of names) {
      const local = record.exports.includes(name) && !(record.indirect && Object.hasOwn(record.indirect, name));
      const binding = local ? { module: path, name } : (linker.resolveExport(path, name) as Binding);
      const owner = binding.module === path ? instance : binding.module.startsWith('external:') ? null : versionOf(binding.module);
      if (lazy) {
        const face = instance.namespace;
        // A version this face showed before (a swap) no longer mirrors its writes here.
        const owners = this.ownersOf(face);
        const previous = owners.get(name);
        if (previous) this.dropTarget(previous, face, name);
        owners.delete(name);
        this.installTrigger(face, path, name);
        continue;
      }
      this.bind(instance.namespace, name, binding, owner);
    }
    setNames(instance.namespace, names);
    if (!lazy) settle(instance.namespace);
  }

  /**
   * A lazy binding on a face: its first read instantiates the module if need be, evaluates it and
   * shows its bindings as data properties. One trigger per name for the face's whole wait: a face
   * redefined accessor after accessor leaves V8's fast properties for a dictionary (reads about
   * 9× slower for good), so a trigger already there is kept.
   */
  private installTrigger(face: Namespace, path: string, name: string): void {
    const existing = Object.getOwnPropertyDescriptor(face, name)?.get;
    if (existing && this.triggers.has(existing)) return;
    const trigger = (): unknown => {
      let made: readonly Instance[] = [];
      try {
        if (!this.instances.has(path)) {
          this.loadDeferred(path);
          made = this.instantiateLazy(path);
        }
        this.touch(path);
      } catch (error) {
        throw this.lazyReadFailed(path, error, made);
      }
      // Still the trigger: the module is evaluating (a cycle), so the binding is read as it is.
      return Object.getOwnPropertyDescriptor(face, name)?.get === trigger ? this.currentBinding(path, name) : face[name];
    };
    this.triggers.add(trigger);
    bindTrigger(face, name, trigger);
  }

  /**
   * The face a lazily imported package (lazy mode `all`) shows its importer. Its triggers, one per
   * imported name, sit on its prototype; the first read loads the package synchronously, exactly
   * as `import` would (hooks.ts `requireExternal`: same resolution, same module instance), checks
   * the names, and makes the package's namespace the face's prototype. Reads then go to Node's own
   * namespace, live as an import's are, at the cost of an eager import's read (1.4× a plain
   * property read, as reading any module namespace): getters on the face itself cost 8× once
   * inlined, and 30× in the dictionary mode that redefining an accessor sends an object to. The
   * shape the triggers had is retired at the load (namespace.ts `prototypeFace`), so a hot site
   * whose first run was the trigger reads as fast. A failure throws ERR_LIVEMOD_LAZY_LOAD at the read (the next read tries
   * again), as for a live module.
   */
  private lazyExternalFace(specifier: string, names: readonly string[], importer: string): object {
    const triggers = Object.create(null) as object;
    const { face, become } = prototypeFace(triggers, `lazy ${specifier}`);
    const importerUrl = this.urlOf(importer);
    const failed = (error: unknown): LivemodError => {
      const code = (error as { code?: string }).code;
      const cause = code === 'ERR_MODULE_NOT_FOUND' ? Object.assign(moduleNotFound(specifier, importerUrl, this.missingExternal(specifier)), { cause: error }) : error;
      const site = programSite();
      const importSite = this.importSite(importer, specifier);
      return new LivemodError('runtime', ErrorCodes.LAZY_LOAD, `lazy import of package ${specifier} (imported by ${importer}${importSite ? ` at ${importSite}` : ''}) failed at its first read${site ? ` at ${site}` : ''}: ${requireFailure(error, 'keep it eager with an eager rule', cause)}`, { module: specifier, importer, ...(importSite ? { importSite } : {}), ...(site ? { accessSite: site } : {}) }, { cause });
    };
    const load = (): Record<string, unknown> => {
      const key = externalKey(specifier, undefined);
      let namespace = this.externals.get(key) as Record<string, unknown> | undefined;
      if (!namespace) {
        const done = this.options.report ? this.loads.touching(`external:${specifier}`, programSite()) : null;
        try {
          namespace = requireExternal(specifier, this.externalsFrom(specifier));
        } catch (error) {
          done?.(error);
          throw failed(error);
        }
        done?.();
        this.loads.ran(`external:${specifier}`);
        this.externals.set(key, namespace as Namespace);
        this.externalsByUrl.set(this.externalUrl(specifier), namespace as Namespace);
      }
      // This importer's names, also when another importer's read loaded the package.
      for (const name of names) if (!Object.hasOwn(namespace, name)) throw failed(missingExport(specifier, name, importerUrl));
      return namespace;
    };
    for (const name of names) {
      Object.defineProperty(triggers, name, {
        configurable: true,
        enumerable: true,
        get: () => {
          const namespace = load();
          become(namespace);
          return namespace[name];
        },
      });
    }
    return face;
  }

  /**
   * A lazy module's first read failed. Its graph is not kept half-run: every version in it whose
   * evaluation threw is dropped (a graph that failed to link was never kept), while its face keeps
   * its triggers, so the next read instantiates and runs it afresh — an error that was passing (a
   * file not there yet, a service down at start) does not stay for the life of the program, as it
   * would for a standard import. The error says what was imported, by whom, and where it was
   * read; the module's own error is its cause.
   */
  private lazyReadFailed(path: string, error: unknown, made: readonly Instance[]): LivemodError {
    // What goes: every version this read's pass made that did not run to completion (an errored
    // one, and one left linked beside it, which still points at the errored ones), and every
    // errored version the read's module reaches (made by an earlier pass).
    const failed = new Set<Instance>(made.filter((instance) => instance.evaluation.status !== 'evaluated' || instance.evaluation.error));
    const seen = new Set<Instance>();
    const visit = (instance: Instance | undefined): void => {
      if (!instance || seen.has(instance)) return;
      seen.add(instance);
      if (instance.evaluation.status !== 'evaluated' || !instance.evaluation.error) return;
      failed.add(instance);
      for (const dep of instance.deps) visit(dep);
    };
    visit(this.instances.get(path));
    for (const instance of failed) {
      // Only the current version of its path leaves the index: a newer one (a swap) stays.
      if (this.instances.get(instance.path) !== instance) continue;
      this.unindex(instance);
      this.instances.delete(instance.path);
      if (instance.path !== path && this.lazyTargets.has(instance.path)) this.pendingLazy.add(instance.path);
    }
    this.discard([...failed]);
    this.armPending();
    const importer = this.importers.get(path)?.values().next().value;
    const specifier = importer === undefined ? undefined : this.instances.get(importer)?.record.imports.find((entry) => entry.module === path)?.specifier;
    const importSite = importer === undefined || specifier === undefined ? null : this.importSite(importer, specifier);
    const site = programSite();
    // A lazy import inside the lazy module failed first: say the chain, and keep the first error as the cause.
    const inner = error instanceof LivemodError && error.code === ErrorCodes.LAZY_LOAD ? error : null;
    const root = inner ? inner.cause : error;
    const through = inner ? ` (its import of ${String(inner.details.module)}${inner.details.accessSite ? `, read at ${String(inner.details.accessSite)}` : ''})` : '';
    const what = root instanceof Error ? `${root.name}: ${root.message.split('\n')[0]}` : String(root);
    // The origin moved on and keeps this version's blobs no more: a read cannot bring them back.
    const code = (root as { code?: unknown } | null)?.code;
    const next =
      code === ErrorCodes.BLOB_UNKNOWN
        ? `the origin no longer serves version ${this.current.manifest.version}, so its graphs not fetched yet cannot be had: restart the program to run the current version (a run that follows the origin swaps to it)`
        : // A package the graph imports gained top-level await since the build record was made: a start loads it first.
          code === 'ERR_REQUIRE_ASYNC_MODULE'
          ? 'a package it imports has top-level await, which a first read cannot wait for: restart the program (its next start loads that package first)'
          : 'the next read tries it again';
    return new LivemodError(
      'runtime',
      ErrorCodes.LAZY_LOAD,
      `lazy import of ${path}${importer ? ` (imported by ${importer}${importSite ? ` at ${importSite}` : ''})` : ''} failed at its first read${site ? ` at ${site}` : ''}${through}: ${inert(what, 300)}; ${next}`,
      { module: path, ...(importer ? { importer } : {}), ...(importSite ? { importSite } : {}), ...(site ? { accessSite: site } : {}) },
      { cause: root },
    );
  }

  /** The value a module's export `name` has now, through the current versions. */
  private currentBinding(path: string, name: string): unknown {
    const instance = this.instances.get(path)!;
    const record = instance.record;
    const local = record.exports.includes(name) && !(record.indirect && Object.hasOwn(record.indirect, name));
    const binding = local ? { module: path, name } : (this.linker.resolveExport(path, name) as Binding);
    const owner = binding.module === path ? instance : binding.module.startsWith('external:') ? null : (this.instances.get(binding.module) ?? null);
    return this.bindingValue(binding, owner);
  }

  /** A binding's value now, read from its exporting version (TDZ errors included). */
  private bindingValue(binding: Binding, owner: Instance | null): unknown {
    if (binding.module.startsWith('external:')) {
      const namespace = this.externalsByUrl.get(binding.module.slice('external:'.length))!;
      return binding.name === null ? namespace : namespace[binding.name];
    }
    if (binding.name === null) return binding.deferred ? this.deferredNamespaceOf(binding.module) : exactNamespace(this.namespaceOf(binding.module));
    return owner!.getters[binding.name]!();
  }

  /** A name the face no longer shows: gone from it, and from the targets of the version it showed. */
  private unbindFace(face: Namespace, key: string): void {
    const owners = this.ownersOf(face);
    const previous = owners.get(key);
    if (previous) this.dropTarget(previous, face, key);
    owners.delete(key);
    unbind(face, key);
  }

  private dropTarget(owner: Instance, face: Namespace, key: string): void {
    for (const [name, targets] of owner.targets) {
      const kept = targets.filter(([target, shown]) => target !== face || shown !== key);
      if (kept.length !== targets.length) owner.targets.set(name, kept);
    }
  }

  private ownersOf(face: Namespace): Map<string, Instance | null> {
    let owners = this.owners.get(face);
    if (!owners) {
      owners = new Map();
      this.owners.set(face, owners);
    }
    return owners;
  }

  /**
   * Shows a resolved binding as `key` on a namespace face: the exporting version's value, kept
   * current by its writes (publish), or a getter while it is in its TDZ or when it is an
   * external's (Node's namespace: nothing mirrors its writes). The face leaves the version it
   * showed before, whose writes stop reaching it.
   */
  private bind(face: Namespace, key: string, binding: Binding, owner: Instance | null): void {
    const owners = this.ownersOf(face);
    const previous = owners.get(key);
    if (previous && previous !== owner) this.dropTarget(previous, face, key);
    owners.set(key, owner);
    if (binding.module.startsWith('external:')) {
      const namespace = this.externalsByUrl.get(binding.module.slice('external:'.length))!;
      const name = binding.name;
      bindGetter(face, key, name === null ? () => namespace : () => namespace[name], [namespace, name]);
      return;
    }
    if (binding.name === null) {
      if (binding.deferred) {
        const deferred = this.deferredNamespaceOf(binding.module);
        bindGetter(face, key, () => deferred, [deferred, null]);
        return;
      }
      const target = this.namespaceOf(binding.module);
      bindGetter(face, key, () => exactNamespace(target), [target, null]);
      return;
    }
    const exporter = owner!;
    let targets = exporter.targets.get(binding.name);
    if (!targets) {
      targets = [];
      exporter.targets.set(binding.name, targets);
    }
    if (!targets.some(([target, name]) => target === face && name === key)) targets.push([face, key]);
    const getter = exporter.getters[binding.name]!;
    let value: unknown;
    // Before its module runs, every export but a hoisted function is in its TDZ, so linking a
    // graph throws a ReferenceError per such binding; the error is dropped, so it is thrown
    // without the stack trace V8 would otherwise capture for each (a getter reads a binding and
    // runs no code of the program's).
    const limit = Error.stackTraceLimit;
    // (Unless the program made the limit fixed, a frozen Error: then the stacks are taken.)
    const lowered = Reflect.set(Error, 'stackTraceLimit', 0);
    try {
      value = getter();
    } catch {
      // In its TDZ: the getter throws the ReferenceError until the declaration publishes a value.
      // (On a face that showed a value, a swap's link, this sends the face to V8's dictionary
      // mode: docs/protocol.md, "Namespaces", says why it is kept.)
      bindGetter(face, key, getter);
      return;
    } finally {
      if (lowered) Reflect.set(Error, 'stackTraceLimit', limit);
    }
    bindValue(face, key, value);
  }

  /** A write of an exported binding in its module: every face that shows it takes the value. */
  private publish(owner: Instance, name: string, value: unknown): void {
    const targets = owner.targets.get(name);
    if (targets) for (const [face, key] of targets) bindValue(face, key, value);
  }

  /**
   * Applies the next snapshot version as one transaction: every changed module loaded here, and
   * every importer that must re-run up to an accepting boundary, gets a new version; they are
   * instantiated, linked and evaluated, then the accept callbacks run; only then is it
   * committed (the replaced versions' dispose handlers run, each once). Any failure rolls back:
   * the old versions keep running and the new ones are dropped. Swaps run one at a time.
   */
  swap(next: ModuleSource, options: SwapOptions = {}): Promise<SwapResult> {
    const run = this.swapping.then(() => this.transaction(next, options));
    this.swapping = run.catch(() => undefined);
    return run;
  }

  /**
   * The loaded CommonJS modules a version must run again: all of them, when any CommonJS or
   * JSON file, or any file of the version that is no module (a template), changed, was added
   * or went. Their own requires are Node's, which the manifest does not record, so a change
   * below one of them cannot be traced to it.
   */
  private commonJsToRerun(before: Manifest, after: Manifest): string[] {
    const loaded = [...this.instances.values()].filter((instance) => instance.record.commonjs === true).map((instance) => instance.path);
    if (loaded.length === 0) return [];
    // A changed CommonJS or JSON file (a live module's change goes up through its importers as any).
    const required = (path: string, record: ModuleRecord): boolean => record.commonjs === true || path.endsWith('.json');
    for (const [from, to] of [[before, after], [after, before]] as const) {
      for (const path of Object.keys(from.modules)) {
        const record = from.modules[path]!;
        if (required(path, record) && (!Object.hasOwn(to.modules, path) || to.modules[path]!.blob.hash !== record.blob.hash)) return loaded;
      }
      // A file beside them (a template it reads through __dirname): they run from their version's own folder, which the view's re-pointing does not change.
      const files = from.files ?? {};
      for (const path of Object.keys(files)) {
        if (to.files?.[path]?.hash !== files[path]!.hash && !Object.hasOwn(from.modules, path) && !Object.hasOwn(to.modules, path)) return loaded;
      }
    }
    return [];
  }

  /** Forgets the CommonJS modules Node loaded from `gone`'s folder, unless `kept` runs from that same folder (a local run). */
  private forgetFolder(gone: ModuleSource, kept: ModuleSource): void {
    const folder = gone.files ?? gone.base;
    if (folder !== (kept.files ?? kept.base) && folder.startsWith('file:')) forgetCommonJs(fileURLToPath(folder));
  }

  private async transaction(next: ModuleSource, options: SwapOptions): Promise<SwapResult> {
    const started = monotonicMs();
    const previous = this.current;
    let commonJs = this.commonJsToRerun(previous.manifest, next.manifest);
    // A CommonJS file that required a live module is one of its importers.
    const importers = (path: string): Iterable<string> => {
      const required = this.requiredBy.get(path);
      return required === undefined ? (this.importers.get(path) ?? []) : [...(this.importers.get(path) ?? []), ...[...required].filter((by) => this.instances.has(by))];
    };
    const graph = { paths: () => this.instances.keys(), get: (path: string) => this.instances.get(path), importers };
    let plan = planSwap(graph, next.manifest, [...(options.forced ?? []), ...commonJs]);
    // A change that reaches a CommonJS file (through one it required) re-runs every loaded one, as a change to one does.
    if (commonJs.length === 0 && [...plan.rerun].some((path) => this.instances.get(path)?.record.commonjs === true)) {
      commonJs = [...this.instances.values()].filter((instance) => instance.record.commonjs === true).map((instance) => instance.path);
      plan = planSwap(graph, next.manifest, [...(options.forced ?? []), ...commonJs]);
    }
    const modules: SwappedModule[] = [
      ...plan.changed.map((path) => ({ path, from: this.instances.get(path)!.record.blob.hash, to: next.manifest.modules[path]!.blob.hash })),
      ...plan.removed.map((path) => ({ path, from: this.instances.get(path)!.record.blob.hash, to: null })),
    ];
    const report = (status: SwapResult['status'], extra: Partial<SwapResult> = {}): SwapResult => ({
      status,
      version: next.manifest.version,
      previousVersion: previous.manifest.version,
      modules,
      reran: [...plan.rerun].sort(),
      unaccepted: plan.unaccepted,
      durationMs: monotonicMs() - started,
      ...extra,
    });
    // The npm packages cannot change under a running process: Node keeps, for the process's life,
    // the real path of every package folder it resolved (through the view that a swap re-points)
    // and the module it loaded from there, so a new or upgraded package would not be found, or
    // the old one run. Such a version takes a restart, which --restart-on-unaccepted does.
    const packages = changedPackages(previous.manifest, next.manifest);
    if (packages.length > 0) {
      if (options.restartOnUnaccepted) return report('unaccepted');
      return report('failed', {
        error: new LivemodError('runtime', ErrorCodes.SWAP_PACKAGES, `version ${next.manifest.version} changes the program's npm packages (${listed(packages, 5, (item) => inert(item, 120))}), which a running process cannot take in place; restart it to run this version (livemod run --restart-on-unaccepted does so by itself; a service: livemod service restart)`, { packages }),
      });
    }
    if (plan.rerun.size === 0 && plan.removed.length === 0) {
      next.activate?.();
      this.current = next;
      this.linker = this.linkerFor(next.manifest);
      return report('unchanged');
    }
    if ((plan.unaccepted.length > 0 || plan.declined) && options.restartOnUnaccepted) return report('unaccepted');
    this.emit('livemod:beforeUpdate', { version: next.manifest.version, modules: modules.map((module) => module.path) });

    const isNew = (path: string): boolean => plan.rerun.has(path) || !this.instances.has(path);
    const fresh: Instance[] = [];
    const nextLinker = this.linkerFor(next.manifest);
    // Faces whose bindings come from a replaced version: they are re-linked to the new one.
    const relink = new Set<Instance>();
    // The new version's files are what its modules see while they evaluate; undone on rollback.
    const undo = next.activate?.();
    try {
      await this.load(next, [...plan.rerun], isNew);
      const made = new Map<string, Instance>();
      this.inSwap = { next, made };
      withoutCompileCache(() => {
        for (const path of plan.rerun) this.instantiateTree(next, path, fresh, made, isNew);
      });
      const versionOf = (path: string): Instance => made.get(path) ?? this.instances.get(path)!;
      for (const instance of fresh) this.checkLinks(instance, nextLinker);
      // Hubs that stay but re-export from a new version, directly or through other hubs.
      const hubs = [...made.keys()];
      for (let at = 0; at < hubs.length; at += 1) {
        for (const hub of this.reexporters.get(hubs[at]!) ?? []) {
          const instance = this.instances.get(hub);
          if (!instance || made.has(hub) || relink.has(instance)) continue;
          relink.add(instance);
          hubs.push(hub);
        }
      }
      // Importers that stay must still find every name they import from the new versions: those
      // that import a new version, or a module whose namespace shows one (a re-exporting hub).
      const checked = new Set<string>();
      for (const path of [...made.keys(), ...[...relink].map((instance) => instance.path)]) {
        for (const importer of this.importers.get(path) ?? []) {
          if (made.has(importer) || plan.removed.includes(importer) || checked.has(importer)) continue;
          checked.add(importer);
          this.checkLinks(this.instances.get(importer)!, nextLinker);
        }
      }
      for (const instance of fresh) this.linkFace(instance, nextLinker, versionOf);
      for (const instance of relink) this.linkFace(instance, nextLinker, versionOf);
      // Evaluate the new versions from the ones no other new version imports: the depth-first
      // walk from each then reaches the rest in import order, as any import does.
      const imported = new Set<Instance>(fresh.flatMap((instance) => instance.deps));
      const pending = fresh.filter((instance) => !imported.has(instance)).map((instance) => evaluate(instance));
      for (const promise of pending) promise.catch(() => undefined);
      await Promise.all(pending);
      // A new version that a module staying in place imports (not deferred, and that module has
      // run) runs now if no start above reached it: a cycle of new versions that only its own
      // members import, entered from an importer that accepts one of them, has no start above.
      // It runs from where that import enters it, in the order the import runs it at start.
      for (const instance of fresh) {
        if (instance.evaluation.status === 'linked' && this.importedByStaying(instance.path, made)) await evaluate(instance);
      }
      await runAll(this.acceptCallbacks(plan, made));
      this.inSwap = null;
    } catch (error) {
      this.inSwap = null;
      // V8 formats a stack when it is first read: read it now, while the failed versions'
      // source maps are still known, so it names the original files and lines.
      if (error instanceof Error) void error.stack;
      // Roll back: faces show the versions they showed before; the new versions are dropped.
      for (const instance of [...fresh.filter((made) => this.instances.has(made.path)).map((made) => this.instances.get(made.path)!), ...relink]) {
        this.linkFace(instance, this.linker);
      }
      // The new versions' own dispose handlers do not run: they would act on state the old
      // versions still use (a server kept in hot.data).
      this.discard(fresh);
      undo?.();
      if (commonJs.length > 0) this.forgetFolder(next, previous);
      this.emit('livemod:error', { version: next.manifest.version, error });
      return report('failed', { error });
    }
    // Commit.
    const replaced: Instance[] = [];
    for (const instance of fresh) {
      const old = this.instances.get(instance.path);
      if (old) replaced.push(old);
      this.makeCurrent(instance);
    }
    const pruned: Instance[] = [];
    for (const path of plan.removed) {
      const old = this.instances.get(path)!;
      this.unindex(old);
      this.instances.delete(path);
      this.importers.delete(path);
      this.reexporters.delete(path);
      pruned.push(old);
    }
    this.current = next;
    this.linker = nextLinker;
    // Every CommonJS module runs from the new version's folder now: what Node keeps of the last one's goes.
    if (commonJs.length > 0) this.forgetFolder(previous, next);
    // The new version's names, on the faces of modules still waiting for their first read.
    this.armed.clear();
    this.armPending();
    // A module first imported while the swap awaited may show a replaced version's bindings:
    // its face is linked again to the new versions.
    const late = new Set<Instance>();
    for (const old of replaced) {
      for (const targets of old.targets.values()) {
        for (const [face] of targets) {
          const shown = this.instanceOfFace(face);
          if (shown && shown.state === 'current') late.add(shown);
        }
      }
    }
    for (const instance of late) this.linkFace(instance, nextLinker);
    // Versions that stay must not keep the replaced ones alive: their dependency lists and the
    // cycle roots of modules that shared a cycle with a replaced version.
    for (const old of replaced) {
      for (const path of this.importers.get(old.path) ?? []) {
        const importer = this.instances.get(path)!;
        importer.deps.forEach((dep, index) => {
          if (dep === old) importer.deps[index] = this.instances.get(old.path)!;
        });
      }
      for (const member of old.evaluation.members ?? []) {
        if ((member as Instance).state === 'current') member.evaluation.cycleRoot = member;
      }
      if (old.evaluation.cycleRoot && old.evaluation.cycleRoot !== old) {
        const root = old.evaluation.cycleRoot as Instance;
        if (root.evaluation.members) root.evaluation.members = root.evaluation.members.filter((member) => member !== old);
      }
    }
    for (const old of [...replaced, ...pruned]) {
      old.state = 'replaced';
      old.targets.clear();
      old.listeners.clear();
      const token = {};
      this.retained.set(token, { path: old.path, url: old.url });
      freed.register(old, { url: old.url, retained: this.retained, token });
    }
    await this.runHandlers([
      ...replaced.flatMap((old) => old.hot.dispose.map((handler) => () => handler(this.hotData.get(old.path)!))),
      ...pruned.flatMap((old) => [...old.hot.dispose, ...old.hot.prune].map((handler) => () => handler(this.hotData.get(old.path)!))),
    ]);
    for (const old of pruned) this.hotData.delete(old.path);
    this.emit('livemod:afterUpdate', { version: next.manifest.version, modules: modules.map((module) => module.path) });
    return report('applied');
  }

  /** The current version whose face this is. */
  private instanceOfFace(face: Namespace): Instance | undefined {
    const path = this.facePaths.get(face);
    return path === undefined ? undefined : this.instances.get(path);
  }

  private acceptCallbacks(plan: SwapPlan, made: ReadonlyMap<string, Instance>): (() => unknown)[] {
    const callbacks: (() => unknown)[] = [];
    for (const path of plan.selfAccepted) {
      const old = this.instances.get(path);
      const now = made.get(path);
      if (!old || !now) continue;
      for (const callback of old.hot.selfAccept ?? []) callbacks.push(() => callback(exactNamespace(now.namespace) as Record<string, unknown>));
    }
    for (const [importer, indices] of plan.depAccepted) {
      const hot = this.instances.get(importer)!.hot;
      for (const index of indices) {
        const entry = hot.depAccepts[index]!;
        const modules = entry.deps.map((dep) => (made.has(dep) ? (exactNamespace(made.get(dep)!.namespace) as Record<string, unknown>) : undefined));
        callbacks.push(() => entry.callback(modules));
      }
    }
    return callbacks;
  }

  /** Dispose and prune handlers: each runs once; a failure is reported, not thrown (the swap is done). */
  private async runHandlers(handlers: (() => unknown)[]): Promise<void> {
    for (const handler of handlers) {
      try {
        await handler();
      } catch (error) {
        this.emit('livemod:error', { error });
      }
    }
  }

  private emit(event: string, payload: unknown): void {
    for (const callback of this.listeners.get(event)?.keys() ?? []) {
      try {
        callback(payload);
      } catch {
        // A listener's failure is its own; the update goes on.
      }
    }
  }

  /**
   * Replaced module versions not freed yet. Right after a swap that is every one replaced; once
   * the garbage collector has run (and its finalizers, in a later task), only those something
   * still holds — a timer, a listener or a closure the program kept.
   */
  retainedVersions(): RetainedVersion[] {
    return [...this.retained.values()];
  }

  /** Module paths loaded now, with the blob hash of the running version. */
  loadedModules(): Map<string, string> {
    return new Map([...this.instances].map(([path, instance]) => [path, instance.record.blob.hash]));
  }

  private resolveFrom(specifier: string, importer: string): Resolution {
    const absolute = this.resolveAbsolute(specifier);
    if (absolute) return absolute;
    const known = this.recordIn(this.current.manifest, importer).imports.find((entry) => entry.specifier === specifier);
    if (known) {
      if (known.kind === 'module' && (Object.hasOwn(this.current.manifest.modules, known.module!) || this.grow(specifier, importer))) return { kind: 'module', module: known.module! };
      if (known.kind === 'external') return { kind: 'external' };
      if (known.kind === 'unresolved') return { kind: 'unresolved', reason: known.reason ?? 'unresolved at build time' };
    }
    const modules = this.current.manifest.modules;
    const resolution = resolveSpecifier(specifier, importer, { has: (path) => Object.hasOwn(modules, path), packageInfo: null });
    if (resolution.kind !== 'unresolved' || !this.grow(specifier, importer)) return resolution;
    return resolveSpecifier(specifier, importer, { has: (path) => Object.hasOwn(this.current.manifest.modules, path), packageInfo: null });
  }

  /**
   * An absolute URL, as `import(new URL('./x.js', import.meta.url))` and `import(import.meta.resolve(…))`
   * ask, resolved as Node would: one that names a module of this version is that live module (the
   * same instance a relative import gets); any other `file:` URL — a package in the folder's
   * node_modules, a file the snapshot does not hold as a module, a file elsewhere — is Node's to
   * load, as any external. Other URLs (http:, data:) are left to the usual answer. Null: not an
   * absolute URL.
   */
  private resolveAbsolute(specifier: string): Resolution | null {
    if (!/^[a-z][a-z0-9+.-]*:/i.test(specifier) || specifier.startsWith('node:')) return null;
    let url: URL;
    try {
      url = new URL(specifier);
    } catch {
      return null;
    }
    const elsewhere: Resolution | null = url.protocol === 'file:' ? { kind: 'external' } : null;
    const under = pathUnder(url, this.current.base);
    if (under === null) return elsewhere;
    if ('reason' in under) return { kind: 'unresolved', reason: under.reason };
    // A module of this version, or one a local run builds now (grow changes this.current).
    const held = (): boolean => Object.hasOwn(this.current.manifest.modules, under.path);
    return held() || (this.grow(`./${under.path}`, null) && held()) ? { kind: 'module', module: under.path } : elsewhere;
  }

  /**
   * A source holding part of its tree (a local run) builds the module asked for: the registry
   * then runs the same version with more modules. False when there is no such module.
   */
  private grow(specifier: string, importer: string | null): boolean {
    const grown = this.current.extend?.(specifier, importer);
    if (!grown) return false;
    this.current = grown;
    this.linker = this.linkerFor(grown.manifest);
    return true;
  }

  /**
   * `import(specifier, options)` from a live module. The arguments are converted and checked
   * synchronously, as the spec orders it, but every failure is a rejection; loading and
   * evaluation happen after the caller has gone on.
   */
  dynamicImport(specifier: unknown, options: unknown, importer: string, defer = false): Promise<unknown> {
    let request: ReturnType<typeof importArguments>;
    try {
      request = importArguments(specifier, options);
    } catch (error) {
      return rejectWith(error);
    }
    return resolved().then(async () => {
      const target = this.resolveFrom(request.specifier, importer);
      if (target.kind === 'external') return this.loadExternal(request.specifier, request.attributes, importer);
      if (target.kind === 'unresolved') throw moduleNotFound(request.specifier, this.shown(this.urlOf(importer)), target.reason);
      checkAttributes(this.urlOf(target.module), target.module.endsWith('.json'), request.attributes);
      return defer ? this.importDeferred(target.module, importer) : this.import(target.module, { how: 'dynamic', importer });
    });
  }

  /** `import.source(specifier)`: JavaScript modules have no source object, so it rejects once the module is found. */
  private sourceImport(specifier: unknown, options: unknown, importer: string): Promise<unknown> {
    let request: ReturnType<typeof importArguments>;
    try {
      request = importArguments(specifier, options);
    } catch (error) {
      return rejectWith(error);
    }
    return resolved().then(() => {
      const target = this.resolveFrom(request.specifier, importer);
      if (target.kind === 'unresolved') throw moduleNotFound(request.specifier, this.shown(this.urlOf(importer)), target.reason);
      throw sourcePhaseError(target.kind === 'module' ? this.urlOf(target.module) : this.externalUrl(request.specifier));
    });
  }

  /** `import.meta.resolve(specifier)` from a live module. */
  resolve(specifier: string, importer: string): string {
    const target = this.resolveFrom(specifier, importer);
    if (target.kind === 'module') return this.urlOf(target.module);
    if (target.kind === 'external') return resolveExternal(specifier, this.externalsFrom(specifier));
    // As Node's import.meta.resolve: an absolute URL is its own answer, whatever is there.
    if (URL.canParse(specifier)) return new URL(specifier).href;
    // As Node's import.meta.resolve: a relative specifier resolves to its URL whether or not a module is there.
    if (/^\.{1,2}\//.test(specifier)) return new URL(specifier, this.urlOf(importer)).href;
    throw moduleNotFound(specifier, this.shown(this.urlOf(importer)), target.reason);
  }

  private meta(instance: Instance, data: Record<string, unknown>, main: boolean): Record<string, unknown> {
    const { path, url } = instance;
    const meta = Object.create(null) as Record<string, unknown>;
    meta.url = url;
    meta.main = main;
    meta.resolve = (specifier: string): string => this.resolve(specifier, path);
    if (url.startsWith('file:')) {
      const filename = fileURLToPath(url);
      meta.filename = filename;
      meta.dirname = filename.slice(0, filename.lastIndexOf('/')) || '/';
    }
    let hot: HotContext | undefined;
    Object.defineProperty(meta, 'hot', {
      enumerable: true,
      configurable: true,
      get: () => {
        hot ??= createHotContext(instance.hot, data, {
          resolve: (specifier) => {
            const target = this.resolveFrom(specifier, path);
            return target.kind === 'module' ? target.module : null;
          },
          invalidate: () => {
            // Queued behind any swap under way, and against the version current then.
            this.swapping = this.swapping.then(() => this.transaction(this.current, { forced: [path] })).catch(() => undefined);
          },
          on: (event, callback) => {
            if (instance.state === 'failed' || instance.state === 'replaced') return;
            let set = instance.listeners.get(event);
            if (!set) {
              set = new Set();
              instance.listeners.set(event, set);
            }
            set.add(callback);
            let all = this.listeners.get(event);
            if (!all) {
              all = new Map();
              this.listeners.set(event, all);
            }
            all.set(callback, instance);
          },
          off: (event, callback) => {
            instance.listeners.get(event)?.delete(callback);
            this.listeners.get(event)?.delete(callback);
          },
        });
        return hot;
      },
    });
    return meta;
  }
}

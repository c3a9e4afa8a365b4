// The registry: owns every namespace, creates module instances from a ModuleSource, and runs
// them with ES module semantics — load (every module of the graph is there and parses; import
// attributes fit), link (every imported and re-exported name resolves, linking.ts), instantiate
// (exports and hoisted functions exist: the generator's first step), evaluate (evaluation.ts:
// the spec's algorithm, cycles and top-level await included), errors cached per module as ESM
// caches them. Externals are imported natively through the loader hook, as from the program's folder.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { resolveSpecifier, type ImportRecord, type ModuleRecord, type Resolution } from '../snapshot/index.ts';
import { compileModule, type ModuleFactory } from './compile.ts';
import { evalCode } from './eval.ts';
import { evaluate, newEvaluationState, type Evaluable, type EvaluationState } from './evaluation.ts';
import { importExternal, resolveExternal } from './hooks.ts';
import { Linker, type Binding } from './linking.ts';
import { bindGetter, bindValue, createNamespace, exactNamespace, setNames, type Getters, type Namespace } from './namespace.ts';
import { checkAttributes, importArguments, sourcePhaseError, type Attributes } from './requests.ts';
import type { ModuleSource } from './source.ts';
import { registerSourceMap } from './stack.ts';

export interface RegistryOptions {
  /** Externals resolve as if imported from this folder (a file URL ending in "/"). Default: the working directory. */
  readonly externalsFrom: string;
}

type ModuleGenerator = ReturnType<ModuleFactory>;

interface Instance extends Evaluable {
  readonly path: string;
  readonly url: string;
  readonly record: ModuleRecord;
  readonly namespace: Namespace;
  generator: ModuleGenerator;
  readonly deps: Instance[];
  getters: Getters;
  /** Where each export of this module is shown: namespace faces and the name there. */
  readonly targets: Map<string, [Namespace, string][]>;
}

function moduleNotFound(specifier: string, importer: string, detail: string): Error {
  const error = new Error(`Cannot find module '${specifier}' imported from ${importer}${detail ? ` (${detail})` : ''}`);
  return Object.assign(error, { code: 'ERR_MODULE_NOT_FOUND' });
}

function missingExport(specifier: string, name: string, importer: string): SyntaxError {
  return new SyntaxError(`The requested module '${specifier}' does not provide an export named '${name}' (imported by ${importer})`);
}

function ambiguousExport(specifier: string, name: string, importer: string): SyntaxError {
  return new SyntaxError(`The requested module '${specifier}' contains conflicting star exports for name '${name}' (imported by ${importer})`);
}

/** The SyntaxError of a module published marked because it does not parse. */
function unparsable(url: string, record: ModuleRecord): SyntaxError {
  const { message, line, column } = record.error!;
  const error = new SyntaxError(`${message} (${url}:${line}:${column})`);
  error.stack = `SyntaxError: ${error.message}\n    at ${url}:${line}:${column}`;
  return error;
}

/** `__lm.c[i]`: the value of namespace import i, a binding that cannot be assigned. */
function constants(namespaces: readonly unknown[]): object {
  return new Proxy(namespaces, {
    get: (target, key) => exactNamespace(target[Number(key)]),
    set: () => {
      throw new TypeError('Assignment to constant variable.');
    },
  });
}

function externalKey(specifier: string, attributes: Attributes | undefined): string {
  return attributes ? JSON.stringify([specifier, attributes]) : specifier;
}

export class Registry {
  readonly source: ModuleSource;
  readonly options: Readonly<RegistryOptions>;
  private readonly namespaces = new Map<string, Namespace>();
  private readonly instances = new Map<string, Instance>();
  private readonly externals = new Map<string, Namespace>();
  private readonly externalLoads = new Map<string, Promise<Namespace>>();
  private readonly externalUrls = new Map<string, string>();
  private readonly externalsByUrl = new Map<string, Namespace>();
  private readonly linker: Linker;

  constructor(source: ModuleSource, options: Partial<RegistryOptions> = {}) {
    this.source = source;
    this.options = Object.freeze({ externalsFrom: options.externalsFrom ?? `${pathToFileURL(process.cwd()).href}/` });
    this.linker = new Linker({
      record: (path) => this.record(path),
      external: (entry) => {
        const namespace = this.externals.get(externalKey(entry.specifier, entry.attributes));
        return { key: `external:${this.externalUrl(entry.specifier)}`, names: namespace ? Object.keys(namespace) : [] };
      },
    });
  }

  /** The URL a module path has in this registry: its `import.meta.url`. */
  urlOf(path: string): string {
    return new URL(path, this.source.base).href;
  }

  private namespaceOf(path: string): Namespace {
    let namespace = this.namespaces.get(path);
    if (!namespace) {
      namespace = createNamespace(path);
      this.namespaces.set(path, namespace);
    }
    return namespace;
  }

  private has(path: string): boolean {
    return Object.hasOwn(this.source.manifest.modules, path);
  }

  private record(path: string): ModuleRecord {
    const record = this.has(path) ? this.source.manifest.modules[path] : undefined;
    if (!record) throw new LivemodError('runtime', ErrorCodes.MODULE_NOT_FOUND, `no module "${path}" in the snapshot at ${this.source.base}; modules there include ${Object.keys(this.source.manifest.modules).slice(0, 5).join(', ')}`, { path });
    return record;
  }

  /** Imports a module of the snapshot by path and returns its namespace once evaluated. */
  async import(path: string): Promise<Namespace> {
    await this.prepare(path);
    const instance = this.instances.get(path)!;
    await evaluate(instance);
    return exactNamespace(instance.namespace) as Namespace;
  }

  /**
   * Loads what the graph under `path` needs and is not loaded yet: every module is there and
   * parses and attributes fit; externals are imported (the only asynchronous part); then,
   * without awaiting anything, instantiate and link every new module. Nothing interleaves with
   * that synchronous part, so concurrent imports cannot see half a graph.
   */
  private async prepare(path: string): Promise<void> {
    const externals: ImportRecord[] = [];
    const seen = new Set<string>();
    const collect = (current: string): void => {
      if (seen.has(current) || this.instances.has(current)) return;
      seen.add(current);
      const record = this.record(current);
      if (record.error) throw unparsable(this.urlOf(current), record);
      for (const entry of record.imports) {
        if (entry.dynamic) continue;
        if (entry.kind === 'unresolved') throw moduleNotFound(entry.specifier, `${this.urlOf(current)}:${entry.line}`, entry.reason ?? '');
        if (entry.kind === 'external') {
          externals.push(entry);
          continue;
        }
        if (!this.has(entry.module!)) throw moduleNotFound(entry.specifier, this.urlOf(current), 'not in the snapshot');
        if (entry.phase !== 'source') checkAttributes(this.urlOf(entry.module!), entry.module!.endsWith('.json'), entry.attributes);
        collect(entry.module!);
      }
    };
    collect(path);
    for (const entry of externals) {
      if (!this.externals.has(externalKey(entry.specifier, entry.attributes))) await this.loadExternal(entry.specifier, entry.attributes, path);
    }

    const fresh: Instance[] = [];
    try {
      this.instantiateTree(path, fresh);
      for (const instance of fresh) this.link(instance);
    } catch (error) {
      // A graph that fails to link is not kept: the same import fails the same way again.
      for (const instance of fresh) this.instances.delete(instance.path);
      throw error;
    }
  }

  private loadExternal(specifier: string, attributes: Attributes | undefined, importer: string): Promise<Namespace> {
    const key = externalKey(specifier, attributes);
    let load = this.externalLoads.get(key);
    if (!load) {
      load = importExternal(specifier, this.options.externalsFrom, attributes).then(
        (namespace) => {
          this.externals.set(key, namespace);
          this.externalsByUrl.set(this.externalUrl(specifier), namespace);
          return namespace;
        },
        (error: unknown) => {
          this.externalLoads.delete(key);
          const code = (error as { code?: string }).code;
          if (code === 'ERR_MODULE_NOT_FOUND') throw Object.assign(moduleNotFound(specifier, this.urlOf(importer), `externals resolve from ${this.options.externalsFrom}; install it there`), { cause: error });
          throw error;
        },
      );
      this.externalLoads.set(key, load);
    }
    return load;
  }

  /** An external's identity: the URL Node resolves it to (`path` and `node:path` are one module). */
  private externalUrl(specifier: string): string {
    let url = this.externalUrls.get(specifier);
    if (url === undefined) {
      try {
        url = resolveExternal(specifier, this.options.externalsFrom);
      } catch {
        url = specifier;
      }
      this.externalUrls.set(specifier, url);
    }
    return url;
  }

  private instantiateTree(path: string, fresh: Instance[]): Instance {
    const existing = this.instances.get(path);
    if (existing) return existing;
    const record = this.record(path);
    const url = this.urlOf(path);
    const namespaces: Namespace[] = [];
    const livePaths: string[] = [];
    for (const entry of record.imports) {
      if (entry.dynamic) continue;
      if (entry.kind === 'module') {
        namespaces.push(this.namespaceOf(entry.module!));
        livePaths.push(entry.module!);
      } else {
        namespaces.push(this.externals.get(externalKey(entry.specifier, entry.attributes))!);
      }
    }
    registerSourceMap(url, () => (record.map ? this.source.map(record.map.hash) : null));
    const evaluation: EvaluationState = newEvaluationState();
    const instance: Instance = {
      path,
      url,
      record,
      namespace: this.namespaceOf(path),
      generator: undefined as unknown as ModuleGenerator,
      deps: [],
      getters: {},
      targets: new Map(),
      hasTLA: record.tla,
      evaluation,
      execute: () => {
        const step = instance.generator.next();
        return record.tla ? step as Promise<unknown> : undefined;
      },
    };
    this.instances.set(path, instance);
    fresh.push(instance);
    const factory = compileModule(this.source.blob(record.blob.hash).toString('utf8'), namespaces.length, url, record.tla);
    let constantsProxy: object | undefined;
    const context = {
      x: (getters: Getters): void => {
        instance.getters = getters;
      },
      meta: this.meta(path, url),
      import: (specifier: unknown, options?: unknown): Promise<unknown> => this.dynamicImport(specifier, options, path),
      d: (specifier: unknown, options?: unknown): Promise<unknown> => this.dynamicImport(specifier, options, path),
      s: (specifier: unknown, options?: unknown): Promise<unknown> => this.sourceImport(specifier, options, path),
      n: exactNamespace,
      // The exporting side of live bindings: `__lm.w.name = value` after each write of an export.
      w: new Proxy(Object.create(null) as object, {
        set: (_target, name, value): boolean => {
          this.publish(instance, name as string, value);
          return true;
        },
      }),
      p: (value: unknown): unknown => value,
      get c(): object {
        constantsProxy ??= constants(namespaces);
        return constantsProxy;
      },
      ev: evalCode,
    };
    instance.generator = factory(context, ...namespaces);
    // Instantiation: the prologue registers the exports; function declarations are hoisted.
    // (An async module's first step also runs synchronously up to its `yield`.)
    void instance.generator.next();
    for (const live of livePaths) instance.deps.push(this.instantiateTree(live, fresh));
    return instance;
  }

  /** InitializeEnvironment's checks: every re-export and import resolves; then the namespace's bindings. */
  private link(instance: Instance): void {
    const { record, path, url } = instance;
    if (record.indirect) {
      for (const name of Object.keys(record.indirect)) {
        const resolution = this.linker.resolveExport(path, name);
        if (resolution === null || resolution === 'ambiguous') {
          const entry = record.imports[record.indirect[name]![0]]!;
          const imported = record.indirect[name]![1];
          throw resolution === null ? new SyntaxError(`Detected cycle or missing export while resolving name '${imported}' in '${entry.specifier}' (re-exported as '${name}' by ${url})`) : ambiguousExport(entry.specifier, imported, url);
        }
      }
    }
    for (const entry of record.imports) {
      if (entry.dynamic) continue;
      if (entry.phase === 'source') throw sourcePhaseError(entry.kind === 'module' ? this.urlOf(entry.module!) : this.externalUrl(entry.specifier));
      for (const name of entry.names) {
        if (name === '*') continue;
        if (entry.kind === 'module') {
          const resolution = this.linker.resolveExport(entry.module!, name);
          if (resolution === null) throw missingExport(entry.specifier, name, url);
          if (resolution === 'ambiguous') throw ambiguousExport(entry.specifier, name, url);
        } else if (!Object.hasOwn(this.externals.get(externalKey(entry.specifier, entry.attributes))!, name)) {
          throw missingExport(entry.specifier, name, url);
        }
      }
    }
    const names = this.linker.names(path);
    for (const name of names) {
      const local = record.exports.includes(name) && !(record.indirect && Object.hasOwn(record.indirect, name));
      this.bind(instance.namespace, name, local ? { module: path, name } : (this.linker.resolveExport(path, name) as Binding));
    }
    setNames(instance.namespace, names);
  }

  /**
   * Shows a resolved binding as `key` on a namespace face: the exporting module's value, kept
   * current by its writes (publish), or a getter while it is in its TDZ or when it is an
   * external's (Node's namespace: nothing mirrors its writes).
   */
  private bind(face: Namespace, key: string, binding: Binding): void {
    if (binding.module.startsWith('external:')) {
      const namespace = this.externalsByUrl.get(binding.module.slice('external:'.length))!;
      const name = binding.name;
      bindGetter(face, key, name === null ? () => namespace : () => namespace[name]);
      return;
    }
    if (binding.name === null) {
      const target = this.namespaceOf(binding.module);
      bindGetter(face, key, () => exactNamespace(target));
      return;
    }
    const owner = this.instances.get(binding.module)!;
    let targets = owner.targets.get(binding.name);
    if (!targets) {
      targets = [];
      owner.targets.set(binding.name, targets);
    }
    if (!targets.some(([target, name]) => target === face && name === key)) targets.push([face, key]);
    const getter = owner.getters[binding.name]!;
    let value: unknown;
    try {
      value = getter();
    } catch {
      // In its TDZ: the getter throws the ReferenceError until the declaration publishes a value.
      bindGetter(face, key, getter);
      return;
    }
    bindValue(face, key, value);
  }

  /** A write of an exported binding in its module: every face that shows it takes the value. */
  private publish(owner: Instance, name: string, value: unknown): void {
    const targets = owner.targets.get(name);
    if (targets) for (const [face, key] of targets) bindValue(face, key, value);
  }

  private resolveFrom(specifier: string, importer: string): Resolution {
    const known = this.record(importer).imports.find((entry) => entry.specifier === specifier);
    if (known) {
      if (known.kind === 'module') return { kind: 'module', module: known.module! };
      if (known.kind === 'external') return { kind: 'external' };
      return { kind: 'unresolved', reason: known.reason ?? 'unresolved at build time' };
    }
    const modules = this.source.manifest.modules;
    return resolveSpecifier(specifier, importer, { has: (path) => Object.hasOwn(modules, path), packageInfo: null });
  }

  /**
   * `import(specifier, options)` from a live module. The arguments are converted and checked
   * synchronously, as the spec orders it, but every failure is a rejection; loading and
   * evaluation happen after the caller has gone on.
   */
  dynamicImport(specifier: unknown, options: unknown, importer: string): Promise<unknown> {
    let request: ReturnType<typeof importArguments>;
    try {
      request = importArguments(specifier, options);
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve().then(async () => {
      const target = this.resolveFrom(request.specifier, importer);
      if (target.kind === 'external') return this.loadExternal(request.specifier, request.attributes, importer);
      if (target.kind === 'unresolved') throw moduleNotFound(request.specifier, this.urlOf(importer), target.reason);
      checkAttributes(this.urlOf(target.module), target.module.endsWith('.json'), request.attributes);
      return this.import(target.module);
    });
  }

  /** `import.source(specifier)`: JavaScript modules have no source object, so it rejects once the module is found. */
  private sourceImport(specifier: unknown, options: unknown, importer: string): Promise<unknown> {
    let request: ReturnType<typeof importArguments>;
    try {
      request = importArguments(specifier, options);
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve().then(() => {
      const target = this.resolveFrom(request.specifier, importer);
      if (target.kind === 'unresolved') throw moduleNotFound(request.specifier, this.urlOf(importer), target.reason);
      throw sourcePhaseError(target.kind === 'module' ? this.urlOf(target.module) : this.externalUrl(request.specifier));
    });
  }

  /** `import.meta.resolve(specifier)` from a live module. */
  resolve(specifier: string, importer: string): string {
    const target = this.resolveFrom(specifier, importer);
    if (target.kind === 'module') return this.urlOf(target.module);
    if (target.kind === 'external') return resolveExternal(specifier, this.options.externalsFrom);
    // As Node's import.meta.resolve: a relative specifier resolves to its URL whether or not a module is there.
    if (/^\.{1,2}\//.test(specifier)) return new URL(specifier, this.urlOf(importer)).href;
    throw moduleNotFound(specifier, this.urlOf(importer), target.reason);
  }

  private meta(path: string, url: string): Record<string, unknown> {
    const meta = Object.create(null) as Record<string, unknown>;
    meta.url = url;
    meta.resolve = (specifier: string): string => this.resolve(specifier, path);
    if (url.startsWith('file:')) {
      const filename = fileURLToPath(url);
      meta.filename = filename;
      meta.dirname = filename.slice(0, filename.lastIndexOf('/')) || '/';
    }
    return meta;
  }
}

// The registry: owns every namespace, creates module instances from a ModuleSource, and runs
// them with ES module semantics — link (every imported name must exist), instantiate (exports
// and hoisted functions exist: the generator's first step), evaluate depth-first in import
// order (the second step), cycles, top-level await, errors cached per module as ESM caches
// them. Externals are imported natively through the loader hook, as from the program's folder.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { resolveSpecifier, type ImportRecord, type ModuleRecord, type Resolution } from '../snapshot/index.ts';
import { inert, listed, quoted } from '../text.ts';
import { compileModule, type ModuleFactory } from './compile.ts';
import { importExternal, resolveExternal } from './hooks.ts';
import { createNamespace, defineBindings, type Getters, type Namespace } from './namespace.ts';
import type { ModuleSource } from './source.ts';
import { registerSourceMap } from './stack.ts';

export interface RegistryOptions {
  /** Externals resolve as if imported from this folder (a file URL ending in "/"). Default: the working directory. */
  readonly externalsFrom: string;
}

type ModuleGenerator = ReturnType<ModuleFactory>;
type Status = 'linked' | 'evaluating' | 'evaluating-async' | 'evaluated' | 'errored';

interface Instance {
  readonly path: string;
  readonly url: string;
  readonly record: ModuleRecord;
  readonly namespace: Namespace;
  readonly generator: ModuleGenerator;
  /** Live modules this one imports statically, in import order. */
  readonly deps: Instance[];
  getters: Getters;
  status: Status;
  evaluation?: Promise<void>;
  error?: unknown;
}

/** Where an export name comes from: the module path (or external specifier) that defines it. */
type Provenance = Map<string, string>;

// Specifiers, names and reasons come from the manifest: shown inert and bounded (src/text.ts).
function moduleNotFound(specifier: string, importer: string, detail: string): Error {
  const error = new Error(`Cannot find module '${inert(specifier, 200)}' imported from ${importer}${detail ? ` (${inert(detail, 300)})` : ''}`);
  return Object.assign(error, { code: 'ERR_MODULE_NOT_FOUND' });
}

function missingExport(specifier: string, name: string, importer: string): SyntaxError {
  return new SyntaxError(`The requested module '${inert(specifier, 200)}' does not provide an export named '${inert(name, 200)}' (imported by ${importer})`);
}

export class Registry {
  readonly source: ModuleSource;
  readonly options: Readonly<RegistryOptions>;
  private readonly namespaces = new Map<string, Namespace>();
  private readonly instances = new Map<string, Instance>();
  private readonly externals = new Map<string, Namespace>();
  private readonly externalLoads = new Map<string, Promise<Namespace>>();
  private readonly exportCache = new Map<string, Provenance>();
  private cycleHits = 0;

  constructor(source: ModuleSource, options: Partial<RegistryOptions> = {}) {
    this.source = source;
    this.options = Object.freeze({ externalsFrom: options.externalsFrom ?? `${pathToFileURL(process.cwd()).href}/` });
  }

  /** The URL a module path has in this registry: its `import.meta.url`. */
  urlOf(path: string): string {
    return new URL(path, this.source.base).href;
  }

  private namespaceOf(path: string): Namespace {
    let namespace = this.namespaces.get(path);
    if (!namespace) {
      namespace = createNamespace();
      this.namespaces.set(path, namespace);
    }
    return namespace;
  }

  private record(path: string): ModuleRecord {
    const record = Object.hasOwn(this.source.manifest.modules, path) ? this.source.manifest.modules[path] : undefined;
    if (!record) throw new LivemodError('runtime', ErrorCodes.MODULE_NOT_FOUND, `no module ${quoted(path)} in the snapshot at ${this.source.base}; modules there include ${listed(Object.keys(this.source.manifest.modules), 5, (item) => quoted(item, 80))}`, { path });
    return record;
  }

  /** Imports a module of the snapshot by path and returns its namespace once evaluated. */
  async import(path: string): Promise<Namespace> {
    await this.prepare(path);
    const instance = this.instances.get(path)!;
    await this.evaluate(instance);
    return instance.namespace;
  }

  /**
   * Loads what the graph under `path` needs and is not loaded yet: externals first (the only
   * asynchronous part), then, without awaiting anything, instantiate and link every new module.
   * Nothing interleaves with that synchronous part, so concurrent imports cannot see half a graph.
   */
  private async prepare(path: string): Promise<void> {
    const externals: string[] = [];
    const seen = new Set<string>();
    const collect = (current: string, importer: string | null, site: ImportRecord | null): void => {
      if (seen.has(current) || this.instances.has(current)) return;
      seen.add(current);
      if (!Object.hasOwn(this.source.manifest.modules, current)) {
        if (site && importer) throw moduleNotFound(site.specifier, this.urlOf(importer), 'not in the snapshot');
        this.record(current);
      }
      for (const entry of this.record(current).imports) {
        if (entry.dynamic) continue;
        if (entry.kind === 'unresolved') throw moduleNotFound(entry.specifier, `${this.urlOf(current)}:${entry.line}`, entry.reason ?? '');
        if (entry.kind === 'external') externals.push(entry.specifier);
        else collect(entry.module!, current, entry);
      }
    };
    collect(path, null, null);
    for (const specifier of externals) if (!this.externals.has(specifier)) await this.loadExternal(specifier, path);

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

  private loadExternal(specifier: string, importer: string): Promise<Namespace> {
    let load = this.externalLoads.get(specifier);
    if (!load) {
      load = importExternal(specifier, this.options.externalsFrom).then(
        (namespace) => {
          this.externals.set(specifier, namespace);
          return namespace;
        },
        (error: unknown) => {
          this.externalLoads.delete(specifier);
          const code = (error as { code?: string }).code;
          if (code === 'ERR_MODULE_NOT_FOUND') throw Object.assign(moduleNotFound(specifier, this.urlOf(importer), `externals resolve from ${this.options.externalsFrom}; install it there`), { cause: error });
          throw error;
        },
      );
      this.externalLoads.set(specifier, load);
    }
    return load;
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
        namespaces.push(this.externals.get(entry.specifier)!);
      }
    }
    const code = this.source.blob(record.blob.hash).toString('utf8');
    registerSourceMap(url, () => (record.map ? this.source.map(record.map.hash) : null));
    const instance: Instance = {
      path,
      url,
      record,
      namespace: this.namespaceOf(path),
      generator: undefined as unknown as ModuleGenerator,
      deps: [],
      getters: {},
      status: 'linked',
    };
    const context = {
      x: (getters: Getters): void => {
        instance.getters = getters;
      },
      meta: this.meta(path, url),
      import: (specifier: unknown): Promise<Namespace> => this.dynamicImport(String(specifier), path),
    };
    const factory = compileModule(code, namespaces.length, url, record.tla);
    (instance as { generator: ModuleGenerator }).generator = factory(context, ...namespaces);
    this.instances.set(path, instance);
    fresh.push(instance);
    // Instantiation: the prologue registers the exports; function declarations are hoisted.
    // (An async module's first step also runs synchronously up to its `yield`.)
    void instance.generator.next();
    for (const live of livePaths) instance.deps.push(this.instantiateTree(live, fresh));
    return instance;
  }

  /**
   * Export names of a module, each with the binding it resolves to (module path and name, a
   * namespace, or an external's resolved URL and name), following `export *` as ESM does: a
   * name two star sources offer is ambiguous — and left out — only if its bindings differ.
   */
  private exportNames(path: string, visiting: Set<string> = new Set()): Provenance {
    const cached = this.exportCache.get(path);
    if (cached) return cached;
    const names: Provenance = new Map();
    if (visiting.has(path)) {
      this.cycleHits += 1;
      return names;
    }
    const hitsBefore = this.cycleHits;
    visiting.add(path);
    const record = this.record(path);
    for (const name of record.exports) {
      const forward = record.indirect && Object.hasOwn(record.indirect, name) ? record.indirect[name] : undefined;
      names.set(name, forward ? this.bindingOf(record.imports[forward[0]]!, forward[1], visiting) : `${path}#${name}`);
    }
    const ambiguous = new Set<string>();
    for (const index of record.star) {
      const entry = record.imports[index]!;
      const from = entry.kind === 'module' ? this.exportNames(entry.module!, visiting) : this.externalNames(entry.specifier);
      for (const [name, origin] of from) {
        if (name === 'default' || record.exports.includes(name)) continue;
        const known = names.get(name);
        if (known === undefined) names.set(name, origin);
        else if (known !== origin) ambiguous.add(name);
      }
    }
    visiting.delete(path);
    for (const name of ambiguous) names.delete(name);
    // A result that met a cycle may be partial; any other is final for this manifest.
    if (this.cycleHits === hitsBefore) this.exportCache.set(path, names);
    return names;
  }

  /** The binding an import of `name` (or "*") through `entry` resolves to, as a comparable key. */
  private bindingOf(entry: ImportRecord, name: string, visiting: Set<string>): string {
    if (entry.kind === 'external') return `${this.externalKey(entry.specifier)}#${name}`;
    if (entry.kind !== 'module') return `unresolved:${entry.specifier}#${name}`;
    if (name === '*') return `namespace:${entry.module!}`;
    return this.exportNames(entry.module!, visiting).get(name) ?? `${entry.module!}#${name}`;
  }

  /** An external's identity: the URL Node resolves it to (`path` and `node:path` are one module). */
  private externalKey(specifier: string): string {
    try {
      return `external:${resolveExternal(specifier, this.options.externalsFrom)}`;
    } catch {
      return `external:${specifier}`;
    }
  }

  private externalNames(specifier: string): Provenance {
    const namespace = this.externals.get(specifier);
    const key = this.externalKey(specifier);
    return new Map(namespace ? Object.keys(namespace).map((name) => [name, `${key}#${name}`]) : []);
  }

  private link(instance: Instance): void {
    const { record } = instance;
    for (const entry of record.imports) {
      if (entry.dynamic) continue;
      const provided = entry.kind === 'module' ? this.exportNames(entry.module!) : this.externalNames(entry.specifier);
      for (const name of entry.names) {
        if (name !== '*' && !provided.has(name) && !(entry.kind === 'external' && name === 'default' && this.externals.get(entry.specifier)?.default !== undefined)) {
          throw missingExport(entry.specifier, name, instance.url);
        }
      }
    }
    const star = new Map<string, Namespace>();
    const all = this.exportNames(instance.path);
    for (const index of record.star) {
      const entry = record.imports[index]!;
      const sourceNamespace = entry.kind === 'module' ? this.namespaceOf(entry.module!) : this.externals.get(entry.specifier)!;
      const names = entry.kind === 'module' ? this.exportNames(entry.module!) : this.externalNames(entry.specifier);
      for (const name of names.keys()) if (all.has(name) && !record.exports.includes(name) && !star.has(name)) star.set(name, sourceNamespace);
    }
    defineBindings(instance.namespace, instance.getters, star);
  }

  /** ESM evaluation: dependencies first, in import order; a module in progress (a cycle) is skipped. */
  private evaluate(instance: Instance): void | Promise<void> {
    switch (instance.status) {
      case 'evaluated':
        return undefined;
      case 'evaluating':
        return undefined;
      case 'evaluating-async':
        return instance.evaluation;
      case 'errored':
        throw instance.error;
      case 'linked':
        break;
      default: {
        const never: never = instance.status;
        throw new Error(`unknown status ${String(never)}`);
      }
    }
    instance.status = 'evaluating';
    const fail = (error: unknown): never => {
      instance.status = 'errored';
      instance.error = error;
      throw error;
    };
    const waits: Promise<void>[] = [];
    try {
      for (const dep of instance.deps) {
        const pending = this.evaluate(dep);
        if (pending) waits.push(pending);
      }
    } catch (error) {
      // Dependencies already evaluating asynchronously may reject later: that is this same
      // failure's consequence, not an unhandled rejection of its own.
      for (const pending of waits) pending.catch(() => {});
      fail(error);
    }
    const run = (): void | Promise<void> => {
      const step = instance.generator.next();
      if (!instance.record.tla) return undefined;
      return (step as Promise<unknown>).then(() => undefined);
    };
    const finish = (pending: void | Promise<void>): void | Promise<void> => {
      if (!pending) {
        instance.status = 'evaluated';
        return undefined;
      }
      instance.status = 'evaluating-async';
      instance.evaluation = pending.then(
        () => {
          instance.status = 'evaluated';
        },
        (error: unknown) => {
          instance.status = 'errored';
          instance.error = error;
          throw error;
        },
      );
      return instance.evaluation;
    };
    if (waits.length > 0) return finish(Promise.all(waits).then(run));
    try {
      return finish(run());
    } catch (error) {
      return fail(error);
    }
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

  /** `import(specifier)` from a live module. */
  dynamicImport(specifier: string, importer: string): Promise<Namespace> {
    const target = this.resolveFrom(specifier, importer);
    if (target.kind === 'module') return this.import(target.module);
    if (target.kind === 'external') return this.loadExternal(specifier, importer);
    return Promise.reject(moduleNotFound(specifier, this.urlOf(importer), target.reason));
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

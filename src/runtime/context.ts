// A live module's context: the `__lm` its compiled code is called with (transform.ts, scan.ts).
// The code only ever reaches it through member expressions — `__lm.x(getters)`, `__lm.meta`,
// `__lm.import(…)`, `__lm.w.name = value`, `__lm.c[i]`, `__lm.n(ns)`, `__lm.p(…)`, and `__lm.d`,
// `__lm.s`, `__lm.ev` — so the calls are methods on one shared prototype, called with `this`
// the module's context, and what most modules never touch (import.meta, the export-write
// mirror, the constant guard) is made on first use.
//
// One object per module, with no closures: a start instantiates every module it runs, and the
// object literal this replaces made seven closures, a Proxy and the import.meta object (with a
// URL parse for its filename) for each, used or not — 23 ms of a 2,000-module warm start for
// import.meta alone, and their allocation in every young-generation collection of the start.
import { exactNamespace } from './namespace.ts';
import { evalCode } from './eval.ts';

/** What a context asks of its registry: one object per registry, shared by every module's context. */
export interface ContextHost<I> {
  dynamicImport(specifier: unknown, options: unknown, importer: string, defer?: boolean): Promise<unknown>;
  sourceImport(specifier: unknown, options: unknown, importer: string): Promise<unknown>;
  /** The exporting side of a live binding: mirrors a write of export `name` into the namespaces. */
  publish(owner: I, name: string, value: unknown): void;
  /** A new import.meta object for the module; `main` as it was when the module was instantiated. */
  meta(owner: I, data: Record<string, unknown>, main: boolean): Record<string, unknown>;
  /** The module's export getters, as its prologue registers them. */
  exports(owner: I, getters: Readonly<Record<string, () => unknown>>): void;
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

export class ModuleContext<I extends { readonly path: string }> {
  #meta: Record<string, unknown> | undefined;
  #writes: object | undefined;
  #constants: object | undefined;
  private readonly host: ContextHost<I>;
  private readonly owner: I;
  private readonly data: Record<string, unknown>;
  private readonly namespaces: readonly unknown[];
  /** import.meta.main, fixed when the module is instantiated (the object itself is made later). */
  private readonly main: boolean;

  constructor(host: ContextHost<I>, owner: I, data: Record<string, unknown>, namespaces: readonly unknown[], main: boolean) {
    this.host = host;
    this.owner = owner;
    this.data = data;
    this.namespaces = namespaces;
    this.main = main;
  }

  /** The prologue: registers the module's exports. */
  x(getters: Readonly<Record<string, () => unknown>>): void {
    this.host.exports(this.owner, getters);
  }

  /** import.meta: one object per module instance, made when the code first reads it. */
  get meta(): Record<string, unknown> {
    this.#meta ??= this.host.meta(this.owner, this.data, this.main);
    return this.#meta;
  }

  import(specifier: unknown, options?: unknown): Promise<unknown> {
    return this.host.dynamicImport(specifier, options, this.owner.path);
  }

  /** `import.defer(…)`. */
  d(specifier: unknown, options?: unknown): Promise<unknown> {
    return this.host.dynamicImport(specifier, options, this.owner.path, true);
  }

  /** `import.source(…)`. */
  s(specifier: unknown, options?: unknown): Promise<unknown> {
    return this.host.sourceImport(specifier, options, this.owner.path);
  }

  /** A namespace where it escapes as a value: its spec-exact face. */
  n(namespace: unknown): unknown {
    return exactNamespace(namespace);
  }

  /** The exporting side of live bindings: `__lm.w.name = value` after each write of an export. */
  get w(): object {
    this.#writes ??= new Proxy(Object.create(null) as object, {
      set: (_target, name, value): boolean => {
        this.host.publish(this.owner, name as string, value);
        return true;
      },
    });
    return this.#writes;
  }

  /** `__lm.p(write, __lm.w.a = a, …)`: the write's own value, after the namespaces were updated. */
  p(value: unknown): unknown {
    return value;
  }

  /** Writes to a namespace import's binding go here, and throw. */
  get c(): object {
    this.#constants ??= constants(this.namespaces);
    return this.#constants;
  }

  /** A direct eval's code, with its `import(…)` calls rewritten. */
  ev(code: unknown): unknown {
    return evalCode(code);
  }
}

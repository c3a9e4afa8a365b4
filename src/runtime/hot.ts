// `import.meta.hot`: what a module version says about taking new code, with the names and
// meaning of Vite's HMR API (accept, dispose, prune, data, invalidate, on/off) plus decline().
// One HotContext per module version; `data` is one object per module path, handed from version
// to version, so state kept there survives every swap.
//
// The one difference from Vite, by design: a swap is a transaction, so the replaced version's
// dispose handlers run after its successor has evaluated and been accepted (and not at all when
// the swap fails). A module keeps what its successor needs in `data` as it goes, not only in
// dispose.

export type ModuleNamespace = Record<string, unknown>;
export type AcceptCallback = (module: ModuleNamespace | undefined) => void | Promise<void>;
export type AcceptDepsCallback = (modules: (ModuleNamespace | undefined)[]) => void | Promise<void>;
export type HotEventCallback = (payload: unknown) => void;

export interface HotHandlers {
  /** accept() / accept(cb): the module takes its own new versions (cb gets the new namespace). */
  selfAccept: AcceptCallback[] | null;
  /** accept(deps, cb): this module takes new versions of those dependencies (module paths). */
  readonly depAccepts: { readonly deps: readonly string[]; readonly callback: AcceptDepsCallback; readonly single: boolean }[];
  readonly dispose: ((data: Record<string, unknown>) => void | Promise<void>)[];
  readonly prune: ((data: Record<string, unknown>) => void | Promise<void>)[];
  declined: boolean;
  invalidated: string | null;
}

export interface HotHost {
  /** Resolves a specifier of this module to a module path of the snapshot, or null. */
  resolve(specifier: string): string | null;
  /** Asks for the module's importers to take its current version (invalidate()). */
  invalidate(message: string): void;
  on(event: string, callback: HotEventCallback): void;
  off(event: string, callback: HotEventCallback): void;
}

/** The public shape of `import.meta.hot` (see `livemod/hot` for the TypeScript declaration). */
export interface HotContext {
  readonly data: Record<string, unknown>;
  accept(): void;
  accept(callback: AcceptCallback): void;
  accept(dep: string, callback: AcceptCallback): void;
  accept(deps: readonly string[], callback: AcceptDepsCallback): void;
  dispose(callback: (data: Record<string, unknown>) => void | Promise<void>): void;
  prune(callback: (data: Record<string, unknown>) => void | Promise<void>): void;
  decline(): void;
  invalidate(message?: string): void;
  on(event: string, callback: HotEventCallback): void;
  off(event: string, callback: HotEventCallback): void;
}

export function newHotHandlers(): HotHandlers {
  return { selfAccept: null, depAccepts: [], dispose: [], prune: [], declined: false, invalidated: null };
}

function callable(value: unknown, what: string): void {
  if (typeof value !== 'function') throw new TypeError(`import.meta.hot.${what} needs a function`);
}

export function createHotContext(handlers: HotHandlers, data: Record<string, unknown>, host: HotHost): HotContext {
  const resolveDeps = (deps: readonly string[]): string[] =>
    deps.map((dep) => {
      if (typeof dep !== 'string') throw new TypeError('import.meta.hot.accept(deps, cb): each dependency must be a string specifier');
      const path = host.resolve(dep);
      if (path === null) throw new TypeError(`import.meta.hot.accept: "${dep}" is not a module of this snapshot`);
      return path;
    });
  const hot: HotContext = {
    data,
    accept(first?: unknown, second?: unknown): void {
      if (first === undefined || typeof first === 'function') {
        handlers.selfAccept ??= [];
        if (first) handlers.selfAccept.push(first as AcceptCallback);
        return;
      }
      callable(second, 'accept(deps, callback)');
      if (typeof first === 'string') {
        const callback = second as AcceptCallback;
        handlers.depAccepts.push({ deps: resolveDeps([first]), callback: (modules) => callback(modules[0]), single: true });
        return;
      }
      if (!Array.isArray(first)) throw new TypeError('import.meta.hot.accept takes nothing, a callback, a specifier and a callback, or an array of specifiers and a callback');
      handlers.depAccepts.push({ deps: resolveDeps(first as string[]), callback: second as AcceptDepsCallback, single: false });
    },
    dispose(callback) {
      callable(callback, 'dispose(callback)');
      handlers.dispose.push(callback);
    },
    prune(callback) {
      callable(callback, 'prune(callback)');
      handlers.prune.push(callback);
    },
    decline() {
      handlers.declined = true;
    },
    invalidate(message = '') {
      handlers.invalidated = String(message);
      host.invalidate(String(message));
    },
    on(event, callback) {
      callable(callback, 'on(event, callback)');
      host.on(String(event), callback);
    },
    off(event, callback) {
      host.off(String(event), callback);
    },
  };
  return Object.freeze(hot);
}

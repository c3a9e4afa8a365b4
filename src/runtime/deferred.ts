// The deferred namespace object of `import defer * as ns` (TC39's import-defer proposal): a
// module namespace exotic object with [[Deferred]] true. Touching it — reading, testing, listing
// or defining a string key other than "then" — evaluates the module synchronously first
// (EnsureDeferredNamespaceEvaluation); symbol keys and "then" never do, so a deferred namespace
// is not a thenable and `await`ing or tagging it costs nothing. Its @@toStringTag is
// "Deferred Module"; one object per module, distinct from the module's ordinary namespace.
//
// It is a Proxy over a null-prototype, non-extensible target whose own properties mirror the
// export names (so the Proxy invariants hold for a non-extensible object). The target is filled
// at the first trap, which runs only after linking, when the names are known. One knowing
// deviation: a module that exports "then" has "then" among the target's keys, so its
// descriptor is reported (value undefined) where the proposal reports none — a Proxy over a
// non-extensible object cannot list a key it denies having.
import type { Namespace } from './namespace.ts';

const TAG = 'Deferred Module';

export function createDeferredNamespace(fast: Namespace, names: () => readonly string[], ensure: () => void): object {
  const target = Object.create(null) as Record<PropertyKey, unknown>;
  Object.defineProperty(target, Symbol.toStringTag, { value: TAG, writable: false, enumerable: false, configurable: false });
  let filled = false;
  const fill = (): void => {
    if (filled) return;
    filled = true;
    for (const name of names()) Object.defineProperty(target, name, { value: undefined, writable: true, enumerable: true, configurable: false });
    Object.preventExtensions(target);
  };
  const symbolLike = (key: PropertyKey): key is symbol | 'then' => typeof key === 'symbol' || key === 'then';
  const exported = (key: string): boolean => names().includes(key);
  const handler: ProxyHandler<Record<PropertyKey, unknown>> = {
    get(_target, key) {
      fill();
      if (symbolLike(key)) return Reflect.get(target, key);
      ensure();
      return exported(key) ? fast[key] : undefined;
    },
    getOwnPropertyDescriptor(_target, key) {
      fill();
      if (symbolLike(key)) return Reflect.getOwnPropertyDescriptor(target, key);
      ensure();
      return exported(key) ? { value: fast[key], writable: true, enumerable: true, configurable: false } : undefined;
    },
    has(_target, key) {
      fill();
      if (symbolLike(key)) return Reflect.has(target, key);
      ensure();
      return exported(key);
    },
    defineProperty(_target, key, descriptor) {
      fill();
      if (symbolLike(key)) return Reflect.defineProperty(target, key, descriptor);
      ensure();
      if (!exported(key)) return false;
      const value = fast[key];
      if (descriptor.configurable === true || descriptor.enumerable === false || descriptor.writable === false) return false;
      if ('get' in descriptor || 'set' in descriptor) return false;
      return 'value' in descriptor ? Object.is(descriptor.value, value) : true;
    },
    deleteProperty(_target, key) {
      fill();
      if (symbolLike(key)) return Reflect.deleteProperty(target, key);
      ensure();
      return !exported(key);
    },
    ownKeys() {
      fill();
      ensure();
      return Reflect.ownKeys(target);
    },
    // [[Set]] of a namespace is false, and does not evaluate the module.
    set: () => false,
    setPrototypeOf(_target, prototype) {
      fill();
      return Reflect.setPrototypeOf(target, prototype);
    },
    isExtensible() {
      fill();
      return false;
    },
    preventExtensions() {
      fill();
      return true;
    },
  };
  return new Proxy(target, handler);
}

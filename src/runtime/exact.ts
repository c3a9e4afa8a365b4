// The spec-exact face of a namespace: what a program gets where a namespace escapes as a value
// (`import * as ns` used as a value, `import()` results, `app.import()`). It must be a module
// namespace exotic object as far as any program can tell: not extensible, sealed but not
// frozen, data descriptors `{ value, writable: true, enumerable: true, configurable: false }`,
// sorted keys, `[[Set]]`/`delete`/`defineProperty` refused as the spec says, TDZ errors for
// uninitialised bindings, `Symbol.toStringTag` "Module".
//
// It is a Proxy whose target is a real native namespace with the same export names (a shell,
// hooks.ts). Every trap whose answer depends on the key set alone — has, ownKeys, set,
// deleteProperty, extensibility and prototype — falls through to that real namespace, so it is
// exact by construction, and the Proxy invariants hold. The value traps read the live binding
// through the module's fast face, so swap and lazy loading (which re-point the fast face's
// slots) reach this face too, and write the value into the shell as they pass, so that
// `console.log(ns)` (which inspects a Proxy's target without running traps) prints what Node
// prints for a namespace, with each value as of its last read.
//
// A face keeps the export names it was made with; a swap that changes the names makes a new
// face for later requests (docs/protocol.md, "Namespaces").
import { namespaceShell } from './hooks.ts';

interface Face {
  readonly names: readonly string[];
  readonly proxy: object;
}

const faces = new WeakMap<object, Face>();

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, index) => name === b[index]);
}

function makeFace(fast: Record<string, unknown>, names: readonly string[]): Face {
  const shell = namespaceShell(names);
  const index = new Map(names.map((name, at) => [name, at]));
  const shown: unknown[] = [];
  const read = (name: string): unknown => {
    const value = fast[name];
    const at = index.get(name)!;
    if (!Object.is(shown[at], value) || !(at in shown)) {
      shell.set(at, value);
      shown[at] = value;
    }
    return value;
  };
  for (const name of names) {
    try {
      read(name);
    } catch {
      // An uninitialised binding: the shell shows undefined until it is read successfully.
    }
  }
  const handler: ProxyHandler<object> = {
    // [[Set]] of a namespace is always false. Without this trap V8 sets through the target with
    // the Proxy as receiver, which ends in defineProperty and succeeds for an unchanged value.
    set: () => false,
    get(target, key) {
      if (typeof key === 'symbol' || !index.has(key)) return Reflect.get(target, key);
      return read(key);
    },
    getOwnPropertyDescriptor(target, key) {
      if (typeof key === 'symbol' || !index.has(key)) return Reflect.getOwnPropertyDescriptor(target, key);
      return { value: read(key), writable: true, enumerable: true, configurable: false };
    },
    // [[DefineOwnProperty]] of a namespace: only a redefinition that changes nothing succeeds.
    defineProperty(target, key, descriptor) {
      if (typeof key === 'symbol' || !index.has(key)) return Reflect.defineProperty(target, key, descriptor);
      const value = read(key);
      if (descriptor.configurable === true || descriptor.enumerable === false || descriptor.writable === false) return false;
      if ('get' in descriptor || 'set' in descriptor) return false;
      return 'value' in descriptor ? Object.is(descriptor.value, value) : true;
    },
  };
  return { names, proxy: new Proxy(shell.namespace, handler) };
}

/**
 * The exact face of a fast namespace whose export names are `names` (sorted). Made once per
 * name set; the same object is handed out until the names change.
 */
export function exactFace(fast: Record<string, unknown>, names: readonly string[]): object {
  const known = faces.get(fast);
  if (known && sameNames(known.names, names)) return known.proxy;
  const face = makeFace(fast, names);
  faces.set(fast, face);
  return face.proxy;
}

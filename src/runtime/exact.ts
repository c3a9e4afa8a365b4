// The spec-exact face of a namespace: what a program gets where a namespace escapes as a value
// (`import * as ns` used as a value, `import()` results, `app.import()`). It must be a module
// namespace exotic object as far as any program can tell: not extensible, sealed but not
// frozen, data descriptors `{ value, writable: true, enumerable: true, configurable: false }`,
// sorted keys, `[[Set]]`/`delete`/`defineProperty` refused as the spec says, TDZ errors for
// uninitialised bindings, `Symbol.toStringTag` "Module".
//
// It is a real module namespace object: a shell, a tiny native module with the same export
// names (hooks.ts), whose values the registry keeps equal to the live bindings — every change
// of a binding on the fast face (a write the exporting module mirrors, a swap re-pointing it) is
// mirrored here too. So everything about it is exact by construction, reads cost what a native
// namespace read costs, and `console.log(ns)` prints what Node prints (a Proxy would print as
// `Proxy(…)` on Node 26).
//
// The one thing a shell cannot show is a binding still in its TDZ: its `let` was initialised
// when the shell was made. A namespace taken as a value while one of its bindings is
// uninitialised (inside a cycle, or a module importing itself) is therefore a Proxy over the
// shell whose value traps read the live binding through the fast face, TDZ errors included;
// every trap that depends on the key set alone falls through to the shell.
//
// A face keeps the export names it was made with; a swap that changes the names makes a new
// face for later requests, and faces already held keep being mirrored for the names they have
// (docs/protocol.md, "Namespaces").
import { namespaceShell, type NamespaceShell } from './hooks.ts';

interface Face {
  readonly names: readonly string[];
  readonly object: object;
  readonly shell: NamespaceShell;
  readonly index: ReadonlyMap<string, number>;
}

/** Every face made for a fast face (the last is the one handed out now). */
const faces = new WeakMap<object, Face[]>();

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, index) => name === b[index]);
}

function tdzFace(fast: Record<string, unknown>, shell: NamespaceShell, index: ReadonlyMap<string, number>): object {
  const handler: ProxyHandler<object> = {
    // [[Set]] of a namespace is always false. Without this trap V8 sets through the target with
    // the Proxy as receiver, which ends in defineProperty and succeeds for an unchanged value.
    set: () => false,
    get(target, key) {
      if (typeof key === 'symbol' || !index.has(key)) return Reflect.get(target, key);
      return fast[key];
    },
    getOwnPropertyDescriptor(target, key) {
      if (typeof key === 'symbol' || !index.has(key)) return Reflect.getOwnPropertyDescriptor(target, key);
      return { value: fast[key], writable: true, enumerable: true, configurable: false };
    },
    // [[DefineOwnProperty]] of a namespace: only a redefinition that changes nothing succeeds.
    defineProperty(target, key, descriptor) {
      if (typeof key === 'symbol' || !index.has(key)) return Reflect.defineProperty(target, key, descriptor);
      const value = fast[key];
      if (descriptor.configurable === true || descriptor.enumerable === false || descriptor.writable === false) return false;
      if ('get' in descriptor || 'set' in descriptor) return false;
      return 'value' in descriptor ? Object.is(descriptor.value, value) : true;
    },
  };
  return new Proxy(shell.namespace, handler);
}

/**
 * The exact face of a fast namespace whose export names are `names` (sorted). Made once per
 * name set; the same object is handed out until the names change.
 */
export function exactFace(fast: Record<string, unknown>, names: readonly string[]): object {
  const list = faces.get(fast);
  const known = list?.at(-1);
  if (known && sameNames(known.names, names)) return known.object;
  const shell = namespaceShell(names);
  const index = new Map(names.map((name, at) => [name, at]));
  let uninitialised = false;
  const values = names.map((name) => {
    try {
      return fast[name];
    } catch {
      uninitialised = true;
      return undefined;
    }
  });
  shell.setAll(values);
  const face: Face = { names, shell, index, object: uninitialised ? tdzFace(fast, shell, index) : shell.namespace };
  if (list) list.push(face);
  else faces.set(fast, [face]);
  return face.object;
}

/**
 * The shell module of the exact face `exactFace` hands out for `fast` now (made if need be): its
 * URL and export names, for a require() that must get this very module (hooks.ts `requiredLive`).
 */
export function exactShell(fast: Record<string, unknown>, names: readonly string[]): { url: string; names: readonly string[] } {
  exactFace(fast, names);
  const face = faces.get(fast)!.at(-1)!;
  return { url: face.shell.url, names: face.names };
}

/** A binding of a fast face changed: every exact face made for it shows the new value. */
export function mirrorExact(fast: object, name: string, value: unknown): void {
  const list = faces.get(fast);
  if (!list) return;
  for (const face of list) {
    const at = face.index.get(name);
    if (at !== undefined) face.shell.set(at, value);
  }
}

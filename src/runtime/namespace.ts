// Namespaces are owned by the registry, one per module path, and keep their identity for the
// life of the registry: importers hold them as parameters and read `ns.name` on every access.
// Each binding is a non-configurable accessor reading the module's current getter from a
// closure slot, so importers cannot delete or redefine it, and a swap (or a lazy load) changes
// the slot, never what importers hold.
//
// Reads are the hot path of all live code: the object is made with `{}` and then given a null
// prototype, because V8 keeps that in fast mode (an accessor read is ~2.5 ns here), where
// Object.create(null) makes a dictionary-mode object (~7.5 ns), and the slot is a closure
// variable rather than a Map entry (~10 ns).

export type Namespace = Record<string, unknown>;
export type Getters = Readonly<Record<string, () => unknown>>;

type Point = (getter: () => unknown) => void;

const slots = new WeakMap<Namespace, Map<string, Point>>();

const gone = (): undefined => undefined;

export function createNamespace(): Namespace {
  const namespace: Namespace = {};
  Object.setPrototypeOf(namespace, null);
  Object.defineProperty(namespace, Symbol.toStringTag, { value: 'Module' });
  slots.set(namespace, new Map());
  return namespace;
}

function defineSlot(namespace: Namespace, name: string, getter: () => unknown): Point {
  let current = getter;
  Object.defineProperty(namespace, name, { get: (): unknown => current(), enumerable: true, configurable: false });
  return (next) => {
    current = next;
  };
}

/**
 * Points a namespace's bindings at `own` getters and at re-exports from star sources, defining
 * new names in sorted order as an ES module namespace has them. A name no longer exported
 * (after a swap) keeps its property and reads undefined: bindings are never removed.
 */
export function defineBindings(namespace: Namespace, own: Getters, star: ReadonlyMap<string, Namespace>): void {
  const table = slots.get(namespace)!;
  const names = new Set<string>(star.keys());
  for (const name in own) if (Object.hasOwn(own, name)) names.add(name);
  for (const [name, point] of table) if (!names.has(name)) point(gone);
  for (const name of [...names].sort()) {
    const getter = Object.hasOwn(own, name) ? own[name]! : ((source: Namespace) => (): unknown => source[name])(star.get(name)!);
    const point = table.get(name);
    if (point) point(getter);
    else table.set(name, defineSlot(namespace, name, getter));
  }
}

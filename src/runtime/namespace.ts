// Namespaces are owned by the registry, one per module path, and keep their identity for the
// life of the registry: importers hold them as parameters and read `ns.name` on every access.
// Each binding is a non-configurable accessor that reads the module's current getter from a
// slot table, so importers cannot delete or redefine it, and a swap (or a lazy load) changes
// the slot, never what importers hold.

export type Namespace = Record<string, unknown>;
export type Getters = Readonly<Record<string, () => unknown>>;

const slots = new WeakMap<Namespace, Map<string, () => unknown>>();

const gone = (): undefined => undefined;

export function createNamespace(): Namespace {
  const namespace = Object.create(null) as Namespace;
  Object.defineProperty(namespace, Symbol.toStringTag, { value: 'Module' });
  slots.set(namespace, new Map());
  return namespace;
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
  for (const name of table.keys()) if (!names.has(name)) table.set(name, gone);
  for (const name of [...names].sort()) {
    const getter = Object.hasOwn(own, name) ? own[name]! : ((source: Namespace) => (): unknown => source[name])(star.get(name)!);
    const known = table.has(name);
    table.set(name, getter);
    if (!known) {
      Object.defineProperty(namespace, name, {
        get: (): unknown => table.get(name)!(),
        enumerable: true,
        configurable: false,
      });
    }
  }
}

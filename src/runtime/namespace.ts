// Namespaces are owned by the registry, one per module path, and keep their identity for the
// life of the registry: importers hold them as parameters and read `ns.name` on every access.
// A binding is an accessor on the namespace, pointing at the current version's getter — so a
// swap re-points accessors and a lazy load defines them on first use, and neither changes what
// importers hold.

export type Namespace = Record<string, unknown>;
export type Getters = Readonly<Record<string, () => unknown>>;

export function createNamespace(): Namespace {
  const namespace = Object.create(null) as Namespace;
  Object.defineProperty(namespace, Symbol.toStringTag, { value: 'Module' });
  return namespace;
}

/**
 * Points a namespace's bindings at `own` getters and at re-exports from star sources, in
 * sorted order as an ES module namespace has them. Names no longer exported are removed.
 */
export function defineBindings(namespace: Namespace, own: Getters, star: ReadonlyMap<string, Namespace>): void {
  const names = [...new Set([...Object.keys(own), ...star.keys()])].sort();
  for (const name of Object.keys(namespace)) if (!names.includes(name)) delete namespace[name];
  for (const name of names) {
    const getter = own[name];
    const source = star.get(name);
    Object.defineProperty(namespace, name, {
      get: getter ?? ((): unknown => source![name]),
      enumerable: true,
      configurable: true,
    });
  }
}

// Namespaces have two faces (docs/protocol.md, "Namespaces"). This file is the fast face: the
// object the registry passes to importers, which live code reads with rewritten member reads
// (`ns.x`, and every named import). It is owned by the registry, one per module path, and keeps
// its identity for the life of the registry. Each binding is a non-configurable accessor reading
// the module's current getter from a closure slot, so importers cannot delete or redefine it,
// and a swap (or a lazy load) changes the slot, never what importers hold. Where a namespace
// escapes as a value, exact.ts gives the spec-exact face over this one.
//
// Reads are the hot path of all live code: the object is made with `{}` and then given a null
// prototype, because V8 keeps that in fast mode (an accessor read is ~2.5 ns here), where
// Object.create(null) makes a dictionary-mode object (~7.5 ns), and the slot is a closure
// variable rather than a Map entry (~10 ns).
import { exactFace } from './exact.ts';

export type Namespace = Record<string, unknown>;
export type Getters = Readonly<Record<string, () => unknown>>;

type Point = (getter: () => unknown) => void;

interface Slots {
  readonly points: Map<string, Point>;
  /** The export names now, sorted: what the exact face shows. */
  names: readonly string[];
}

const slots = new WeakMap<Namespace, Slots>();

const gone = (): undefined => undefined;

export function createNamespace(): Namespace {
  const namespace: Namespace = {};
  Object.setPrototypeOf(namespace, null);
  Object.defineProperty(namespace, Symbol.toStringTag, { value: 'Module' });
  slots.set(namespace, { points: new Map(), names: [] });
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
 * (after a swap) keeps its property on this face and reads undefined: bindings are never removed.
 */
export function defineBindings(namespace: Namespace, own: Getters, star: ReadonlyMap<string, Namespace>): void {
  const table = slots.get(namespace)!;
  const names = new Set<string>(star.keys());
  for (const name in own) if (Object.hasOwn(own, name)) names.add(name);
  for (const [name, point] of table.points) if (!names.has(name)) point(gone);
  // Code-unit order, as the spec sorts namespace keys (the default sort compares UTF-16 units).
  const sorted = [...names].sort();
  for (const name of sorted) {
    const getter = Object.hasOwn(own, name) ? own[name]! : ((source: Namespace) => (): unknown => source[name])(star.get(name)!);
    const point = table.points.get(name);
    if (point) point(getter);
    else table.points.set(name, defineSlot(namespace, name, getter));
  }
  table.names = sorted;
}

/**
 * The value a namespace has where it escapes: the exact face of a registry namespace, or the
 * object itself when it is not one (an external's namespace is Node's own, exact already).
 */
export function exactNamespace(namespace: unknown): unknown {
  const table = typeof namespace === 'object' && namespace !== null ? slots.get(namespace as Namespace) : undefined;
  return table ? exactFace(namespace as Namespace, table.names) : namespace;
}

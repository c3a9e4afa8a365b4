// Namespaces have two faces (docs/protocol.md, "Namespaces"). This file is the fast face: the
// object the registry passes to importers, which live code reads with rewritten member reads
// (`ns.x`, and every named import). It is owned by the registry, one per module path, and keeps
// its identity for the life of the registry; a swap (or a lazy load) changes its properties,
// never what importers hold. Where a namespace escapes as a value, exact.ts gives the
// spec-exact face over this one.
//
// Reads are the hot path of all live code, so a binding is a plain data property holding the
// binding's value: V8 reads it as it reads any object field (measured: within noise of a plain
// property read; an accessor whose getter reads the exporting module's variable cost about 5×,
// because V8 does not reduce the getter's context read to a field load). The exporting module
// mirrors every write of an exported binding into the namespaces that show it (the rewrite's
// `__lm.w.name = value`, registry.ts). A binding still in its TDZ is an accessor whose getter
// throws the TDZ ReferenceError, until the declaration runs and mirrors the first value.
//
// The properties are non-writable, so an assignment through the face throws as a namespace's
// does, and configurable only so that the registry can update them: this face never escapes to
// programs except as `this` of a call `ns.f()`. Each face starts with a symbol of its own, so
// that faces never share V8 hidden classes: faces of one shape with different getters would
// otherwise drop to dictionary mode (measured: about 25× slower reads). That symbol's field
// holds a small integer, for settle() below.

import { exactFace, exactShell, mirrorExact } from './exact.ts';

export type Namespace = Record<string, unknown>;
export type Getters = Readonly<Record<string, () => unknown>>;

interface Slots {
  /** The export names now, sorted: what the exact face shows. */
  names: readonly string[];
  /** The face's own symbol key (its first property), whose field retires the trigger shape. */
  mark: symbol;
  /** Whether a lazy trigger has been installed since the face last showed data properties. */
  armed: boolean;
  /** Whether the mark's field has been generalised already (it can be, once). */
  retired: boolean;
}

const slots = new WeakMap<Namespace, Slots>();

export function createNamespace(label: string): Namespace {
  const namespace: Namespace = {};
  // A prototype of its own (empty, itself without one): the face's hidden classes then form a
  // tree of their own. Faces that all started from one shared map would hang their first
  // property off that map, which takes at most 1,536 transitions: past that, a face's maps sit
  // outside any tree, so settle() deprecates nothing and a TDZ binding becoming a value sends
  // the face to dictionary mode (%HasFastProperties in a script that made faces this way: from
  // about the 1,534th face on; test/face-shape.test.ts guards a program of 1,600 modules).
  Object.setPrototypeOf(namespace, Object.create(null));
  const mark = Symbol(label);
  // A small integer, writable: settle() stores a fraction here once (see there).
  Object.defineProperty(namespace, mark, { value: 0, writable: true });
  Object.defineProperty(namespace, Symbol.toStringTag, { value: 'Module' });
  slots.set(namespace, { names: [], mark, armed: false, retired: false });
  return namespace;
}

/** The export names a namespace shows now. */
export function namesOf(namespace: Namespace): readonly string[] {
  return slots.get(namespace)!.names;
}

/** Sets the export names a namespace shows (sorted in code-unit order, as the spec sorts them). */
export function setNames(namespace: Namespace, names: readonly string[]): void {
  slots.get(namespace)!.names = names;
}

/** A binding's value, as a data property (and on the namespace's exact faces). */
export function bindValue(namespace: Namespace, name: string, value: unknown): void {
  Object.defineProperty(namespace, name, { value, writable: false, enumerable: true, configurable: true });
  mirrorExact(namespace, name, value);
}

/** What a getter reads: an object and a key, so that a relink reading the same keeps the getter it has. */
const readsOf = new WeakMap<() => unknown, readonly [object, string | null]>();

/**
 * A binding read through a getter: in its TDZ, or one whose writes are not mirrored (an
 * external's, or a namespace as a binding). With `reads`, the object and key the getter reads:
 * a relink that reads the same keeps the accessor there, since V8 sends an object whose
 * accessor is replaced by another to dictionary mode.
 */
export function bindGetter(namespace: Namespace, name: string, getter: () => unknown, reads?: readonly [object, string | null]): void {
  const current = reads ? (Object.getOwnPropertyDescriptor(namespace, name)?.get as (() => unknown) | undefined) : undefined;
  const was = current === undefined ? undefined : readsOf.get(current);
  if (was && was[0] === reads![0] && was[1] === reads![1]) {
    // Kept; what it reads now still goes to the exact faces (below).
    getter = current!;
  } else {
    if (reads) readsOf.set(getter, reads);
    Object.defineProperty(namespace, name, { get: getter, enumerable: true, configurable: true });
  }
  let value: unknown;
  try {
    value = getter();
  } catch {
    // In its TDZ: exact faces made from now on are Proxies that throw as the binding does.
    return;
  }
  mirrorExact(namespace, name, value);
}

/**
 * A binding of a lazily imported module not evaluated yet: an accessor whose first read
 * evaluates the module (and re-binds its face). Unlike bindGetter it is not read now: reading
 * it is what evaluates the module.
 */
export function bindTrigger(namespace: Namespace, name: string, getter: () => unknown): void {
  Object.defineProperty(namespace, name, { get: getter, enumerable: true, configurable: true });
  slots.get(namespace)!.armed = true;
}

/**
 * Called once a face that showed lazy triggers shows its bindings as data properties. A read
 * site whose own first run was the trigger has both shapes in its inline cache: the accessor's
 * and the data properties'. They are two branches of V8's map tree, so the first is not
 * deprecated by the second, and optimised code keeps checking for it (measured: 6–11× a plain
 * read in a hot loop whose first iteration loaded the module). Storing a fraction in the face's
 * first field, which held a small integer, is a representation change V8 cannot make in place:
 * it deprecates every map below that field — the trigger shape included — and moves the face to
 * a fresh one. An inline cache whose first map is deprecated goes back to one map at its next
 * miss, and the optimising compilers drop deprecated maps from feedback, so the site reads at
 * full speed (1.00× in the same test). Code already optimised for the data shape deoptimises
 * once. Once per face: the field stays a double after that, and a double becoming tagged is not
 * a change that deprecates on every V8 version.
 */
export function settle(namespace: Namespace): void {
  const slot = slots.get(namespace)!;
  if (!slot.armed) return;
  slot.armed = false;
  if (slot.retired) return;
  slot.retired = true;
  (namespace as Record<symbol, unknown>)[slot.mark] = 0.5;
}

/**
 * A face whose names live on its prototype: `trigger` (whose accessors or traps load what the
 * names come from) until `become(namespace)`, then that namespace itself, so reads cost what
 * reading the namespace costs, live as its bindings are. Used where the names are another
 * module's namespace, which only a prototype can show without copying: a lazily imported
 * package (registry.ts) and `lazy(() => import(…))`. `become` retires the shape read sites saw
 * before the load as settle() does (its own first field, a small integer, takes a fraction),
 * then makes the face non-extensible, so an assignment throws as on the namespace instead of
 * making an own property that would hide the binding.
 */
export function prototypeFace(trigger: object, label: string): { face: Record<PropertyKey, unknown>; become(namespace: object): void } {
  const face: Record<PropertyKey, unknown> = {};
  const mark = Symbol(label);
  Object.setPrototypeOf(face, trigger);
  Object.defineProperty(face, mark, { value: 0, writable: true });
  return {
    face,
    become(namespace) {
      face[mark] = 0.5;
      Object.setPrototypeOf(face, namespace);
      Object.preventExtensions(face);
    },
  };
}

/** A name no longer exported (after a swap): gone from this face, as from faces made from now on. */
export function unbind(namespace: Namespace, name: string): void {
  // Configurable so this can happen: nothing but the registry can reach this face to delete.
  delete namespace[name];
}

/** The shell module of a namespace's exact face (exact.ts `exactShell`). */
export function exactNamespaceShell(namespace: Namespace): { url: string; names: readonly string[] } {
  return exactShell(namespace, slots.get(namespace)!.names);
}

/**
 * The value a namespace has where it escapes: the exact face of a registry namespace, or the
 * object itself when it is not one (an external's namespace is Node's own, exact already).
 */
export function exactNamespace(namespace: unknown): unknown {
  const table = typeof namespace === 'object' && namespace !== null ? slots.get(namespace as Namespace) : undefined;
  return table ? exactFace(namespace as Namespace, table.names) : namespace;
}

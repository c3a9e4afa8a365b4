// Lazy properties: a value computed on its first read, once per instance, then kept as a plain
// own data property, so every later read is an ordinary property read (no getter call).
//   class Repo { @lazy get index() { return buildIndex(this.rows); } }       // standard decorators
//   lazyProperty(Repo.prototype, 'index', function () { return buildIndex(this.rows); });
// `@lazy` is a TC39 standard decorator (TypeScript 5 without experimentalDecorators). livemod's
// builder does not lower decorators (oxc-transform lowers only the legacy ones) and Node 24 does
// not run them, so in live modules use `lazyProperty`; `@lazy` works in code compiled by tsc.
// The same name also takes `lazy(() => import("pkg"))` (lazy-import.ts).
import { lazyImport } from './lazy-import.ts';

/** Defines `name` on `target` (an object, or a class prototype for every instance) as computed once per receiver on first read. */
export function lazyProperty<T extends object, K extends PropertyKey, V>(target: T, name: K, compute: (this: T) => V): void {
  Object.defineProperty(target, name, {
    configurable: true,
    enumerable: false,
    get(this: T): V {
      const value = compute.call(this);
      // On the receiver itself: an instance shadows the prototype's getter from now on.
      Object.defineProperty(this, name, { value, writable: true, enumerable: true, configurable: true });
      return value;
    },
  });
}

/**
 * Two uses, one name, as the standard decorator and the import idiom each want it:
 * - `lazy(() => import("pkg"))`: the package's namespace, loaded at the first read (lazy-import.ts);
 * - `@lazy` on a class getter: computed once per instance on first read, then a plain own property.
 */
export function lazy<T extends object>(load: () => Promise<T>): T;
export function lazy<This extends object, Value>(getter: (this: This) => Value, context: ClassGetterDecoratorContext<This, Value>): (this: This) => Value;
export function lazy<This extends object, Value>(getter: ((this: This) => Value) | (() => Promise<object>), context?: ClassGetterDecoratorContext<This, Value>): unknown {
  if (context === undefined) return lazyImport(getter as () => Promise<object>, lazy);
  return lazyGetter(getter as (this: This) => Value, context);
}

function lazyGetter<This extends object, Value>(getter: (this: This) => Value, context: ClassGetterDecoratorContext<This, Value>): (this: This) => Value {
  if (context.kind !== 'getter') throw new TypeError(`@lazy decorates a getter, not a ${String((context as { kind: unknown }).kind)}`);
  if (context.static) throw new TypeError('@lazy decorates an instance getter; for a static value use lazyProperty(Class, name, compute)');
  const name = context.name;
  return function (this: This): Value {
    const value = getter.call(this);
    Object.defineProperty(this, name, { value, writable: true, enumerable: true, configurable: true });
    return value;
  };
}

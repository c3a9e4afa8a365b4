// ES module semantics of the registry, each as users rely on it, on real local builds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { registryFor } from './helpers/runtime.ts';

test('named, default and namespace imports', async (t) => {
  const { run } = registryFor(t, {
    'lib.ts': 'export const a: number = 1; export function b() { return 2; } export default "d";',
    'main.ts': `import d, { a, b as bee } from './lib'; import * as lib from './lib.js';
      export const seen = [d, a, bee(), lib.a, lib.default, Object.keys(lib).join(','), Object.prototype.toString.call(lib)];`,
  });
  const ns = await run('main.ts');
  assert.deepEqual(ns.seen, ['d', 1, 2, 1, 'd', 'a,b,default', '[object Module]']);
});

test('live bindings: a reassigned exported let is seen by importers', async (t) => {
  const { run } = registryFor(t, {
    'counter.ts': 'export let count = 0; export function inc() { count += 1; }',
    'main.ts': `import { count, inc } from './counter'; import * as c from './counter';
      export function read() { return [count, c.count]; } inc(); inc();`,
  });
  const ns = await run('main.ts');
  assert.deepEqual((ns.read as () => number[])(), [2, 2]);
  const counter = await run('counter.ts');
  (counter.inc as () => void)();
  assert.deepEqual((ns.read as () => number[])(), [3, 3]);
  assert.throws(() => {
    'use strict';
    (counter as Record<string, unknown>).count = 9;
  }, TypeError, 'namespace bindings are read-only');
});

test('export *, export * as ns and re-exports; ambiguous star names are left out', async (t) => {
  const { run } = registryFor(t, {
    'a.ts': 'export const x = "a.x"; export const dup = "a"; export default "a.default";',
    'b.ts': 'export const y = "b.y"; export const dup = "b";',
    'c.ts': 'export { y as renamedY } from "./b"; export { default as aDefault } from "./a";',
    'hub.ts': 'export * from "./a"; export * from "./b"; export * as bNs from "./b"; export * from "./c";',
    'main.ts': 'import * as hub from "./hub"; export const keys = Object.keys(hub); export const values = [hub.x, hub.y, (hub.bNs as any).y, hub.renamedY, hub.aDefault];',
  });
  const ns = await run('main.ts');
  assert.deepEqual(ns.keys, ['aDefault', 'bNs', 'renamedY', 'x', 'y']);
  assert.deepEqual(ns.values, ['a.x', 'b.y', 'b.y', 'b.y', 'a.default']);
});

test('importing a name a module does not export is a SyntaxError at link time, before anything runs', async (t) => {
  const { run } = registryFor(t, {
    'lib.ts': 'export const a = 1; globalThis.__libRan = true;',
    'main.ts': 'import { nope } from "./lib"; export const x = nope;',
  });
  await assert.rejects(run('main.ts'), (error: Error) => error instanceof SyntaxError && /does not provide an export named 'nope'/.test(error.message));
  assert.equal((globalThis as Record<string, unknown>).__libRan, undefined);
});

test('cycles: hoisted functions work across the cycle, an uninitialised let throws a TDZ ReferenceError', async (t) => {
  const { run } = registryFor(t, {
    'a.ts': 'import { b, readA } from "./b"; export function hoisted() { return "hoisted"; } export let value = "a"; export const result = b + readA();',
    'b.ts': `import { hoisted, value } from "./a";
      export const b = hoisted();
      export function readA() { return value; }
      let tdz = ""; try { value; } catch (error) { tdz = (error as Error).name + ":" + (error as Error).message; }
      export { tdz };`,
  });
  const a = await run('a.ts');
  assert.equal(a.result, 'hoisteda');
  const b = await run('b.ts');
  assert.match(b.tdz as string, /^ReferenceError:.*before initialization/);
});

test('evaluation order is depth-first in import order, and a module runs once', async (t) => {
  const { run } = registryFor(t, {
    'log.ts': 'export const order: string[] = [];',
    'x.ts': 'import { order } from "./log"; order.push("x");',
    'y.ts': 'import { order } from "./log"; import "./x"; order.push("y");',
    'main.ts': 'import { order } from "./log"; import "./y"; import "./x"; order.push("main"); export { order };',
  });
  assert.deepEqual((await run('main.ts')).order, ['x', 'y', 'main']);
});

test('top-level await: importers wait, and a sync sibling still runs in order', async (t) => {
  const { run } = registryFor(t, {
    'log.ts': 'export const order: string[] = [];',
    'slow.ts': 'import { order } from "./log"; await new Promise((r) => setTimeout(r, 5)); order.push("slow"); export const value = 42;',
    'fast.ts': 'import { order } from "./log"; order.push("fast");',
    'main.ts': 'import { order } from "./log"; import { value } from "./slow"; import "./fast"; order.push("main:" + value); export { order };',
  });
  assert.deepEqual((await run('main.ts')).order, ['fast', 'slow', 'main:42']);
});

test('dynamic import() of live modules (literal and computed) and of externals', async (t) => {
  const { run } = registryFor(
    t,
    {
      'lazy.ts': 'export const lazy = "lazy";',
      'main.ts': `export const literal = (await import('./lazy')).lazy;
        const name = './la' + 'zy.ts'; export const computed = (await import(name)).lazy;
        export const external = (await import('pkg-esm')).hello();
        export const builtin = (await import('node:path')).posix.join('a', 'b');
        export const missing = await import('./nope').then(() => 'loaded', (error) => error.code);`,
    },
    {
      'node_modules/pkg-esm/package.json': JSON.stringify({ name: 'pkg-esm', type: 'module', exports: './index.js' }),
      'node_modules/pkg-esm/index.js': 'export const hello = () => "from pkg-esm";',
    },
  );
  const ns = await run('main.ts');
  assert.deepEqual([ns.literal, ns.computed, ns.external, ns.builtin, ns.missing], ['lazy', 'lazy', 'from pkg-esm', 'a/b', 'ERR_MODULE_NOT_FOUND']);
});

test('import.meta.url is the module URL; import.meta.resolve resolves live and external specifiers', async (t) => {
  const { run, dir } = registryFor(
    t,
    { 'sub/main.ts': `export const url = import.meta.url; export const live = import.meta.resolve('../other'); export const ext = import.meta.resolve('pkg-cjs'); export const dirname = import.meta.dirname;`, 'other.ts': 'export {};' },
    { 'node_modules/pkg-cjs/package.json': JSON.stringify({ name: 'pkg-cjs', main: 'main.js' }), 'node_modules/pkg-cjs/main.js': 'module.exports = { n: 1 };' },
  );
  const ns = await run('sub/main.ts');
  assert.equal(ns.url, `file://${dir}/sub/main.ts`);
  assert.equal(ns.live, `file://${dir}/other.ts`);
  assert.match(ns.ext as string, /node_modules\/pkg-cjs\/main\.js$/);
  assert.equal(ns.dirname, `${dir}/sub`);
});

test('externals load natively from the program folder: ESM, CommonJS with named exports, builtins', async (t) => {
  const { run } = registryFor(
    t,
    { 'main.ts': `import cjs, { n } from 'pkg-cjs'; import { hello } from 'pkg-esm'; import { EOL } from 'node:os'; export const seen = [cjs.n, n, hello(), EOL];` },
    {
      'node_modules/pkg-cjs/package.json': JSON.stringify({ name: 'pkg-cjs', main: 'main.js' }),
      'node_modules/pkg-cjs/main.js': 'exports.n = 1;',
      'node_modules/pkg-esm/package.json': JSON.stringify({ name: 'pkg-esm', type: 'module', exports: { import: './esm.js', require: './cjs.cjs' } }),
      'node_modules/pkg-esm/esm.js': 'export const hello = () => "esm condition";',
      'node_modules/pkg-esm/cjs.cjs': 'exports.hello = () => "require condition";',
    },
  );
  assert.deepEqual((await run('main.ts')).seen, [1, 1, 'esm condition', '\n']);
});

test('a missing external fails with ERR_MODULE_NOT_FOUND naming the importer and where externals resolve', async (t) => {
  const { run } = registryFor(t, { 'main.ts': `import 'not-installed-anywhere';` });
  await assert.rejects(run('main.ts'), (error: NodeJS.ErrnoException) => error.code === 'ERR_MODULE_NOT_FOUND' && error.message.includes('main.ts') && error.message.includes('externals resolve from'));
});

test('live code can import livemod itself and gets this very copy', async (t) => {
  const { run } = registryFor(t, { 'main.ts': `import * as livemod from 'livemod'; export const api = livemod;` });
  const ns = await run('main.ts');
  const self = await import('../src/index.ts');
  assert.equal((ns.api as Record<string, unknown>).Registry, self.Registry);
});

test('an unresolved import fails only the module that has it, as Node does', async (t) => {
  const { run } = registryFor(t, { 'main.ts': 'export const ok = true;', 'tools/unused.ts': "\n\nimport { x } from './gone';\nexport { x };" });
  assert.equal((await run('main.ts')).ok, true);
  await assert.rejects(run('tools/unused.ts'), (error: NodeJS.ErrnoException) => error.code === 'ERR_MODULE_NOT_FOUND' && /tools\/unused\.ts:3/.test(error.message) && error.message.includes("'./gone'"));
});

test('an evaluation error is thrown again on the next import, as ESM caches it', async (t) => {
  const { run } = registryFor(t, { 'bad.ts': 'globalThis.__badRuns = ((globalThis.__badRuns as number) ?? 0) + 1; throw new RangeError("bad module");', 'main.ts': 'import "./bad";' });
  const first = await run('main.ts').catch((error: unknown) => error);
  const second = await run('main.ts').catch((error: unknown) => error);
  assert.ok(first instanceof RangeError);
  assert.equal(second, first);
  assert.equal((globalThis as Record<string, unknown>).__badRuns, 1);
});

test('errors thrown in live code have stack traces pointing at the original file, line and column', async (t) => {
  const source = ['import { helper } from "./helper";', 'type Unused = { a: string };', 'export function fail(): never {', '  const value: number = helper(2);', '  throw new Error(`failed with ${value}`);', '}'].join('\n');
  const { run, dir } = registryFor(t, { 'helper.ts': 'export const helper = (n: number): number => n * 21;', 'main.ts': source });
  const ns = await run('main.ts');
  const error = (() => {
    try {
      (ns.fail as () => never)();
    } catch (caught) {
      return caught as Error;
    }
  })()!;
  const column = source.split('\n')[4]!.indexOf('new Error') + 1;
  assert.ok(error.stack!.includes(`fail (file://${dir}/main.ts:5:${column})`), error.stack);
});

test('a var nested in blocks of a function shadows an import of the same name', async (t) => {
  const { run } = registryFor(t, {
    'lib.ts': 'export const e = (x: number): number => x * 10; export const value = "import";',
    'main.ts': `import { e, value } from './lib';
      function sum(list: number[]) { for (var n = 0, r = 0; n < list.length; n++) { var e = list[n]; r += e; } return r; }
      function pick(flag: boolean) { if (flag) { var value = 'local'; } return value; }
      export const results = [sum([1, 2, 3]), pick(true), pick(false), e(1)];`,
  });
  assert.deepEqual((await run('main.ts')).results, [6, 'local', undefined, 10]);
});

test('export * is ambiguous only when the bindings differ; names on Object.prototype and __proto__ work', async (t) => {
  const { run } = registryFor(t, {
    'l1.ts': 'export const x = 1; export const toString = 5;',
    'l2.ts': 'export { x } from "./l1";',
    'l3.ts': 'import { x } from "./l1"; export { x };',
    'mid.ts': 'export * from "./l1"; export * from "./l2"; export * from "./l3"; export * from "node:path"; export * from "path";',
    'proto.ts': 'const p = 7; export { p as __proto__ };',
    'main.ts': `import { x, toString as t, sep } from './mid'; import * as mid from './mid'; import * as proto from './proto';
      export const seen = [x, t, sep, Object.keys(mid).includes('x'), Object.keys(proto), (proto as Record<string, unknown>)['__proto__']];`,
  });
  assert.deepEqual((await run('main.ts')).seen, [1, 5, '/', true, ['__proto__'], 7]);
});

test('namespaces cannot be changed by importers', async (t) => {
  const { run } = registryFor(t, { 'lib.ts': 'export const a = 1;', 'main.ts': 'import * as lib from "./lib"; export { lib };' });
  const lib = (await run('main.ts')).lib as Record<string, unknown>;
  assert.throws(() => {
    delete lib.a;
  }, TypeError);
  assert.throws(() => Object.defineProperty(lib, 'a', { value: 2 }), TypeError);
  assert.throws(() => {
    lib.a = 3;
  }, TypeError);
  assert.equal(lib.a, 1);
  assert.equal(Object.getOwnPropertyDescriptor(lib, 'a')?.configurable, false);
});

test('a parenthesised imported callee is called with this undefined; anonymous defaults are named "default"', async (t) => {
  const { run } = registryFor(t, {
    'lib.ts': `export function who(this: unknown) { return this === undefined ? 'undefined' : typeof this; }`,
    'arrow.ts': 'export default () => 1;',
    'klass.ts': 'export default class { static name = "custom"; }',
    'plain.ts': 'export default class {}',
    'comment.ts': 'export /* a comment */ default async /* another */ function () { return 1; }',
    'main.ts': `import { who } from './lib'; import arrow from './arrow'; import klass from './klass'; import plain from './plain'; import comment from './comment';
      export const seen = [who(), (who)(), ((who))(), arrow.name, klass.name, plain.name, comment.name];`,
  });
  assert.deepEqual((await run('main.ts')).seen, ['undefined', 'undefined', 'undefined', 'default', 'custom', 'default', 'default']);
});

test('a failing module next to a rejecting async sibling rejects once, with no unhandled rejection', async (t) => {
  const unhandled: unknown[] = [];
  const listener = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', listener);
  t.after(() => process.off('unhandledRejection', listener));
  const { run } = registryFor(t, { 'a.ts': 'await 0; throw new Error("a");', 'b.ts': 'throw new Error("b");', 'main.ts': 'import "./a"; import "./b";' });
  await assert.rejects(run('main.ts'), /^Error: b$/);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(unhandled, []);
});

test('JSON modules keep a "__proto__" key as data; import.meta has no prototype and resolves missing relative paths', async (t) => {
  const { run, dir } = registryFor(t, {
    'data.json': '{"__proto__": {"polluted": true}, "a": 1}',
    'main.ts': `import data from './data.json' with { type: 'json' }; export const seen = [Object.keys(data), ({} as Record<string, unknown>).polluted, Object.getPrototypeOf(import.meta), import.meta.resolve('./missing.ts')];`,
  });
  assert.deepEqual((await run('main.ts')).seen, [['__proto__', 'a'], undefined, null, `file://${dir}/missing.ts`]);
});

test('a default parameter value reads the import even when the body declares a var of that name', async (t) => {
  const { run } = registryFor(t, {
    'lib.ts': 'export const a = 1;',
    'main.ts': 'import { a } from "./lib"; function g(x = a) { var a = 2; return [x, a]; } export const seen = g();',
  });
  assert.deepEqual((await run('main.ts')).seen, [1, 2]);
});

test('import.meta.main is fixed when the module is instantiated, however late import.meta is first read', async (t) => {
  const { registry } = registryFor(t, {
    'package.json': '{"name":"meta-main"}',
    'entry.js': 'import { helperMain } from "./helper.js"; export const main = () => import.meta.main; export { helperMain };',
    'helper.js': 'export const helperMain = () => import.meta.main;',
    'first.js': 'export const main = () => import.meta.main;',
  });
  // Imported by path before it is the program's start: not the main module, then or later.
  const early = await registry.import('first.js');
  await registry.import('first.js', { main: true });
  assert.equal((early.main as () => boolean)(), false);
  // The start's own module is main; what it imports is not, whenever they first read import.meta.
  const entry = await registry.import('entry.js', { main: true });
  assert.equal((entry.helperMain as () => boolean)(), false);
  assert.equal((entry.main as () => boolean)(), true);
});

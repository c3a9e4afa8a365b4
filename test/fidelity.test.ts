// ES module fidelity, held against Node itself: each tree runs natively and through livemod, and
// what the program can observe must be the same (results, or the error's constructor and code).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { both, printed, summary } from './helpers/differential.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';

const LOG = { 'log.js': 'export const log = [];' };

test('a module that does not parse fails its importer at link time with a SyntaxError; nothing of the graph runs, other graphs do', async (t) => {
  for (const broken of ['export const a = ;', 'let x; let x;', 'export { undeclared };', 'export const a = 1; export { a };', 'import { x as eval } from "./ok.js";', 'yield;', 'new.target;', 'return 1;', '<!-- html comment\n', 'import { a } from "./ok.js"; import { b as a } from "./ok.js";']) {
    const { native, live } = await both(t, {
      ...LOG,
      'ok.js': 'import { log } from "./log.js"; log.push("ok"); export const a = 1, b = 2;',
      'broken.js': broken,
      'uses.js': 'import { log } from "./log.js"; log.push("uses"); import "./broken.js";',
      'main.js': `import { log } from './log.js'; import './ok.js';
        export const result = import('./uses.js').then(() => 'no error', (error) => [error.constructor.name, [...log]]);`,
    });
    assert.deepEqual(summary(live), summary(native), broken);
    assert.deepEqual(native.ok && native.result, ['SyntaxError', ['ok']], broken);
  }
});

test('namespaces are module namespace exotic objects as far as a program can tell', async (t) => {
  const probe = `
    'use strict';
    import * as ns from './lib.js';
    import * as self from './main.js';
    const attempt = (fn) => { try { return ['ok', fn()]; } catch (error) { return [error.constructor.name]; } };
    const d = Object.getOwnPropertyDescriptor(ns, 'a');
    export const result = [
      Object.isExtensible(ns), Object.isSealed(ns), Object.isFrozen(ns), Object.getPrototypeOf(ns),
      [d.value, d.writable, d.enumerable, d.configurable], Reflect.ownKeys(ns).map(String), Object.keys(ns),
      Object.prototype.toString.call(ns), ns[Symbol.toStringTag], Object.getOwnPropertyDescriptor(ns, Symbol.toStringTag),
      Reflect.set(ns, 'a', 2), Reflect.set(ns, 'z', 1), attempt(() => { ns.a = 2; }), attempt(() => { ns.z = 1; }),
      Reflect.deleteProperty(ns, 'a'), Reflect.deleteProperty(ns, 'z'), attempt(() => delete ns.a), attempt(() => delete ns.z),
      Reflect.defineProperty(ns, 'a', { value: 1 }), Reflect.defineProperty(ns, 'a', { value: 2 }), Reflect.defineProperty(ns, 'a', { writable: false }),
      Reflect.defineProperty(ns, 'z', { value: 1 }), Reflect.defineProperty(ns, Symbol.iterator, { value: 1 }), attempt(() => Object.defineProperty(ns, 'a', { enumerable: false })),
      Reflect.setPrototypeOf(ns, null), Reflect.setPrototypeOf(ns, {}), Reflect.preventExtensions(ns), 'a' in ns, 'z' in ns, Symbol.toStringTag in ns,
      ns.then, ns.z, Reflect.has(ns, 'B'), ns.B, Object.entries(ns).map(([k, v]) => k + '=' + typeof v),
      attempt(() => Object.keys(self)), attempt(() => Object.getOwnPropertyDescriptor(self, 'late')), attempt(() => self.late), 'late' in self,
      attempt(() => Reflect.defineProperty(self, 'late', {})),
    ];
    export let late = 1;`;
  const { native, live } = await both(t, {
    'lib.js': 'export const a = 1; export function f() {} export const B = "b"; export { a as "with space", a as "ß", a as "Z" }; export default 7;',
    'main.js': probe,
  });
  assert.ok(native.ok, JSON.stringify(native));
  assert.deepEqual(summary(live), summary(native));
});

test('a namespace handed out as a value prints as Node prints it, and keeps its identity', async (t) => {
  const { native, live, dir } = await both(t, {
    'lib.js': 'export let count = 1; export function bump() { count += 1; } export const text = "x"; export default { nested: [1, 2] }; export class K {}',
    'main.js': `import * as ns from './lib.js';
      export const lib = ns;
      export const result = import('./lib.js').then((again) => [again === ns, ns.count, Object.keys(again)]);`,
  });
  assert.ok(native.ok && live.ok);
  assert.deepEqual(live.result, native.result);
  assert.equal(printed(live.namespace.lib, dir), printed(native.namespace.lib, dir));
  assert.match(printed(live.namespace.lib, dir), /^\[Module: null prototype\] \{/);
});

test('module early errors and link errors: circular re-exports fail, an export * cycle is not ambiguous', async (t) => {
  const cases: Record<string, string>[] = [
    { 'main.js': 'export { x } from "./main.js";' },
    { 'a.js': 'export { x } from "./b.js";', 'b.js': 'export { x } from "./a.js";', 'main.js': 'import { x } from "./a.js"; export const result = x;' },
    { 'a.js': 'export * from "./b.js"; export const a = 1;', 'b.js': 'export * from "./a.js"; export const b = 2;', 'main.js': 'import * as ns from "./a.js"; export const result = Object.keys(ns);' },
    { 'x.js': 'export const v = 1;', 'a.js': 'export * from "./x.js";', 'b.js': 'export * from "./x.js";', 'hub.js': 'export * from "./a.js"; export * from "./b.js";', 'main.js': 'import { v } from "./hub.js"; export const result = v;' },
    { 'a.js': 'export const v = 1;', 'b.js': 'export const v = 2;', 'hub.js': 'export * from "./a.js"; export * from "./b.js";', 'main.js': 'import { v } from "./hub.js"; export const result = v;' },
    { 'a.js': 'export const v = 1;', 'b.js': 'export const v = 2;', 'hub.js': 'export * from "./a.js"; export * from "./b.js";', 'main.js': 'import * as ns from "./hub.js"; export const result = ["v" in ns, Object.keys(ns)];' },
    { 'a.js': 'export default 1; export const n = 1;', 'hub.js': 'export * from "./a.js";', 'main.js': 'import * as ns from "./hub.js"; export const result = Object.keys(ns);' },
    { 'main.js': 'import { missing } from "./main.js"; export const result = 1;' },
  ];
  for (const files of cases) {
    const { native, live } = await both(t, files);
    assert.deepEqual(summary(live), summary(native), JSON.stringify(files));
  }
});

test('import(): the specifier is converted and options are checked inside the promise, as the spec orders it', async (t) => {
  const { native, live } = await both(t, {
    'lib.js': 'export const a = 1;',
    'main.js': `
      const order = [];
      const settle = (promise) => promise.then((ns) => ['ok', Object.keys(ns)], (error) => [error.constructor.name, error.code]);
      const calls = [
        import({ toString() { order.push('toString'); return './lib.js'; } }),
        import(Symbol('s')),
        import({ toString() { throw new RangeError('no'); } }),
        import('./lib.js', 1),
        import('./lib.js', null),
        import('./lib.js', { with: 1 }),
        import('./lib.js', { with: { type: 1 } }),
        import('./lib.js', { get with() { throw new EvalError('getter'); } }),
        import('./lib.js', {}),
        import('./lib.js', { with: {} }),
        import('./lib.js', undefined),
      ];
      order.push('after');
      export const result = Promise.all(calls.map(settle)).then((settled) => [order, settled]);`,
  });
  assert.ok(native.ok, JSON.stringify(native));
  assert.deepEqual(summary(live), summary(native));
});

test('import attributes are enforced as Node enforces them, statically and in import()', async (t) => {
  const data = { 'data.json': '{"a": 1}', 'lib.js': 'export const a = 1;' };
  const cases = [
    'import d from "./data.json"; export const result = d;',
    'import d from "./data.json" with { type: "json" }; export const result = d;',
    'import d from "./data.json" with { type: "css" }; export const result = d;',
    'import * as l from "./lib.js" with { type: "json" }; export const result = l;',
    'import * as l from "./lib.js" with { other: "x" }; export const result = l;',
    'export { default as result } from "./data.json" with { type: "json" };',
    'export const result = import("./data.json").then((m) => m.default, (e) => [e.constructor.name, e.code]);',
    'export const result = import("./data.json", { with: { type: "json" } }).then((m) => m.default);',
    'export const result = import("./lib.js", { with: { type: "json" } }).then(() => "ok", (e) => [e.constructor.name, e.code]);',
  ];
  for (const main of cases) {
    const { native, live } = await both(t, { ...data, 'main.js': main });
    assert.deepEqual(summary(live), summary(native), main);
  }
});

test('source-phase imports of JavaScript modules fail as in Node: at link time, or as a rejected promise', async (t) => {
  const cases = [
    'import source s from "./lib.js"; export const result = 1;',
    'export const result = import.source("./lib.js").then(() => "ok", (e) => [e.constructor.name, e.code]);',
  ];
  for (const main of cases) {
    const { native, live } = await both(t, { 'lib.js': 'export const a = 1;', 'main.js': main });
    assert.deepEqual(summary(live), summary(native), main);
  }
});

test('import bindings are constant, namespace imports included; import() works inside eval', async (t) => {
  const { native, live } = await both(t, {
    'lib.js': 'export let a = 1;',
    'main.js': `import * as ns from './lib.js'; import { a } from './lib.js';
      const attempt = (fn) => { try { fn(); return 'ok'; } catch (error) { return error.constructor.name; } };
      export const result = Promise.all([
        [attempt(() => { a = 2; }), attempt(() => { ns = 2; }), attempt(() => { ns += 1; }), attempt(() => { [ns] = [1]; }), attempt(() => { ({ ns } = { ns: 1 }); }), attempt(() => { for (ns of [1]); }), typeof ns, a],
        eval('import("./lib.js")').then((m) => m === ns),
        eval('(() => import("./lib.js"))()').then((m) => Object.keys(m)),
      ]);`,
  });
  assert.ok(native.ok, JSON.stringify(native));
  assert.deepEqual(summary(live), summary(native));
});

test('top-level await: evaluation order with async dependencies and cycles is the spec order', async (t) => {
  const cases: Record<string, string>[] = [
    {
      ...LOG,
      'a.js': 'import { log } from "./log.js"; log.push("a start"); await null; log.push("a end");',
      'b.js': 'import { log } from "./log.js"; import "./a.js"; log.push("b");',
      'c.js': 'import { log } from "./log.js"; import "./a.js"; log.push("c");',
      'd.js': 'import { log } from "./log.js"; log.push("d");',
      'main.js': 'import { log } from "./log.js"; import "./b.js"; import "./d.js"; import "./c.js"; log.push("main"); export const result = log;',
    },
    {
      ...LOG,
      'cycle-a.js': 'import { log } from "./log.js"; import "./cycle-b.js"; log.push("cycle-a start"); await 1; log.push("cycle-a end");',
      'cycle-b.js': 'import { log } from "./log.js"; import "./cycle-a.js"; log.push("cycle-b");',
      'outside.js': 'import { log } from "./log.js"; import "./cycle-b.js"; log.push("outside");',
      'main.js': 'import { log } from "./log.js"; import "./cycle-a.js"; import "./outside.js"; log.push("main"); export const result = log;',
    },
    {
      ...LOG,
      'slow.js': 'import { log } from "./log.js"; await new Promise((r) => setTimeout(r, 20)); log.push("slow");',
      'fast.js': 'import { log } from "./log.js"; await null; log.push("fast");',
      'x.js': 'import { log } from "./log.js"; import "./slow.js"; log.push("x");',
      'y.js': 'import { log } from "./log.js"; import "./fast.js"; log.push("y");',
      'main.js': 'import { log } from "./log.js"; import "./x.js"; import "./y.js"; log.push("main"); export const result = log;',
    },
    {
      ...LOG,
      'bad.js': 'import { log } from "./log.js"; await null; log.push("bad"); throw new RangeError("bad");',
      'sibling.js': 'import { log } from "./log.js"; import "./bad.js"; log.push("sibling");',
      'main.js': 'import { log } from "./log.js"; export const result = import("./sibling.js").catch((e) => [e.constructor.name, [...log]]).then(async (first) => [first, await import("./bad.js").catch((e) => e.message)]);',
    },
  ];
  for (const files of cases) {
    const { native, live } = await both(t, files);
    assert.ok(native.ok, JSON.stringify(native));
    assert.deepEqual(summary(live), summary(native), Object.keys(files).join(' '));
  }
});

test('package self-reference needs an exports map, as in Node', async (t) => {
  const { native, live } = await both(t, {
    'package.json': '{"name":"selfish","type":"module","main":"lib.js"}',
    'lib.js': 'export const a = 1;',
    'main.js': 'export const result = import("selfish").then(() => "resolved", (e) => [e.constructor.name, e.code]);',
  });
  assert.deepEqual(summary(live), summary(native));
});

test('live bindings: every way a module writes an exported binding is seen by importers', async (t) => {
  const { native, live } = await both(t, {
    'lib.js': `
      export let count = 0, pair = [0, 0], obj = { a: 0 };
      export var hoisted;
      export let later;
      export function f() { return 'f1'; }
      export class K {}
      export let looped, iterated;
      var innerVar;
      export { innerVar, count as alias };
      export default 'first';
      export function run() {
        count += 1; count++; ++count; count **= 2;
        [pair[0], count] = [1, count + 1];
        ({ a: obj } = { a: { a: 9 } });
        hoisted = 'set';
        f = () => 'f2';
        K = class K2 {};
        for (looped = 0; looped < 3; looped++);
        for (iterated of ['x', 'y']);
        if (true) { var innerVar = 'inner'; }
        later ??= 'later';
        return count;
      }`,
    'main.js': `
      import * as lib from './lib.js';
      import { count, alias, hoisted, f, K, looped, iterated, innerVar, later, run } from './lib.js';
      import dflt from './lib.js';
      const snap = () => [count, alias, hoisted, f(), K.name, looped, iterated, innerVar, later, dflt, lib.count, lib.obj, Object.keys(lib).length];
      const before = snap();
      run();
      export const result = [before, snap()];`,
  });
  assert.ok(native.ok, JSON.stringify(native));
  assert.deepEqual(summary(live), summary(native));
});

test('a loop head that writes an export is mirrored without meeting same-named declarations in the body', async (t) => {
  const cases = [
    'export let x; for (x of [1, 2]) { let x = 5; }',
    'export let x; for (x in { p: 1 }) { class x {} }',
    'export var v; for (var v of [7]) { const v = 0; }',
    'export let x; for (x of [3]) { function x() {} }',
    'export var v = 0; for (var [w, v] = [1, 10]; false;);',
    'export var i; for (var i = 0; i < 3; i++) i;',
    'export let x = 0; for (x of [1, 2]) x;',
  ];
  for (const lib of cases) {
    const { native, live } = await both(t, { 'a.js': lib, 'main.js': 'import * as a from "./a.js"; export const result = { ...a };' });
    assert.deepEqual(summary(live), summary(native), lib);
  }
});

test('import() of an absolute URL: a module of the program by its file URL is the same instance; a package or a file elsewhere loads as in Node', async (t) => {
  const outside = tempDir(t);
  writeFiles(outside, { 'package.json': '{"type":"module"}', 'x.js': "export default 'outside';" });
  const { native, live } = await both(t, {
    'b.js': "export const evaluated = (globalThis.bEvaluated = (globalThis.bEvaluated ?? 0) + 1);",
    '50% é [x].js': "export default 'escaped';",
    'node_modules/pkg/package.json': '{"name":"pkg","type":"module","exports":"./index.js"}',
    'node_modules/pkg/index.js': "export default 'package';",
    'data.txt': 'not a module',
    'main.js': `
      import pkgStatic from 'pkg';
      const relative = await import('./b.js');
      const byUrl = await import(new URL('./b.js', import.meta.url).href);
      const byUrlObject = await import(new URL('./b.js', import.meta.url));
      const byResolve = await import(import.meta.resolve('./b.js'));
      const escaped = await import(new URL('./50%25%20%C3%A9%20%5Bx%5D.js', import.meta.url).href);
      const escapedOtherwise = await import(new URL('./50%25 é [x].js', import.meta.url).href);
      const pkg = await import(import.meta.resolve('pkg'));
      const missing = await import(new URL('./nope.js', import.meta.url).href).then(() => 'found', (error) => error.code);
      const notModule = import.meta.resolve(new URL('./data.txt?x=1', import.meta.url).href).endsWith('/data.txt?x=1');
      const elsewhere = await import(${JSON.stringify(`${pathToFileURL(outside).href}/x.js`)});
      export const result = [relative === byUrl, byUrl === byUrlObject, byResolve === relative, escaped.default, escaped === escapedOtherwise, pkg.default, pkg.default === pkgStatic, missing, notModule, elsewhere.default];`,
  });
  assert.ok(native.ok, JSON.stringify(native));
  assert.deepEqual(summary(native), { ok: true, result: [true, true, true, 'escaped', true, 'package', true, 'ERR_MODULE_NOT_FOUND', true, 'outside'] });
  assert.deepEqual(summary(live), summary(native));
});

test('import() of a module of the program with a query or a fragment is refused, saying why (in Node, another instance of it)', async (t) => {
  const { live } = await both(t, {
    'b.js': 'export const b = 1;',
    'main.js': "export const result = await Promise.all(['?v=2', '#top'].map((suffix) => import(new URL('./b.js' + suffix, import.meta.url).href).then(() => 'loaded', (error) => [error.code, /query or a fragment/.test(error.message)])));",
  });
  assert.deepEqual(summary(live), { ok: true, result: [['ERR_MODULE_NOT_FOUND', true], ['ERR_MODULE_NOT_FOUND', true]] });
});

// The module format keeps ES module semantics: these tests build real folders and evaluate the
// blobs with the minimal linker in helpers/evaluate.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SnapshotBuilder } from '../src/build/index.ts';
import { evaluator } from './helpers/runtime.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';

function build(t: Parameters<typeof tempDir>[0], files: Record<string, string>) {
  const dir = tempDir(t);
  writeFiles(dir, files);
  return new SnapshotBuilder(dir).build().content;
}

test('module scope is ES module scope: strict, no this, no CommonJS names', async (t) => {
  const content = build(t, {
    'probe.js': `
      export const probes = {
        strict: (function () { return this === undefined; })(),
        thisValue: typeof this,
        require: typeof require, module: typeof module, exports: typeof exports,
        filename: typeof __filename, dirname: typeof __dirname,
      };
      let threw = false;
      try { undeclared = 1; } catch (error) { threw = error instanceof ReferenceError; }
      export const sloppyAssignThrows = threw;
    `,
  });
  const ns = await evaluator(content).run('probe.js');
  assert.deepEqual(ns.probes, { strict: true, thisValue: 'undefined', require: 'undefined', module: 'undefined', exports: 'undefined', filename: 'undefined', dirname: 'undefined' });
  assert.equal(ns.sloppyAssignThrows, true);
});

test('imports are live bindings, shadowing locals are left alone, defaults and namespaces work', async (t) => {
  const content = build(t, {
    'counter.ts': 'export let count: number = 0; export function inc(): void { count++; } export default function named() { return "d"; }',
    'main.ts': `
      import def, { count, inc } from './counter.js';
      import * as ns from './counter';
      function shadow(count: number) { return count; }
      export const before = count;
      inc(); inc();
      export const after = count;
      export const viaNs = ns.count;
      export const shadowed = shadow(41);
      export const objectShorthand = { count };
      export const defaultName = def.name + def();
    `,
  });
  const ns = await evaluator(content).run('main.ts');
  assert.equal(ns.before, 0);
  assert.equal(ns.after, 2);
  assert.equal(ns.viaNs, 2);
  assert.equal(ns.shadowed, 41);
  assert.deepEqual(ns.objectShorthand, { count: 2 });
  assert.equal(ns.defaultName, 'namedd');
});

test('anonymous default exports are named "default"; export * and export * as ns re-export', async (t) => {
  const content = build(t, {
    'a.js': 'export const x = 1; export const y = 2; export default 9;',
    'f.js': 'export default function () { return 1; }',
    'c.js': 'export default class { }',
    'main.js': `
      export * from './a.js';
      export * as all from './a.js';
      export { default as f } from './f.js';
      export { default as C } from './c.js';
    `,
  });
  const ns = await evaluator(content).run('main.js');
  assert.equal(ns.x, 1);
  assert.equal(ns.y, 2);
  assert.equal('default' in ns, false, 'export * does not re-export default');
  assert.equal((ns.all as Record<string, unknown>).default, 9);
  assert.equal((ns.f as () => number).name, 'default');
  assert.equal((ns.C as { name: string }).name, 'default');
});

test('cycles: hoisted functions are callable before evaluation, let bindings are in their TDZ', async (t) => {
  const content = build(t, {
    'a.js': `import { fromB } from './b.js'; export function hoisted() { return 'a'; } export let late = 1; export const seen = fromB;`,
    'b.js': `
      import { hoisted, late } from './a.js';
      let tdz = 'none';
      try { late; } catch (error) { tdz = error.name; }
      export const fromB = hoisted() + ':' + tdz;
    `,
  });
  const ns = await evaluator(content).run('a.js');
  assert.equal(ns.seen, 'a:ReferenceError');
});

test('top-level await makes the module async and is marked in the manifest', async (t) => {
  const content = build(t, {
    'tla.js': 'export const v = await Promise.resolve(5);',
    'sync.js': 'export const f = async () => { await 1; };',
  });
  assert.equal(content.modules['tla.js']!.tla, true);
  assert.equal(content.modules['sync.js']!.tla, false);
  const ns = await evaluator(content).run('tla.js');
  assert.equal(ns.v, 5);
});

test('import.meta and dynamic import() go through the module context', async (t) => {
  const content = build(t, {
    'main.js': `export const url = import.meta.url; export const lazy = (await import('./lazy.js')).value;`,
    'lazy.js': 'export const value = "loaded";',
  });
  const record = content.modules['main.js']!;
  assert.deepEqual(record.imports.map((entry) => [entry.specifier, entry.dynamic, entry.kind]), [['./lazy.js', true, 'module']]);
  const ns = await evaluator(content).run('main.js');
  assert.equal(ns.url, 'livemod:///main.js');
  assert.equal(ns.lazy, 'loaded');
});

test('externals: node builtins are imported natively', async (t) => {
  const content = build(t, { 'main.ts': `import { join } from 'node:path'; import * as os from 'node:os'; export const joined = join('a', 'b'); export const eol = os.EOL;` });
  const ns = await evaluator(content).run('main.ts');
  assert.equal(ns.joined, 'a/b');
  assert.equal(ns.eol, '\n');
});

test('JSON modules export their value as default', async (t) => {
  const content = build(t, { 'data.json': '{"a": [1, 2]}', 'main.js': `import data from './data.json' with { type: 'json' }; export const a = data.a;` });
  const ns = await evaluator(content).run('main.js');
  assert.deepEqual(ns.a, [1, 2]);
});

// Lazy properties: `lazyProperty` and the `@lazy` standard decorator (compiled here by
// TypeScript itself, as a project using tsc would compile it; Node 24 does not run decorators).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { lazy, lazyProperty } from '../src/lazy-property.ts';
import { tempDir } from './helpers/fs.ts';

test('lazyProperty: computed once per instance at the first read, then a plain own data property', () => {
  let computed = 0;
  class Repo {
    rows = [3, 1, 2];
  }
  lazyProperty(Repo.prototype, 'sorted', function (this: Repo) {
    computed += 1;
    return [...this.rows].sort();
  });
  const a = new Repo() as Repo & { sorted: number[] };
  const b = new Repo() as Repo & { sorted: number[] };
  assert.equal(computed, 0, 'nothing computed before a read');
  assert.deepEqual(a.sorted, [1, 2, 3]);
  assert.equal(a.sorted, a.sorted, 'the same value, not recomputed');
  assert.equal(computed, 1);
  const own = Object.getOwnPropertyDescriptor(a, 'sorted')!;
  assert.equal(typeof own.get, 'undefined', 'an own data property now');
  assert.deepEqual(own.value, [1, 2, 3]);
  assert.equal(Object.hasOwn(b, 'sorted'), false, 'other instances are untouched');
  void b.sorted;
  assert.equal(computed, 2, 'once per instance');
});

test('@lazy, as tsc compiles standard decorators: once per instance, then an own property; misuse is a TypeError', async (t) => {
  const dir = tempDir(t);
  const source = `import { lazy } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, '..', 'src', 'lazy-property.ts')).href)};
    export let computed = 0;
    export class Report { constructor(public rows: number[]) {} @lazy get total(): number { computed += 1; return this.rows.reduce((a, b) => a + b, 0); } }
    export function misuse() { class Bad { @lazy static get s() { return 1; } } return Bad; }`;
  const output = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, experimentalDecorators: false } }).outputText;
  const file = join(dir, 'report.mjs');
  writeFileSync(file, output);
  const module = (await import(pathToFileURL(file).href)) as { Report: new (rows: number[]) => { total: number }; computed: number; misuse: () => unknown };
  const report = new module.Report([1, 2, 3]);
  assert.equal(module.computed, 0);
  assert.equal(report.total, 6);
  assert.equal(report.total, 6);
  assert.equal(module.computed, 1);
  assert.equal(Object.getOwnPropertyDescriptor(report, 'total')!.value, 6);
  assert.throws(() => module.misuse(), /@lazy decorates an instance getter/);
  assert.equal(typeof lazy, 'function');
});

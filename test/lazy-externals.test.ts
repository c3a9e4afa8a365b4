// Lazy packages (lazy mode `all`, `livemod run --lazy-mode all`): a package imported by name or
// default loads at the first read of one of its bindings, synchronously, as `import` would load
// it — the same resolution (the `import` condition), the same module instance, live bindings.
// The packages here are real folders in a node_modules the program resolves from.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cli } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { registryFor } from './helpers/runtime.ts';

type Log = string[];
const log = (): Log => ((globalThis as { pkgLog?: Log }).pkgLog ??= []);
const reset = (): Log => ((globalThis as { pkgLog?: Log }).pkgLog = []);

const PACKAGES = {
  // CommonJS, with an ESM entry for `import` beside it: lazy loading must take the `import` one.
  'node_modules/dual/package.json': JSON.stringify({ name: 'dual', exports: { import: './esm.mjs', require: './cjs.cjs' } }),
  'node_modules/dual/esm.mjs': "(globalThis.pkgLog ??= []).push('dual esm'); export const flavour = 'esm'; export default 'dual default';",
  'node_modules/dual/cjs.cjs': "(globalThis.pkgLog ??= []).push('dual cjs'); exports.flavour = 'cjs';",
  'node_modules/counter/package.json': JSON.stringify({ name: 'counter', type: 'module', exports: './index.js' }),
  'node_modules/counter/index.js': "(globalThis.pkgLog ??= []).push('counter'); export let count = 0; export function inc() { count += 1; }",
  'node_modules/plain-cjs/package.json': JSON.stringify({ name: 'plain-cjs', main: 'index.js' }),
  'node_modules/plain-cjs/index.js': "(globalThis.pkgLog ??= []).push('plain-cjs'); exports.answer = 42; exports.greet = (name) => 'hi ' + name;",
  'node_modules/awaits/package.json': JSON.stringify({ name: 'awaits', type: 'module', exports: './index.js' }),
  'node_modules/awaits/index.js': "await Promise.resolve(); export const ready = true;",
};

const PROGRAM = {
  'main.ts': `import { flavour } from 'dual';
import dualDefault from 'dual';
import { count, inc } from 'counter';
import plain, { answer } from 'plain-cjs';
import { readFileSync } from 'node:fs';
export const atStart = [...((globalThis as { pkgLog?: string[] }).pkgLog ?? [])];
export function useDual() { return [flavour, dualDefault]; }
export function useCounter() { inc(); inc(); return count; }
export function usePlain() { return [answer, plain.greet('x')]; }
export function useFs() { return typeof readFileSync; }`,
};

test('lazy all: packages imported by name or default load at the first read, with import semantics and live bindings', async (t) => {
  const { run } = registryFor(t, PROGRAM, PACKAGES, { lazy: 'all' });
  reset();
  const ns = await run('main.ts');
  assert.deepEqual(ns.atStart, [], 'no package ran with its importer');
  assert.deepEqual((ns.useDual as () => unknown[])(), ['esm', 'dual default'], 'the `import` entry, not the `require` one');
  assert.deepEqual(log(), ['dual esm']);
  assert.equal((ns.useCounter as () => number)(), 2, 'a live binding: the count read after inc() is the new one');
  assert.deepEqual((ns.usePlain as () => unknown[])(), [42, 'hi x'], 'CommonJS: named exports and default as import gives them');
  assert.equal((ns.useFs as () => string)(), 'function');
  assert.deepEqual(log(), ['dual esm', 'counter', 'plain-cjs'], 'each package ran once, at its first read');
});

test('lazy all: the module instance is the one import() gives, and lazy normal leaves packages eager', async (t) => {
  const lazyAll = registryFor(t, { ...PROGRAM, 'dyn.ts': "export const load = () => import('counter');" }, PACKAGES, { lazy: 'all' });
  reset();
  const ns = await lazyAll.run('main.ts');
  (ns.useCounter as () => number)();
  const dyn = await lazyAll.run('dyn.ts');
  const imported = (await (dyn.load as () => Promise<{ count: number }>)());
  assert.equal(imported.count, 2, 'import() sees the count the lazy binding changed: one instance');
  assert.deepEqual(log(), ['counter']);

  const normal = registryFor(t, PROGRAM, PACKAGES, { lazy: 'normal' });
  reset();
  const eager = await normal.run('main.ts');
  assert.deepEqual((eager.atStart as string[]).sort(), ['counter', 'dual esm', 'plain-cjs'], 'lazy normal: packages load with their importer');
});

test('lazy all: a missing package or export fails at the first read, naming both sites, and the next read tries again', async (t) => {
  const files = {
    'main.ts': "import { nothere } from 'counter';\nimport { x } from 'absent-pkg';\nexport const readMissing = () => nothere;\nexport const readAbsent = () => x;",
  };
  const { run } = registryFor(t, files, PACKAGES, { lazy: 'all' });
  const ns = await run('main.ts');
  assert.throws(() => (ns.readMissing as () => unknown)(), (error: Error & { code?: string; cause?: Error }) => {
    assert.equal(error.code, 'ERR_LIVEMOD_LAZY_LOAD');
    assert.match(error.message, /lazy import of package counter \(imported by main\.ts at file:.*main\.ts:1:\d+\) failed at its first read at .*main\.ts:3:\d+/);
    assert.match(error.message, /nothere/);
    return true;
  });
  assert.throws(() => (ns.readAbsent as () => unknown)(), (error: Error & { code?: string; cause?: Error & { code?: string } }) => {
    assert.equal(error.code, 'ERR_LIVEMOD_LAZY_LOAD');
    assert.match(error.message, /absent-pkg/);
    assert.equal(error.cause?.code, 'ERR_MODULE_NOT_FOUND');
    return true;
  });
  // Tried again: still missing, the same clear error (nothing half-loaded in between).
  assert.throws(() => (ns.readAbsent as () => unknown)(), /ERR_LIVEMOD_LAZY_LOAD|absent-pkg/);
});

test('lazy all: an assignment to a lazy package import throws before and after the load; an importer naming a missing export fails its read though another importer loaded the package', async (t) => {
  const files = {
    'a.js': "import { count } from 'counter';\nexport const read = () => count;\nexport const write = () => { count = 5; };",
    'b.js': "import { count, nothere } from 'counter';\nexport const readCount = () => count;\nexport const readMissing = () => nothere;",
  };
  const { run } = registryFor(t, files, PACKAGES, { lazy: 'all' });
  reset();
  const a = await run('a.js');
  const b = await run('b.js');
  assert.throws(() => (a.write as () => void)(), TypeError, 'before the load');
  assert.equal((a.read as () => number)(), 0);
  assert.throws(() => (a.write as () => void)(), TypeError, 'after the load, as on the namespace');
  assert.equal((a.read as () => number)(), 0, 'the package binding, not a shadowing copy');
  assert.throws(() => (b.readMissing as () => unknown)(), (error: Error & { code?: string }) => error.code === 'ERR_LIVEMOD_LAZY_LOAD' && /nothere/.test(error.message));
  assert.deepEqual(log(), ['counter'], 'loaded once');
});

test('lazy all keeps eager: namespace imports of packages, eager rules, attributes; a package with top-level await fails its read with the fix', async (t) => {
  const files = {
    'main.ts': "import * as whole from 'counter';\nimport { answer } from 'plain-cjs';\nimport { ready } from 'awaits';\nexport const atStart = [...((globalThis as { pkgLog?: string[] }).pkgLog ?? [])];\nexport const names = () => Object.keys(whole);\nexport const readReady = () => ready;\nexport const readAnswer = () => answer;",
  };
  const { run } = registryFor(t, files, PACKAGES, { lazy: 'all', eager: { modules: ['plain-cjs'] } });
  reset();
  const ns = await run('main.ts');
  assert.deepEqual((ns.atStart as string[]).sort(), ['counter', 'plain-cjs'], 'the namespace import and the eager rule load at start');
  assert.equal((ns.readAnswer as () => number)(), 42);
  assert.throws(() => (ns.readReady as () => unknown)(), (error: Error & { code?: string }) => error.code === 'ERR_LIVEMOD_LAZY_LOAD' && /top-level await/.test(error.message) && /eager rule/.test(error.message));
});

test('run --lazy-mode: all runs lazily; a mode that is not one is a usage error', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { ...PACKAGES, 'package.json': '{"type":"module"}', 'main.js': "import { answer } from 'plain-cjs';\nconsole.log('start', JSON.stringify(globalThis.pkgLog ?? []));\nconsole.log('answer', answer, JSON.stringify(globalThis.pkgLog));" });
  const lazy = cli(['run', '--lazy-mode', 'all', `${dir}/main.js`], { cwd: dir });
  assert.equal(lazy.status, 0, lazy.stderr);
  assert.equal(lazy.stdout.trim(), 'start []\nanswer 42 ["plain-cjs"]');
  const eager = cli(['run', `${dir}/main.js`], { cwd: dir });
  assert.equal(eager.stdout.trim().split('\n')[0], 'start ["plain-cjs"]');
  const bad = cli(['run', '--lazy-mode', 'sometimes', `${dir}/main.js`], { cwd: dir });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--lazy-mode "sometimes" is not a mode; give normal, all or none/);
});

test('livemod.config.json lazy "all" makes packages lazy; the flag overrides it', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { ...PACKAGES, 'package.json': '{"type":"module"}', 'livemod.config.json': '{"lazy":"all"}', 'main.js': "import { answer } from 'plain-cjs';\nconsole.log('start', JSON.stringify(globalThis.pkgLog ?? []));\nconsole.log('answer', answer);" });
  const fromConfig = cli(['run', './main.js'], { cwd: dir });
  assert.equal(fromConfig.status, 0, fromConfig.stderr);
  assert.equal(fromConfig.stdout.trim().split('\n')[0], 'start []');
  const overridden = cli(['run', '--lazy-mode', 'none', './main.js'], { cwd: dir });
  assert.equal(overridden.stdout.trim().split('\n')[0], 'start ["plain-cjs"]');
});

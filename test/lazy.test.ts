// Lazy mode (`livemod run --lazy`, RegistryOptions.lazy 'normal'): a live module imported by
// name, default or namespace is evaluated at the first read of one of its bindings. Always
// eager: side-effect imports, re-exports, graphs with top-level await.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cli } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { registryFor } from './helpers/runtime.ts';

const LOG = "export const log: string[] = ((globalThis as { lazyLog?: string[] }).lazyLog ??= []);";
const reset = (): string[] => ((globalThis as { lazyLog?: string[] }).lazyLog = []);

const TREE = {
  'log.ts': LOG,
  'heavy.ts': "import { log } from './log.ts'; log.push('heavy'); export const value = 21; export function twice(x: number) { return 2 * x; } export default 'd';",
  'other.ts': "import { log } from './log.ts'; log.push('other'); export const unused = 1;",
  'main.ts': `import { log } from './log.ts';
    import { twice, value } from './heavy.ts';
    import * as heavy from './heavy.ts';
    import { unused } from './other.ts';
    log.push('main');
    export const before = [...log];
    export function use() { return [twice(value), heavy.default]; }
    export function never() { return unused; }`,
};

test('lazy: an imported module runs at the first read of a binding, once; one never read never runs', async (t) => {
  const { run } = registryFor(t, TREE, {}, { lazy: 'normal' });
  const log = reset();
  const ns = await run('main.ts');
  // log.ts is read by main's own first statement, so it runs then; heavy and other wait.
  assert.deepEqual(ns.before, ['main']);
  assert.deepEqual((ns.use as () => unknown[])(), [42, 'd']);
  assert.deepEqual((ns.use as () => unknown[])(), [42, 'd']);
  assert.deepEqual(log, ['main', 'heavy'], 'heavy ran at its first read, once; other never');
});

test('without lazy mode the same tree runs every import first, in order', async (t) => {
  const { run } = registryFor(t, TREE);
  reset();
  const ns = await run('main.ts');
  assert.deepEqual(ns.before, ['heavy', 'other', 'main']);
});

test('lazy: side-effect imports and top-level-await graphs stay eager; a re-export runs with its hub', async (t) => {
  const { run } = registryFor(t, {
    'log.ts': LOG,
    'polyfill.ts': "import { log } from './log.ts'; log.push('polyfill');",
    'tla.ts': "import { log } from './log.ts'; await Promise.resolve(); log.push('tla'); export const t = 1;",
    'above-tla.ts': "import { log } from './log.ts'; import { t } from './tla.ts'; log.push('above-tla'); export const a = t;",
    'source.ts': "import { log } from './log.ts'; log.push('source'); export let s = 's';",
    'hub.ts': "export { s } from './source.ts';",
    'main.ts': `import { log } from './log.ts'; import './polyfill.ts'; import { a } from './above-tla.ts'; import { s } from './hub.ts';
      log.push('main'); export const before = [...log]; export const values = () => [a, s];`,
  }, {}, { lazy: 'normal' });
  const log = reset();
  const ns = await run('main.ts');
  assert.deepEqual(ns.before, ['polyfill', 'tla', 'above-tla', 'main']);
  // The hub is lazy; what it re-exports runs with it, at the first read of `s`.
  assert.deepEqual((ns.values as () => unknown[])(), [1, 's']);
  assert.deepEqual(log, ['polyfill', 'tla', 'above-tla', 'main', 'source']);
});

test('lazy: a module evaluated by an eager importer first is not run again; a cycle still links', async (t) => {
  const { run } = registryFor(t, {
    'log.ts': LOG,
    'shared.ts': "import { log } from './log.ts'; log.push('shared'); export function f() { return 'f'; }",
    'eager.ts': "import './shared.ts'; import { log } from './log.ts'; log.push('eager');",
    'a.ts': "import { b } from './b.ts'; export function a() { return 'a' + b(); }",
    'b.ts': "import { a } from './a.ts'; export function b() { return 'b'; } export function ab() { return a(); }",
    'main.ts': `import { f } from './shared.ts'; import './eager.ts'; import { ab } from './b.ts';
      export const result = () => [f(), ab()];`,
  }, {}, { lazy: 'normal' });
  const log = reset();
  const ns = await run('main.ts');
  assert.deepEqual((ns.result as () => unknown[])(), ['f', 'ab']);
  assert.deepEqual(log, ['shared', 'eager']);
});

test('livemod run --lazy', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'heavy.ts': "console.log('heavy'); export const answer = 42;",
    'main.ts': "import { answer } from './heavy.ts';\nconsole.log('main');\nconsole.log(`answer ${answer}`);",
  });
  const lazy = cli(['run', '--lazy', `${dir}/main.ts`, '--cache', tempDir(t)]);
  assert.equal(lazy.status, 0, lazy.stderr);
  assert.deepEqual(lazy.stdout.trim().split('\n'), ['main', 'heavy', 'answer 42']);
  const eager = cli(['run', `${dir}/main.ts`, '--cache', tempDir(t)]);
  assert.deepEqual(eager.stdout.trim().split('\n'), ['heavy', 'main', 'answer 42']);
});

test('the load report: never loaded, loaded at first access (importer, site, time, heap), eager and why, failed', async (t) => {
  const { run, registry } = registryFor(t, {
    'log.ts': LOG,
    'heavy.ts': "export const value = 21;",
    'unread.ts': "export const nope = 0;",
    'polyfill.ts': "(globalThis as { polyfilled?: boolean }).polyfilled = true;",
    'vendor/kept.ts': "export const kept = 1;",
    'bad.ts': "throw new RangeError('bad module'); export const b = 1;",
    'main.ts': `import './polyfill.ts';
      import { value } from './heavy.ts';
      import { nope } from './unread.ts';
      import { kept } from './vendor/kept.ts';
      import { b } from './bad.ts';
      export function read() { return value; }
      export function fail() { try { return b; } catch (error) { return error; } }
      export const never = () => [nope, kept];`,
  }, {}, { lazy: 'normal', eager: { prefixes: ['./vendor/'] }, report: true });
  const ns = await run('main.ts');
  assert.equal((ns.read as () => number)(), 21);
  const failure = (ns.fail as () => Error & { code?: string; cause?: unknown })();
  assert.equal(failure.code, 'ERR_LIVEMOD_LAZY_LOAD');
  assert.ok(failure.cause instanceof RangeError);
  const report = new Map(registry.loadReport().map((record) => [record.path, record]));
  assert.deepEqual(report.get('main.ts'), { path: 'main.ts', how: 'entry', loaded: true });
  assert.equal(report.get('unread.ts')!.loaded, false);
  assert.equal(report.get('unread.ts')!.how, 'lazy');
  const heavy = report.get('heavy.ts')!;
  assert.equal(heavy.importer, 'main.ts');
  assert.match(heavy.accessSite!, /main\.ts:6:\d+$/, 'the read site, source-mapped');
  assert.ok(heavy.ms! >= 0 && typeof heavy.heapDelta === 'number');
  assert.deepEqual([report.get('polyfill.ts')!.reason, report.get('vendor/kept.ts')!.reason], ['side-effect import', 'eager rule: prefixes']);
  assert.match(report.get('bad.ts')!.error!, /^RangeError: bad module$/);
  assert.match(report.get('bad.ts')!.accessSite!, /main\.ts:7:\d+$/);
});

test('livemod run --report prints the report at exit; --json without --report is a usage error', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'heavy.ts': 'export const answer = 42;',
    'unread.ts': 'export const nope = 0;',
    'main.ts': "import { answer } from './heavy.ts';\nimport { nope } from './unread.ts';\nconsole.log(answer);\nexport const x = () => nope;",
  });
  const text = cli(['run', '--lazy', '--report', `${dir}/main.ts`, '--cache', tempDir(t)]);
  assert.equal(text.status, 0, text.stderr);
  assert.equal(text.stdout.trim(), '42');
  assert.match(text.stderr, /\[livemod report\] 3 modules: 1 loaded eagerly, 1 at first access, 1 never loaded, 0 failed/);
  assert.match(text.stderr, /never loaded:\n {2}unread\.ts \(lazy, imported by main\.ts\)/);
  assert.match(text.stderr, /heavy\.ts \(lazy, imported by main\.ts\) first read at .*main\.ts:3:\d+: [\d.]+ ms/);
  const json = cli(['run', '--lazy', '--report', '--json', `${dir}/main.ts`, '--cache', tempDir(t)]);
  const report = JSON.parse(json.stderr.trim().split('\n').at(-1)!) as { loadReport: { path: string; loaded: boolean }[] };
  assert.deepEqual(report.loadReport.map((record) => [record.path, record.loaded]), [['heavy.ts', true], ['main.ts', true], ['unread.ts', false]]);
  const bad = cli(['run', '--json', `${dir}/main.ts`]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--json goes with --report/);
});

test('lazy: a swap of a lazily imported module, read or never read, shows the new version at the next read', async (t) => {
  const { pathToFileURL } = await import('node:url');
  const { localSource } = await import('../src/client/local.ts');
  const { Registry } = await import('../src/runtime/index.ts');
  const dir = tempDir(t);
  writeFiles(dir, {
    'read.js': 'export const value = 1; import.meta.hot.accept();',
    'unread.js': 'export const value = 10; import.meta.hot.accept();',
    'main.js': "import { value as read } from './read.js'; import { value as unread } from './unread.js'; export const first = read; export const now = () => [read, unread];",
  });
  const registry = new Registry(localSource(dir), { externalsFrom: `${pathToFileURL(dir).href}/`, lazy: 'normal' });
  const ns = await registry.import('main.js');
  assert.equal(ns.first, 1);
  writeFiles(dir, { 'read.js': 'export const value = 2; import.meta.hot.accept();', 'unread.js': 'export const value = 20; import.meta.hot.accept();' });
  const result = await registry.swap(localSource(dir));
  assert.equal(result.status, 'applied');
  assert.deepEqual((ns.now as () => number[])(), [2, 20]);
});

test('lazy: a first read that fails says what, by whom and where, keeps nothing half-run, and the next read tries again', async (t) => {
  const { run } = registryFor(t, {
    'log.ts': LOG,
    'flaky-dep.ts': `import { log } from './log.ts';
      const state = globalThis as { flakyTries?: number };
      state.flakyTries = (state.flakyTries ?? 0) + 1;
      log.push('dep ' + state.flakyTries);
      if (state.flakyTries === 1) throw new RangeError('not ready yet');
      export const ready = 'ready';`,
    'flaky.ts': `import { log } from './log.ts'; import { ready } from './flaky-dep.ts'; log.push('flaky'); export const value = ready + '!';`,
    'main.ts': `import { value } from './flaky.ts';
      export function read() {
        return value;
      }`,
  }, {}, { lazy: 'normal' });
  const log = reset();
  delete (globalThis as { flakyTries?: number }).flakyTries;
  const ns = await run('main.ts');
  const read = ns.read as () => string;
  assert.throws(read, (error: Error & { code?: string; cause?: unknown }) => {
    assert.equal(error.code, 'ERR_LIVEMOD_LAZY_LOAD');
    // Both sites: the import (main.ts line 1, where './flaky.ts' is written) and the read (line 3).
    assert.match(error.message, /lazy import of flaky\.ts \(imported by main\.ts at file:.*main\.ts:1:\d+\) failed at its first read at .*main\.ts:3:\d+ \(its import of flaky-dep\.ts, read at .*flaky\.ts:1:\d+\): RangeError: not ready yet; the next read tries it again$/);
    assert.match(String((error as { details?: { importSite?: string } }).details?.importSite), /main\.ts:1:23$/);
    assert.ok(error.cause instanceof RangeError);
    return true;
  });
  // flaky.ts ran up to its first read of the (lazy) dependency, which threw.
  assert.deepEqual(log, ['flaky', 'dep 1']);
  // Both the module and the dependency that threw run again, from the start.
  assert.equal(read(), 'ready!');
  assert.deepEqual(log, ['flaky', 'dep 1', 'flaky', 'dep 2']);
  assert.equal(read(), 'ready!');
  assert.deepEqual(log, ['flaky', 'dep 1', 'flaky', 'dep 2'], 'once it ran, it is not run again');
});

test('import defer keeps the standard semantics: an evaluation error is the same error at every access', async (t) => {
  const { run } = registryFor(t, {
    'bad.ts': `const state = globalThis as { deferTries?: number }; state.deferTries = (state.deferTries ?? 0) + 1; throw new RangeError('bad ' + state.deferTries); export const b = 1;`,
    'main.ts': `import defer * as bad from './bad.ts';
      export function read() { try { return bad.b; } catch (error) { return error; } }`,
  });
  delete (globalThis as { deferTries?: number }).deferTries;
  const ns = await run('main.ts');
  const first = (ns.read as () => unknown)();
  assert.ok(first instanceof RangeError);
  assert.equal((first as Error).message, 'bad 1');
  assert.equal((ns.read as () => unknown)(), first, 'the same error object, not a new try');
});

test('lazy: a side-effect import that throws inside a lazy module runs again with it at the next read', async (t) => {
  const { run } = registryFor(t, {
    'log.ts': LOG,
    'side.ts': `import { log } from './log.ts';
      const state = globalThis as { sideTries?: number };
      state.sideTries = (state.sideTries ?? 0) + 1;
      log.push('side ' + state.sideTries);
      if (state.sideTries === 1) throw new Error('side effect failed');`,
    'lazy.ts': `import './side.ts'; import { log } from './log.ts'; log.push('lazy'); export const value = 7;`,
    'main.ts': `import { value } from './lazy.ts'; export const read = () => value;`,
  }, {}, { lazy: 'normal' });
  const log = reset();
  delete (globalThis as { sideTries?: number }).sideTries;
  const ns = await run('main.ts');
  assert.throws(ns.read as () => number, (error: Error & { code?: string; cause?: unknown }) => error.code === 'ERR_LIVEMOD_LAZY_LOAD' && (error.cause as Error).message === 'side effect failed');
  assert.deepEqual(log, ['side 1']);
  assert.equal((ns.read as () => number)(), 7);
  assert.deepEqual(log, ['side 1', 'side 2', 'lazy']);
});

test('lazy: after a failed first read, a lazy sibling made in the same pass is made again too, so nothing points at the dropped version', async (t) => {
  const { run, registry } = registryFor(t, {
    'log.ts': LOG,
    'side.ts': `import { log } from './log.ts';
      const state = globalThis as { siblingTries?: number };
      state.siblingTries = (state.siblingTries ?? 0) + 1;
      log.push('side ' + state.siblingTries);
      if (state.siblingTries === 1) throw new Error('side failed');`,
    'p.ts': `import './side.ts'; export const p = 'p';`,
    'l.ts': `import './side.ts'; import { p } from './p.ts'; export const l = 'l'; export const readP = () => p;`,
    'main.ts': `import { l, readP } from './l.ts'; export const readL = () => l; export const viaL = () => readP();`,
  }, {}, { lazy: 'normal', report: true });
  const log = reset();
  delete (globalThis as { siblingTries?: number }).siblingTries;
  const ns = await run('main.ts');
  assert.throws(ns.readL as () => string, (error: Error & { code?: string }) => error.code === 'ERR_LIVEMOD_LAZY_LOAD');
  assert.equal((ns.readL as () => string)(), 'l');
  assert.equal((ns.viaL as () => string)(), 'p');
  assert.deepEqual(log, ['side 1', 'side 2'], 'side ran once more, not once per importer');
  assert.ok(registry.loaded().includes('side.ts'));
  const report = new Map(registry.loadReport().map((record) => [record.path, record]));
  assert.equal(report.get('l.ts')!.loaded, true);
  assert.equal(report.get('l.ts')!.error, undefined, 'a retry that worked clears the failure');
});

test('lazy and import defer of one module: after a failed lazy read, the deferred namespace makes it again instead of failing inside livemod', async (t) => {
  const { run } = registryFor(t, {
    'dep.ts': `const state = globalThis as { mixedTries?: number }; state.mixedTries = (state.mixedTries ?? 0) + 1; if (state.mixedTries === 1) throw new RangeError('dep failed'); export const v = state.mixedTries;`,
    'a.ts': `import { v } from './dep.ts'; export const readV = () => v;`,
    'main.ts': `import { readV } from './a.ts'; import defer * as d from './dep.ts';
      export const lazyRead = () => readV();
      export const deferRead = () => d.v;`,
  }, {}, { lazy: 'normal' });
  delete (globalThis as { mixedTries?: number }).mixedTries;
  const ns = await run('main.ts');
  assert.throws(ns.lazyRead as () => number, (error: Error & { code?: string }) => error.code === 'ERR_LIVEMOD_LAZY_LOAD');
  assert.equal((ns.deferRead as () => number)(), 2);
  assert.equal((ns.lazyRead as () => number)(), 2);
});

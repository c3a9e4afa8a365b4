// `import defer * as ns` and `import.defer()` (TC39 Stage 3) in live modules, on Node 24 where
// Node itself cannot run them: evaluation waits for the first touch of the namespace. The
// proposal's own tests run through the test262 runner (test/test262/livemod-features.txt).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cli } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { registryFor } from './helpers/runtime.ts';

const LOG = "export const log: string[] = ((globalThis as { deferLog?: string[] }).deferLog ??= []);";

test('a deferred module runs at the first string-key touch, once; symbols and then do not touch it', async (t) => {
  const { run } = registryFor(t, {
    'log.ts': LOG,
    'heavy.ts': "import { log } from './log.ts'; log.push('heavy'); export const value: number = 42; export function twice(x: number) { return 2 * x; }",
    'main.ts': `import { log } from './log.ts';
      import defer * as heavy from './heavy.ts';
      import * as eager from './log.ts';
      log.push('main');
      export const before = [...log];
      export const tag = Object.prototype.toString.call(heavy);
      export const untouched = [heavy[Symbol.iterator], (heavy as unknown as { then?: unknown }).then, Reflect.isExtensible(heavy), Reflect.getPrototypeOf(heavy)];
      export const afterSymbols = [...log];
      export const read = heavy.value + heavy.twice(1);
      export const after = [...log];
      export const keys = Reflect.ownKeys(heavy);
      export const distinct = (heavy as object) !== (eager as object);`,
  });
  (globalThis as { deferLog?: string[] }).deferLog = [];
  const ns = await run('main.ts');
  assert.deepEqual(ns.before, ['main'], 'not evaluated with its importer');
  assert.equal(ns.tag, '[object Deferred Module]');
  assert.deepEqual(ns.untouched, [undefined, undefined, false, null]);
  assert.deepEqual(ns.afterSymbols, ['main'], 'symbol keys, then, isExtensible and getPrototypeOf do not evaluate it');
  assert.equal(ns.read, 44);
  assert.deepEqual(ns.after, ['main', 'heavy'], 'evaluated at the first read, once');
  assert.deepEqual(ns.keys, ['twice', 'value', Symbol.toStringTag]);
  assert.equal(ns.distinct, true);
});

test('a module with top-level await below a deferred import is evaluated eagerly; the rest waits', async (t) => {
  const { run } = registryFor(t, {
    'log.ts': LOG,
    'slow.ts': "import { log } from './log.ts'; await Promise.resolve(); log.push('slow'); export const ready = true;",
    'lazy.ts': "import { log } from './log.ts'; import { ready } from './slow.ts'; log.push('lazy'); export const seen = ready;",
    'main.ts': "import { log } from './log.ts'; import defer * as lazy from './lazy.ts'; log.push('main'); export const before = [...log]; export function touch() { return lazy.seen; }",
  });
  (globalThis as { deferLog?: string[] }).deferLog = [];
  const ns = await run('main.ts');
  assert.deepEqual(ns.before, ['slow', 'main'], 'the async dependency ran before main; lazy.ts did not');
  assert.equal((ns.touch as () => boolean)(), true);
  assert.deepEqual((globalThis as { deferLog?: string[] }).deferLog, ['slow', 'main', 'lazy']);
});

test('an evaluation error is thrown at the touch, and again (the same error) at the next', async (t) => {
  const { run } = registryFor(t, {
    'bad.ts': "throw new RangeError('bad module'); export const x = 1;",
    'main.ts': `import defer * as bad from './bad.ts';
      export function touch() { try { return bad.x; } catch (error) { return error; } }`,
  });
  const ns = await run('main.ts');
  const touch = ns.touch as () => unknown;
  const first = touch();
  assert.ok(first instanceof RangeError && first.message === 'bad module');
  assert.equal(touch(), first, 'the cached error, not a second evaluation');
});

test('a deferred namespace touched while its module is evaluating is a TypeError', async (t) => {
  const { run } = registryFor(t, {
    'self.ts': `import defer * as self from './self.ts';
      let caught: unknown; try { void (self as { x?: unknown }).x; } catch (error) { caught = error; }
      export const result = caught instanceof TypeError ? 'TypeError' : String(caught); export const x = 1;`,
    'main.ts': "import { result } from './self.ts'; export { result };",
  });
  assert.equal((await run('main.ts')).result, 'TypeError');
});

test('import.defer() loads and links at once and evaluates at the first touch; re-exported deferred namespaces stay deferred', async (t) => {
  const { run } = registryFor(t, {
    'log.ts': LOG,
    'dep.ts': "import { log } from './log.ts'; log.push('dep'); export const n = 7;",
    'hub.ts': "import defer * as dep from './dep.ts'; export { dep };",
    'main.ts': `import { log } from './log.ts'; import { dep as viaHub } from './hub.ts';
      export async function go() {
        const ns = await import.defer('./dep.ts');
        const before = [...log];
        return { before, same: ns === viaHub, n: ns.n, after: [...log] };
      }`,
  });
  (globalThis as { deferLog?: string[] }).deferLog = [];
  const ns = await run('main.ts');
  const outcome = await (ns.go as () => Promise<{ before: string[]; same: boolean; n: number; after: string[] }>)();
  assert.deepEqual(outcome, { before: [], same: true, n: 7, after: ['dep'] });
});

test('livemod run of a folder with import defer, on the Node that runs the suite', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'heavy.ts': "console.log('heavy evaluated'); export const answer = 42;",
    'main.ts': "import defer * as heavy from './heavy.ts';\nconsole.log('main first');\nconsole.log(`answer ${heavy.answer}`);",
  });
  const result = cli(['run', `${dir}/main.ts`, '--cache', tempDir(t)]);
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(result.stdout.trim().split('\n'), ['main first', 'heavy evaluated', 'answer 42']);
});

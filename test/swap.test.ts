// Hot swap at the registry: a real local build, edited on disk, rebuilt and swapped in place.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { localSource } from '../src/client/local.ts';
import { Registry, type Namespace, type SwapOptions, type SwapResult } from '../src/runtime/index.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';

function liveFolder(t: Parameters<typeof tempDir>[0], files: Record<string, string>): { registry: Registry; dir: string; edit(files: Record<string, string | null>, options?: SwapOptions): Promise<SwapResult>; run(path: string): Promise<Namespace> } {
  const dir = tempDir(t);
  writeFiles(dir, files);
  const registry = new Registry(localSource(dir), { externalsFrom: `${pathToFileURL(dir).href}/` });
  return {
    registry,
    dir,
    run: (path) => registry.import(path),
    edit(changes, options = {}) {
      for (const [path, text] of Object.entries(changes)) {
        if (text === null) rmSync(join(dir, path));
        else writeFiles(dir, { [path]: text });
      }
      return registry.swap(localSource(dir), options);
    },
  };
}

const LOG = { 'log.js': 'export const log = [];' };

test('a self-accepting module takes its new version in place: importers see new bindings, state in hot.data survives, the old dispose runs once after', async (t) => {
  const counter = (step: number) => `
    import { log } from './log.js';
    const state = import.meta.hot.data.state ??= { count: 0 };
    export function bump() { state.count += ${step}; return state.count; }
    export const version = ${step};
    export const url = import.meta.url;
    import.meta.hot.accept((next) => log.push('accepted ' + next.version));
    import.meta.hot.dispose((data) => log.push('disposed ${step} with count ' + data.state.count));
    log.push('evaluated ${step}');`;
  const app = liveFolder(t, { ...LOG, 'counter.js': counter(1), 'main.js': 'import { bump, version } from "./counter.js"; export const read = () => [version, bump()];' });
  const main = await app.run('main.js');
  const read = main.read as () => [number, number];
  assert.deepEqual(read(), [1, 1]);
  assert.deepEqual(read(), [1, 2]);
  const result = await app.edit({ 'counter.js': counter(10) });
  assert.equal(result.status, 'applied', String(result.error));
  assert.deepEqual(result.reran, ['counter.js']);
  assert.deepEqual(read(), [10, 12], 'the importer reads the new version, and the state carried over');
  const { log } = await app.run('log.js') as { log: string[] };
  assert.deepEqual(log, ['evaluated 1', 'evaluated 10', 'accepted 10', 'disposed 1 with count 2']);
  const counterNs = await app.run('counter.js');
  assert.match(counterNs.url as string, /counter\.js\?v=[0-9a-f]{12}$/);
});

test('an importer that accepts a dependency gets its new namespace and is not re-run', async (t) => {
  const app = liveFolder(t, {
    ...LOG,
    'dep.js': 'export const value = "one";',
    'main.js': `import { log } from './log.js'; import { value } from './dep.js';
      log.push('main ran');
      import.meta.hot.accept('./dep.js', (next) => log.push('main got ' + next.value + ', binding reads ' + value));
      export const read = () => value;`,
  });
  const main = await app.run('main.js');
  const result = await app.edit({ 'dep.js': 'export const value = "two";' });
  assert.equal(result.status, 'applied', String(result.error));
  assert.deepEqual(result.reran, ['dep.js']);
  assert.equal((main.read as () => string)(), 'two');
  const { log } = await app.run('log.js') as { log: string[] };
  assert.deepEqual(log, ['main ran', 'main got two, binding reads two']);
});

test('a change nothing accepts re-runs the chain up to the entry in place; untouched modules keep their state', async (t) => {
  const app = liveFolder(t, {
    ...LOG,
    'store.js': 'export const items = []; export let loads = 0; loads++;',
    'view.js': 'export const label = "v1";',
    'main.js': `import { log } from './log.js'; import { items } from './store.js'; import { label } from './view.js';
      items.push(label); log.push('main ' + label + ' sees ' + items.length);`,
  });
  await app.run('main.js');
  const result = await app.edit({ 'view.js': 'export const label = "v2";' });
  assert.equal(result.status, 'applied', String(result.error));
  assert.deepEqual(result.reran, ['main.js', 'view.js']);
  assert.deepEqual(result.unaccepted, ['main.js']);
  const { log } = await app.run('log.js') as { log: string[] };
  assert.deepEqual(log, ['main v1 sees 1', 'main v2 sees 2']);
  assert.equal((await app.run('store.js')).loads, 1, 'store.js was not re-run');
  const restart = await app.edit({ 'view.js': 'export const label = "v3";' }, { restartOnUnaccepted: true });
  assert.equal(restart.status, 'unaccepted');
  assert.deepEqual((await app.run('log.js')).log, ['main v1 sees 1', 'main v2 sees 2'], 'with restartOnUnaccepted nothing is applied');
});

for (const [kind, edit] of [
  ['a syntax error', 'export const value = ;'],
  ['a throw while evaluating', 'export const value = "bad"; throw new RangeError("broken");'],
  ['a missing export an importer needs', 'export const other = 1;'],
  ['an accept handler that throws', 'export const value = "bad"; import.meta.hot.accept(); globalThis.__throwOnAccept = true;'],
  ['an accept handler that rejects', 'export const value = "bad"; globalThis.__rejectOnAccept = true;'],
] as const) {
  test(`${kind} rolls the swap back: the old version keeps running, its dispose handler has not run, the next version applies`, async (t) => {
    delete (globalThis as Record<string, unknown>).__throwOnAccept;
    delete (globalThis as Record<string, unknown>).__rejectOnAccept;
    const app = liveFolder(t, {
      ...LOG,
      'dep.js': `import { log } from './log.js'; export const value = "good";
        import.meta.hot.dispose(() => log.push('disposed good'));
        import.meta.hot.accept(async () => {
          if (globalThis.__throwOnAccept) throw new Error('accept failed');
          if (globalThis.__rejectOnAccept) await Promise.reject(new Error('accept rejected'));
        });`,
      'main.js': 'import { value } from "./dep.js"; export const read = () => value;',
    });
    const main = await app.run('main.js');
    const read = main.read as () => string;
    const failed = await app.edit({ 'dep.js': edit });
    assert.equal(failed.status, 'failed');
    assert.ok(failed.error instanceof Error);
    assert.equal(read(), 'good');
    assert.deepEqual((await app.run('log.js')).log, []);
    assert.equal((await app.run('dep.js')).value, 'good');
    delete (globalThis as Record<string, unknown>).__throwOnAccept;
    delete (globalThis as Record<string, unknown>).__rejectOnAccept;
    const fixed = await app.edit({ 'dep.js': 'export const value = "fixed"; import.meta.hot.accept();' });
    assert.equal(fixed.status, 'applied', String(fixed.error));
    assert.equal(read(), 'fixed');
    assert.deepEqual((await app.run('log.js')).log, ['disposed good']);
  });
}

test('a call already running finishes on the code it started in; later calls use the new version', async (t) => {
  const app = liveFolder(t, {
    'worker.js': `export async function job(gate) { const before = 'old'; await gate; return before + '-' + helper(); }
      export function helper() { return 'old helper'; }
      import.meta.hot.accept();`,
    'main.js': 'export { job } from "./worker.js";',
  });
  const main = await app.run('main.js');
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const running = (main.job as (gate: Promise<void>) => Promise<string>)(gate);
  const result = await app.edit({ 'worker.js': `export async function job() { return 'new'; } export function helper() { return 'new helper'; } import.meta.hot.accept();` });
  assert.equal(result.status, 'applied', String(result.error));
  open();
  assert.equal(await running, 'old-old helper', 'the running call keeps its own code (and its module scope)');
  assert.equal(await (main.job as () => Promise<string>)(), 'new');
});

test('exports added and removed by a new version; a removed module is pruned', async (t) => {
  const app = liveFolder(t, {
    ...LOG,
    'extra.js': 'import { log } from "./log.js"; export const extra = 1; import.meta.hot.prune(() => log.push("pruned extra"));',
    'lib.js': 'export { extra } from "./extra.js"; export const a = 1; import.meta.hot.accept();',
    'main.js': 'import * as lib from "./lib.js"; export const keys = () => Object.keys(lib); import.meta.hot.accept("./lib.js", () => {});',
  });
  const main = await app.run('main.js');
  assert.deepEqual((main.keys as () => string[])(), ['a', 'extra']);
  const result = await app.edit({ 'lib.js': 'export const a = 2, b = 3; import.meta.hot.accept();', 'extra.js': null });
  assert.equal(result.status, 'applied', String(result.error));
  assert.deepEqual(result.modules.map((module) => [module.path, module.to === null]), [['lib.js', false], ['extra.js', true]]);
  assert.deepEqual(Object.keys(await app.run('lib.js')), ['a', 'b'], 'a namespace handed out after the swap shows the new names');
  assert.deepEqual((await app.run('log.js')).log, ['pruned extra']);
});

// Regressions found in review.

test('invalidate() from an accept callback makes the importers take the new version; it never swaps back', async (t) => {
  const app = liveFolder(t, {
    ...LOG,
    'counter.js': 'import { log } from "./log.js"; export const version = 1; import.meta.hot.accept((next) => { log.push("accept " + next.version); import.meta.hot.invalidate("cannot take it"); });',
    'main.js': 'import { log } from "./log.js"; import { version } from "./counter.js"; log.push("main sees " + version); export const read = () => version;',
  });
  const main = await app.run('main.js');
  assert.equal((await app.edit({ 'counter.js': 'export const version = 2; import.meta.hot.accept();' })).status, 'applied');
  // The invalidation runs as a swap of its own, queued behind this one.
  await app.registry.swap(app.registry.source);
  assert.deepEqual((await app.run('log.js')).log, ['main sees 1', 'accept 2', 'main sees 2']);
  assert.equal((main.read as () => number)(), 2);
  assert.equal((await app.run('counter.js')).version, 2);
});

test('a failed swap leaves nothing of its new versions running: a dependency that settles after the rollback does not run them, nor keep their listeners', async (t) => {
  const app = liveFolder(t, {
    ...LOG,
    't.js': 'export const t = 1;',
    'a.js': 'import { log } from "./log.js"; import { t } from "./t.js"; log.push("a ran with t " + t); import.meta.hot.on("livemod:afterUpdate", () => log.push("a listened with t " + t)); import.meta.hot.accept();',
    'b.js': 'export const b = 1; import.meta.hot.accept();',
    'main.js': 'import "./a.js"; import "./b.js";',
  });
  await app.run('main.js');
  const failed = await app.edit({ 't.js': 'await new Promise((resolve) => setTimeout(resolve, 50)); export const t = 2;', 'b.js': 'throw new Error("bad b");' });
  assert.equal(failed.status, 'failed');
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal((await app.edit({ 't.js': 'export const t = 3;', 'b.js': 'export const b = 3; import.meta.hot.accept();' })).status, 'applied');
  assert.deepEqual((await app.run('log.js')).log, ['a ran with t 1', 'a ran with t 3', 'a listened with t 3']);
});

test('names a version no longer exports leave the namespace, also on hubs; a rolled-back version leaves no names behind', async (t) => {
  const app = liveFolder(t, {
    'leaf.js': 'export let x = 1; export const z = "z1"; import.meta.hot.accept();',
    'hub.js': 'export * from "./leaf.js";',
    'other.js': 'export const o = 1; import.meta.hot.accept();',
    'main.js': 'import * as hub from "./hub.js"; import * as leaf from "./leaf.js"; import "./other.js"; export const seen = () => [Object.keys(hub), hub.z, "y" in hub, leaf.z];',
  });
  const main = await app.run('main.js');
  const failed = await app.edit({ 'leaf.js': 'export let x = 10; export const z = "z2", y = "from the failed version"; import.meta.hot.accept();', 'other.js': 'throw new Error("boom");' });
  assert.equal(failed.status, 'failed');
  assert.deepEqual((main.seen as () => unknown[])(), [['x', 'z'], 'z1', false, 'z1']);
  assert.equal((await app.edit({ 'leaf.js': 'export let x = 100; import.meta.hot.accept();', 'other.js': 'export const o = 2; import.meta.hot.accept();' })).status, 'applied');
  assert.deepEqual((main.seen as () => unknown[])(), [['x'], undefined, false, undefined]);
});

test('a hub that is not re-run shows the names its export * source gains', async (t) => {
  const app = liveFolder(t, {
    'leaf.js': 'import.meta.hot.accept();',
    'hub.js': 'export * from "./leaf.js"; export const h = 1;',
    'main.js': 'import * as hub from "./hub.js"; export const keys = () => Object.keys(hub); export const y = () => hub.y;',
  });
  const main = await app.run('main.js');
  assert.equal((await app.edit({ 'leaf.js': 'export const y = "new"; import.meta.hot.accept();' })).status, 'applied');
  assert.deepEqual(Object.keys(await app.run('hub.js')), ['h', 'y']);
  assert.equal((main.y as () => string)(), 'new');
});

test('new versions evaluate in import order, whatever order the old ones were loaded in', async (t) => {
  const app = liveFolder(t, {
    ...LOG,
    'a.js': 'import { log } from "./log.js"; log.push("a1");',
    'b.js': 'import { log } from "./log.js"; log.push("b1");',
    'main.js': 'import { log } from "./log.js"; import "./a.js"; import "./b.js"; log.push("main");',
    'entry.js': 'await import("./b.js"); await import("./main.js");',
  });
  await app.run('entry.js');
  assert.equal((await app.edit({ 'a.js': 'import { log } from "./log.js"; log.push("a2");', 'b.js': 'import { log } from "./log.js"; log.push("b2");' })).status, 'applied');
  assert.deepEqual((await app.run('log.js')).log, ['b1', 'a1', 'main', 'a2', 'b2', 'main']);
});

test('failed swaps do not pile up source maps (each holds its whole build)', async (t) => {
  const { sourceMapCount } = await import('../src/runtime/stack.ts');
  const app = liveFolder(t, { 'dep.js': 'export const v = 1; import.meta.hot.accept();', 'main.js': 'import { v } from "./dep.js"; export const read = () => v;' });
  await app.run('main.js');
  const before = sourceMapCount();
  for (let attempt = 0; attempt < 10; attempt += 1) {
    assert.equal((await app.edit({ 'dep.js': `export const v = ${attempt}; throw new Error("no"); import.meta.hot.accept();` })).status, 'failed');
  }
  assert.equal(sourceMapCount(), before);
});

test('a swap runs every new version it made, also a cycle no other new version imports (in the order its import runs it), one closed by import defer, and a module reached only through import defer that had run', async (t) => {
  const a = (version: string): string => `import { b } from './b.js'; export const a = '${version}'; export const seen = b + '!'; export const readB = () => b;`;
  const app = liveFolder(t, {
    'a.js': a('A1'),
    'b.js': "import { a } from './a.js'; export const b = 'B1'; export const readA = () => a;",
    'p.js': "import { q } from './q.js'; export const p = 'P1' + q;",
    'q.js': "import defer * as p from './p.js'; export const q = 'Q'; export const readP = () => p.p;",
    'd.js': "export const d = 'D1';",
    'uses-d.js': "import defer * as d from './d.js'; export const readD = () => d.d; import.meta.hot.accept();",
    'main.js': "import { a, seen, readB } from './a.js'; import { p } from './p.js'; import { readD } from './uses-d.js'; import.meta.hot.accept(['./a.js', './p.js', './uses-d.js'], () => {}); export const read = () => [a, seen, readB(), p]; export const deferred = () => readD();",
  });
  const main = await app.run('main.js');
  assert.deepEqual((main.read as () => string[])(), ['A1', 'B1!', 'B1', 'P1Q']);
  assert.equal((main.deferred as () => string)(), 'D1');
  const cycle = await app.edit({ 'a.js': a('A2') });
  assert.equal(cycle.status, 'applied', String(cycle.error));
  assert.deepEqual((main.read as () => string[])(), ['A2', 'B1!', 'B1', 'P1Q'], 'both members ran, b.js first as at start (a.js reads b at its top level)');
  const closedByDefer = await app.edit({ 'p.js': "import { q } from './q.js'; export const p = 'P2' + q;" });
  assert.equal(closedByDefer.status, 'applied', String(closedByDefer.error));
  assert.deepEqual((main.read as () => string[])(), ['A2', 'B1!', 'B1', 'P2Q']);
  const deferred = await app.edit({ 'd.js': "export const d = 'D2';", 'uses-d.js': "import defer * as d from './d.js'; export const readD = () => d.d; import.meta.hot.accept(); " });
  assert.equal(deferred.status, 'applied', String(deferred.error));
  assert.equal((main.deferred as () => string)(), 'D2');
});

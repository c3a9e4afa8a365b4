// Lazy mode defers the build of lazily imported graphs (issue 15): a local start builds what the
// roots reach through eager imports, and a lazily imported module's graph is built at its first
// read, from its build-record segment when nothing changed. The builder is driven directly, as a
// start and its first read drive it, and then through `livemod run --lazy` in child processes.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SnapshotBuilder, transformCache, type BuildOptions, type BuildResult } from '../src/build/index.ts';
import { openFolder } from '../src/client/index.ts';
import type { LocalSource } from '../src/client/local.ts';
import type { LazyPolicy } from '../src/snapshot/index.ts';
import { codeCacheStats, flushCodeCache } from '../src/runtime/index.ts';
import { runAsync } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';

const LAZY: LazyPolicy = { lazy: 'normal' };

/** A graph of `count` modules under heavy/, each importing the next by name. */
function heavy(count: number, value = 1): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < count; i += 1) {
    files[`heavy/m${i}.js`] = i + 1 < count ? `import { f${i + 1} } from './m${i + 1}.js';\nexport const f${i} = () => ${value} + f${i + 1}();` : `export const f${i} = () => ${value};`;
  }
  return files;
}

const APP = {
  'package.json': JSON.stringify({ name: 'app', type: 'module' }),
  'main.js': "import { f0 } from './heavy/m0.js';\nimport { small } from './small.js';\nexport const run = () => f0() + small;",
  'small.js': 'export const small = 100;',
  ...heavy(5),
};

function folder(t: Parameters<typeof tempDir>[0], files: Record<string, string>): { dir: string; cacheDir: string; builder(options?: Partial<BuildOptions>): SnapshotBuilder } {
  const dir = tempDir(t);
  // A folder inside the test's own (as builds/ sits in a store): a record written after the test, whose parent is gone, is dropped.
  const cacheDir = join(tempDir(t), 'cache');
  writeFiles(dir, files);
  return { dir, cacheDir, builder: (options = {}) => new SnapshotBuilder(dir, { reach: ['main.js'], cache: transformCache(cacheDir), lazy: LAZY, ...options }) };
}

/** A start: a new builder's first build, its record written. */
function start(builder: SnapshotBuilder): BuildResult {
  const result = builder.build();
  builder.flushRecord();
  return result;
}

const paths = (result: BuildResult): string[] => Object.keys(result.content.modules).sort();
const code = (result: BuildResult, path: string): string => result.content.blobs.get(result.content.modules[path]!.blob.hash)!.toString('utf8');

test('a start after the first builds only the eager graph; the first read grows it from the record segment, records and code as a full build', (t) => {
  const app = folder(t, APP);
  const full = start(app.builder());
  assert.equal(full.deferred, undefined, 'a first start knows nothing of top-level await: it builds everything');
  assert.deepEqual(paths(full), ['heavy/m0.js', 'heavy/m1.js', 'heavy/m2.js', 'heavy/m3.js', 'heavy/m4.js', 'main.js', 'package.json', 'small.js']);

  const builder = app.builder();
  const second = start(builder);
  assert.equal(second.restored, true);
  assert.deepEqual(paths(second), ['main.js', 'package.json']);
  assert.deepEqual(second.deferred, ['heavy/m0.js', 'small.js'], 'every named import of a module is lazy');
  // The first read of f0 asks for heavy/m0.js: its whole graph comes at once, lazy imports inside included.
  builder.extend(['heavy/m0.js']);
  const grown = builder.build({ hold: true });
  assert.equal(grown.restored, true, 'taken from the segment: nothing read or resolved');
  assert.deepEqual(paths(grown), ['heavy/m0.js', 'heavy/m1.js', 'heavy/m2.js', 'heavy/m3.js', 'heavy/m4.js', 'main.js', 'package.json']);
  assert.deepEqual(grown.deferred, ['small.js']);
  builder.extend(['small.js']);
  const whole = builder.build({ hold: true });
  assert.equal(whole.restored, true);
  assert.deepEqual(whole.content.modules, full.content.modules);
  for (const path of paths(full)) assert.equal(code(whole, path), code(full, path));
  assert.equal(whole.deferred, undefined);

  // The next start defers it again: a first read in one run does not make the graph eager.
  assert.deepEqual(paths(start(app.builder())), ['main.js', 'package.json']);
});

test('what stays eager: top-level await below, an eager rule, a re-export, a side-effect import, import defer, --strict', (t) => {
  const app = folder(t, {
    ...APP,
    'ns.js': 'export const n = 1;',
    'main.js': [
      "import * as ns from './ns.js';",
      "import { f0 } from './heavy/m0.js';",
      "import { t } from './tla/a.js';",
      "import { kept } from './kept.js';",
      "export { r } from './re.js';",
      "import './side.js';",
      "import defer * as d from './deferred.js';",
      'export const run = () => f0() + t + kept + d.x + ns.n;',
    ].join('\n'),
    'tla/a.js': "import { b } from './b.js';\nexport const t = b;",
    'tla/b.js': 'export const b = await Promise.resolve(1);',
    'kept.js': 'export const kept = 1;',
    're.js': 'export const r = 1;',
    'side.js': 'globalThis.side = 1;',
    'deferred.js': 'export const x = 1;',
  });
  start(app.builder({ lazy: { lazy: 'normal', eager: { modules: ['./kept.js'] } } }));
  const second = start(app.builder({ lazy: { lazy: 'normal', eager: { modules: ['./kept.js'] } } }));
  assert.equal(second.restored, true);
  assert.deepEqual(second.deferred, ['heavy/m0.js']);
  for (const path of ['tla/a.js', 'tla/b.js', 'kept.js', 're.js', 'side.js', 'deferred.js', 'ns.js']) assert.ok(Object.hasOwn(second.content.modules, path), `${path} is built at start`);

  // Another policy is another record: without the eager rule, kept.js is deferred too.
  start(app.builder());
  assert.deepEqual(start(app.builder()).deferred, ['heavy/m0.js', 'kept.js']);
  // --strict checks the whole graph at start: nothing is deferred.
  start(app.builder({ strict: true }));
  const strict = start(app.builder({ strict: true }));
  assert.equal(strict.restored, true);
  assert.equal(strict.deferred, undefined);
  assert.ok(Object.hasOwn(strict.content.modules, 'heavy/m4.js'));
});

test('a deferred file changed after the record: the start still takes the record, and the first read builds the new code', (t) => {
  const app = folder(t, APP);
  start(app.builder());
  start(app.builder());
  writeFileSync(join(app.dir, 'heavy/m3.js'), "import { f4 } from './m4.js';\nexport const f3 = () => 3000 + f4();");
  const builder = app.builder();
  const second = start(builder);
  assert.equal(second.restored, true, 'the eager graph is unchanged');
  builder.extend(['heavy/m0.js']);
  const grown = builder.build({ hold: true });
  assert.notEqual(grown.restored, true, 'the segment no longer holds: a build');
  assert.match(code(grown, 'heavy/m3.js'), /3000/);
  assert.deepEqual(grown.transformed, ['heavy/m3.js'], 'only the changed file is transformed');
});

test('a missing or damaged segment costs a build of the graph, never a wrong one', (t) => {
  const app = folder(t, APP);
  const full = start(app.builder());
  start(app.builder());
  const records = join(app.cacheDir, 'records');
  const files = readdirSync(records);
  assert.equal(files.length, 2, `the record and its one segment: ${files.join(', ')}`);
  for (const name of files) {
    const text = JSON.stringify(JSON.parse(readFileSync(join(records, name), 'latin1')));
    if (!text.includes('"key"')) writeFileSync(join(records, name), text.slice(0, 100));
  }
  const builder = app.builder();
  assert.equal(start(builder).restored, true);
  builder.extend(['heavy/m0.js']);
  const grown = builder.build({ hold: true });
  assert.notEqual(grown.restored, true);
  assert.deepEqual(grown.content.modules, full.content.modules);
  for (const name of readdirSync(records)) rmSync(join(records, name));
  const again = app.builder();
  start(again);
  again.extend(['heavy/m0.js']);
  assert.deepEqual(again.build({ hold: true }).content.modules, full.content.modules);
});

test('a program run lazily: untouched, its lazy graph is never built; read, it runs; a name the module lacks fails at the read; top-level await gained is said', async (t) => {
  const app = folder(t, { ...APP, 'main.js': "import { f0 } from './heavy/m0.js';\nimport { small } from './small.js';\nexport const read = () => f0() + small;\nexport const value = () => small;" });
  // A start, its build record written at once (a run writes it a moment later).
  const open = async (): Promise<Awaited<ReturnType<typeof openFolder>>> => {
    const opened = await openFolder(join(app.dir, 'main.js'), { lazy: 'normal', cache: app.cacheDir });
    (opened.registry.source as LocalSource).builder.flushRecord();
    return opened;
  };
  await open();
  const started = await open();
  const namespace = (await started.import()) as { read(): number; value(): number };
  assert.deepEqual(Object.keys(started.manifest.modules).sort(), ['main.js', 'package.json'], 'the lazy graphs are not built at start');
  assert.equal(namespace.value(), 100);
  assert.deepEqual(Object.keys(started.manifest.modules).sort(), ['main.js', 'package.json', 'small.js']);
  assert.equal(namespace.read(), 105);
  assert.ok(Object.hasOwn(started.manifest.modules, 'heavy/m4.js'), 'built at the first read');

  // The importer asks for a name the deferred module does not have: the first read fails with both sites, and again at the next.
  writeFiles(app.dir, { 'main.js': "import { nothing } from './heavy/m0.js';\nexport const read = () => nothing;" });
  await open();
  const missing = await open();
  assert.ok(!Object.hasOwn(missing.manifest.modules, 'heavy/m0.js'), 'deferred again once the record is written');
  const broken = (await missing.import()) as { read(): unknown };
  assert.throws(() => broken.read(), (error: Error & { code?: string }) => error.code === 'ERR_LIVEMOD_LAZY_LOAD' && /nothing/.test(error.message) && /main\.js:1/.test(error.message));
  assert.throws(() => broken.read(), /nothing/);
});

test('livemod run --lazy: second starts run untouched and touched programs right, and say when a deferred graph gained top-level await', async (t) => {
  const app = folder(t, {
    ...APP,
    'untouched.js': "import { f0 } from './heavy/m0.js';\nexport const later = () => f0;\nconsole.log('untouched');",
    'touched.js': "import { f0 } from './heavy/m0.js';\nconsole.log('touched', f0());",
  });
  const run = (file: string): ReturnType<typeof runAsync> => runAsync(['run', '--lazy', `./${file}`, '--cache', app.cacheDir], { cwd: app.dir });
  for (let round = 0; round < 2; round += 1) {
    assert.equal((await run('untouched.js')).stdout.trim(), 'untouched');
    assert.equal((await run('touched.js')).stdout.trim(), 'touched 5');
  }
  writeFileSync(join(app.dir, 'heavy/m2.js'), "import { f3 } from './m3.js';\nexport const f2 = () => 200 + f3();");
  assert.equal((await run('touched.js')).stdout.trim(), 'touched 204', 'the changed deferred file is built at the read');
  writeFileSync(join(app.dir, 'heavy/m4.js'), 'export const f4 = () => 1;\nawait null;');
  const failed = await run('touched.js');
  assert.notEqual(failed.status, 0);
  assert.match(failed.stderr, /heavy\/m0\.js now has top-level await in its graph.*restart/);
  assert.match(failed.stderr, /ERR_LIVEMOD_LAZY_LOAD/);
  assert.equal((await run('touched.js')).stdout.trim(), 'touched 204', 'the next start imports it eagerly');
});

test('a deferred graph\'s packages load at start, as with the graph (a package may await); its modules at the first read; a missing package fails the start as an eager one', async (t) => {
  const app = folder(t, {
    'package.json': JSON.stringify({ name: 'app', type: 'module' }),
    'main.js': [
      "import { use } from './lib/use.js';",
      "import { late } from './lib/late.js';",
      "console.log('before', globalThis.sideRegistered, globalThis.useRan);",
      "console.log('after', use(), late);",
    ].join('\n'),
    'lib/use.js': "import 'side-pkg/register.js';\nimport { twice } from 'side-pkg';\nglobalThis.useRan = true;\nexport const use = () => twice(globalThis.sideRegistered);",
    'lib/late.js': "import { awaited } from 'await-pkg';\nexport const late = awaited;",
    'node_modules/side-pkg/package.json': JSON.stringify({ name: 'side-pkg', type: 'module', exports: { '.': './index.js', './register.js': './register.js' } }),
    'node_modules/side-pkg/index.js': 'export const twice = (x) => x * 2;',
    'node_modules/side-pkg/register.js': 'globalThis.sideRegistered = 21;',
    'node_modules/await-pkg/package.json': JSON.stringify({ name: 'await-pkg', type: 'module', exports: './index.js' }),
    'node_modules/await-pkg/index.js': 'export const awaited = await Promise.resolve(7);',
  });
  const run = (...args: string[]): ReturnType<typeof runAsync> => runAsync(['run', '--lazy', './main.js', '--cache', app.cacheDir, ...args], { cwd: app.dir });
  assert.equal((await run()).stdout, 'before 21 undefined\nafter 42 7\n', 'a first start builds everything; packages load at start, modules at their first read');
  const second = await run();
  assert.equal(second.stdout, 'before 21 undefined\nafter 42 7\n', `the same from the record, a package with top-level await included: ${second.stderr}`);
  rmSync(join(app.dir, 'node_modules/await-pkg'), { recursive: true });
  const failed = await run();
  assert.notEqual(failed.status, 0);
  assert.match(failed.stderr, /await-pkg/);
  assert.equal(failed.stdout, '', 'at start, before the program ran');
});

test('a grown graph keeps its code cache as a run pack of its own: the next start that reads it compiles nothing', async (t) => {
  const app = folder(t, APP);
  const entry = join(app.dir, 'main.js');
  const start = async (): Promise<{ run(): number }> => {
    const opened = await openFolder(entry, { lazy: 'normal', cache: app.cacheDir });
    (opened.registry.source as LocalSource).builder.flushRecord();
    return (await opened.import()) as { run(): number };
  };
  await start();
  flushCodeCache();
  const first = await start();
  assert.equal(first.run(), 105);
  flushCodeCache();
  const packs = readdirSync(join(app.cacheDir, 'runs')).filter((name) => name.endsWith('.pack')).length;
  assert.ok(packs >= 2, `the start's run pack and the grown graphs' (${packs})`);
  // Per-module entries gone: only the run packs can serve the next start.
  rmSync(join(app.cacheDir, 'code'), { recursive: true, force: true });
  const before = codeCacheStats();
  assert.equal((await start()).run(), 105);
  flushCodeCache();
  const after = codeCacheStats();
  assert.equal(after.written - before.written, 0, 'nothing compiled');
  assert.equal(after.used - before.used, 7, 'main.js, small.js and the five heavy modules deserialised');
});

test('a deferred module instantiated by another lazy graph is checked for the names its importers import', async (t) => {
  const app = folder(t, {
    'package.json': JSON.stringify({ name: 'app', type: 'module' }),
    'main.js': "import { x } from './b.js';\nimport { y } from './d.js';\nexport const readY = () => y;\nexport const readX = () => x;",
    'd.js': "import { z } from './b.js';\nexport const y = () => z;",
    'b.js': 'export const z = 1;\nexport const x = 2;',
  });
  const open = async (): Promise<Awaited<ReturnType<typeof openFolder>>> => {
    const opened = await openFolder(join(app.dir, 'main.js'), { lazy: 'normal', cache: app.cacheDir });
    (opened.registry.source as LocalSource).builder.flushRecord();
    return opened;
  };
  await open();
  await open();
  // b.js loses x: the start's part of the record still holds (b.js is deferred).
  writeFiles(app.dir, { 'b.js': 'export const z = 1;' });
  const started = await open();
  assert.deepEqual((started.registry.source as LocalSource).build.deferred, ['b.js', 'd.js']);
  const main = (await started.import()) as { readY(): () => number; readX(): unknown };
  // Reading y instantiates d.js's graph, b.js with it: b.js's importers are checked then, as a start checks them.
  assert.throws(() => main.readY(), (error: Error & { code?: string }) => error.code === 'ERR_LIVEMOD_LAZY_LOAD' && /does not provide an export named 'x'/.test(error.message));
});

test('an eager filter function keeps the build whole: a record cannot tell one function from another of the same text', (t) => {
  const app = folder(t, APP);
  const filtered = { lazy: { lazy: 'normal' as const, eager: { filter: (): boolean => false } } };
  start(app.builder(filtered));
  const second = start(app.builder(filtered));
  assert.equal(second.restored, true);
  assert.equal(second.deferred, undefined);
  assert.ok(Object.hasOwn(second.content.modules, 'heavy/m4.js'));
});

test('a namespace import stays built while a lazy import inside its module is deferred: reading it builds that one', async (t) => {
  const app = folder(t, {
    'package.json': JSON.stringify({ name: 'app', type: 'module' }),
    'main.js': "import * as ns from './ns.js';\nexport const read = () => ns.n();",
    'ns.js': "import { u } from './u.js';\nexport const n = () => u + 1;",
    'u.js': 'export const u = 41;',
  });
  for (let start = 1; start <= 3; start += 1) {
    const opened = await openFolder(join(app.dir, 'main.js'), { lazy: 'normal', cache: app.cacheDir });
    if (start > 1) assert.deepEqual((opened.registry.source as LocalSource).build.deferred, ['u.js']);
    assert.equal(((await opened.import()) as { read(): number }).read(), 42, `start ${start}`);
    (opened.registry.source as LocalSource).builder.flushRecord();
    await opened.close();
  }
});

test('a swap that instantiates a deferred module checks the names its waiting importers import', async (t) => {
  const app = folder(t, {
    'package.json': JSON.stringify({ name: 'app', type: 'module' }),
    'main.js': "import { missing } from './u.js';\nimport './other.js';\nexport const read = () => missing;",
    'other.js': 'import.meta.hot?.accept();\nexport const o = 1;',
    'u.js': 'export const missing = 1;',
  });
  const open = (live: boolean, notice: (line: string) => void = () => {}): ReturnType<typeof openFolder> => openFolder(join(app.dir, 'main.js'), { lazy: 'normal', cache: app.cacheDir, live, notice });
  const first = await open(false);
  await first.import();
  (first.registry.source as LocalSource).builder.flushRecord();
  await first.close();
  writeFiles(app.dir, { 'u.js': 'export const other = 2;' });
  const notices: string[] = [];
  const running = await open(true, (line) => notices.push(line));
  t.after(() => running.close());
  assert.deepEqual((running.registry.source as LocalSource).build.deferred, ['u.js']);
  const main = (await running.import()) as { read(): unknown };
  const swapped = new Promise<string>((resolve) => running.on('swap', (record) => resolve(record.status)));
  writeFiles(app.dir, { 'other.js': "import.meta.hot?.accept();\nimport './u.js';\nexport const o = 2;" });
  assert.notEqual(await swapped, 'applied', 'the swap links u.js, which lacks a name main.js imports');
  assert.ok(notices.some((line) => /does not provide an export named 'missing'/.test(line)), notices.join('\n'));
  assert.throws(() => main.read(), /does not provide an export named 'missing'/);
});

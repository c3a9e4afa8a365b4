import assert from 'node:assert/strict';
import { cpSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { canonicalJson, generatePublisherKey, signSnapshot } from '../src/snapshot/index.ts';
import { SnapshotBuilder, transformCache } from '../src/build/index.ts';
import { evaluator } from './helpers/runtime.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';

const TREE = {
  'package.json': JSON.stringify({ name: '@acme/tool', type: 'module', exports: { '.': './src/index.ts', './util': { types: './src/util.d.ts', import: './src/util.ts' }, './features/*': './src/features/*.ts' }, imports: { '#cfg': './src/config.ts', '#dep': 'some-dep' } }),
  'src/index.ts': `import { helper } from '@acme/tool/util'; import { flag } from '@acme/tool/features/x'; import cfg from '#cfg'; export const value: string = helper() + flag + cfg;`,
  'src/util.ts': `export function helper(): string { return 'h'; }`,
  'src/features/x.ts': `export const flag = 'f';`,
  'src/config.ts': `export default 'c';`,
  'src/ext.ts': `import './side'; import { a } from './dir'; import { b } from './b.js'; import dep from '#dep'; import lodash from 'lodash'; export { a, b, dep, lodash };`,
  'src/side.ts': `globalThis.sideEffect = 1;`,
  'src/dir/index.ts': `export const a = 1;`,
  'src/b.ts': `export const b = 2;`,
};

test('deterministic: the same folder in two places gives the same blobs and manifest', (t) => {
  const one = tempDir(t);
  const two = tempDir(t);
  writeFiles(one, TREE);
  cpSync(one, two, { recursive: true });
  const key = generatePublisherKey();
  const a = signSnapshot(new SnapshotBuilder(one).build().content, key, { version: 5, now: 0 });
  const b = signSnapshot(new SnapshotBuilder(two).build().content, key, { version: 5, now: 0 });
  assert.equal(canonicalJson(a.manifest), canonicalJson(b.manifest));
  assert.deepEqual([...a.blobs.keys()].sort(), [...b.blobs.keys()].sort());
  assert.equal(a.sealed.hash, b.sealed.hash);
});

test('resolution: self-reference through exports, #imports, extensionless, index, .js naming .ts, externals', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, TREE);
  const { content, unresolved } = new SnapshotBuilder(dir).build();
  assert.deepEqual(unresolved, []);
  assert.equal(content.entry, 'src/index.ts');
  const byName = (path: string) => Object.fromEntries(content.modules[path]!.imports.map((entry) => [entry.specifier, entry.kind === 'module' ? entry.module : entry.kind]));
  assert.deepEqual(byName('src/index.ts'), { '@acme/tool/util': 'src/util.ts', '@acme/tool/features/x': 'src/features/x.ts', '#cfg': 'src/config.ts' });
  assert.deepEqual(byName('src/ext.ts'), { './side': 'src/side.ts', './dir': 'src/dir/index.ts', './b.js': 'src/b.ts', '#dep': 'external', lodash: 'external' });
  assert.deepEqual(content.modules['src/ext.ts']!.imports[0]!.names, [], 'side-effect import binds nothing');
  const ns = await evaluator(content).run('src/index.ts');
  assert.equal(ns.value, 'hfc');
});

test('an unused module with an unresolved import is published marked; loading it fails like Node; --strict refuses', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'main.ts': 'export const ok = 1;',
    'test/helper.ts': `// a test helper nothing imports\n\nimport { thing } from '../fixtures/missing';\nexport { thing };`,
  });
  const result = new SnapshotBuilder(dir).build();
  assert.equal(result.unresolved.length, 1);
  const [item] = result.unresolved;
  assert.equal(item!.path, 'test/helper.ts');
  assert.equal(item!.line, 3, 'line of the import in the original file');
  assert.equal(item!.specifier, '../fixtures/missing');
  const record = result.content.modules['test/helper.ts']!.imports[0]!;
  assert.equal(record.kind, 'unresolved');
  assert.equal(record.line, 3);
  assert.equal((await evaluator(result.content).run('main.ts')).ok, 1, 'other modules are unaffected');
  await assert.rejects(evaluator(result.content).run('test/helper.ts'), (error: NodeJS.ErrnoException) => error.code === 'ERR_MODULE_NOT_FOUND' && error.message.includes('test/helper.ts:3'));
  assert.throws(() => new SnapshotBuilder(dir, { strict: true }).build(), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_UNRESOLVED_IMPORT' && error.message.includes('test/helper.ts:3:'));
});

test('imports leaving the folder and URL imports are unresolved, with a reason', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'sub/a.js': `import '../../outside.js'; import 'https://example.com/x.js'; import '/etc/passwd';` });
  const reasons = new SnapshotBuilder(dir).build().unresolved.map((item) => item.reason);
  assert.equal(reasons.length, 3);
  assert.match(reasons[0]!, /outside the published folder/);
  assert.match(reasons[1]!, /URL import/);
  assert.match(reasons[2]!, /absolute path/);
});

test('incremental: an edit re-transforms only the edited file', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, TREE);
  const builder = new SnapshotBuilder(dir);
  const first = builder.build();
  assert.equal(first.transformed.length, Object.keys(TREE).length);
  writeFileSync(join(dir, 'src/util.ts'), `export function helper(): string { return 'changed'; }`);
  builder.invalidate(['src/util.ts']);
  const second = builder.build();
  assert.deepEqual(second.transformed, ['src/util.ts']);
  assert.deepEqual(second.changed, ['src/util.ts']);
  builder.invalidate(['src/b.ts']);
  const third = builder.build();
  assert.deepEqual(third.changed, [], 'an event without a content change changes nothing');
  writeFileSync(join(dir, 'src/new.ts'), 'export const n = 1;');
  builder.invalidate(['src/new.ts']);
  assert.deepEqual(builder.build().changed, ['src/new.ts']);
});

test('hostile folders: symlinks leaving the folder and oversized files are skipped with a reason', (t) => {
  const dir = tempDir(t);
  const outside = tempDir(t);
  writeFiles(outside, { 'secret.js': 'export const secret = "s";' });
  writeFiles(dir, { 'main.js': 'export const a = 1;', 'big.js': `export const big = "${'x'.repeat(5000)}";`, 'inner.js': 'export const i = 1;' });
  symlinkSync(join(outside, 'secret.js'), join(dir, 'leak.js'));
  symlinkSync(outside, join(dir, 'leakdir'));
  symlinkSync(join(dir, 'inner.js'), join(dir, 'alias.js'));
  const result = new SnapshotBuilder(dir, { maxFileBytes: 1000 }).build();
  assert.deepEqual(Object.keys(result.content.modules).sort(), ['alias.js', 'inner.js', 'main.js']);
  const reasons = Object.fromEntries(result.skipped.map((item) => [item.path, item.reason]));
  assert.match(reasons['leak.js']!, /outside the published folder/);
  assert.match(reasons.leakdir!, /outside the published folder/);
  assert.match(reasons['big.js']!, /per-file limit/);
  for (const blob of result.content.blobs.values()) assert.equal(blob.includes('secret'), false);
});

test('a file that does not parse is published marked with file:line:column (--strict refuses it); a folder over the total limit is refused', (t) => {
  const dir = tempDir(t);
  const source = 'export const a = 1;\nconst b: number = ;\n';
  writeFiles(dir, { 'ok.ts': 'export const a = 1;', 'broken.ts': source, 'early.js': 'let x; let x;\n' });
  const result = new SnapshotBuilder(dir).build();
  assert.deepEqual(result.broken.map((item) => [item.path, item.line]), [['broken.ts', 2], ['early.js', 1]]);
  const record = result.content.modules['broken.ts']!;
  assert.equal(record.error!.line, 2);
  assert.deepEqual([record.map, record.imports, record.exports, record.tla], [null, [], [], false]);
  assert.equal(result.content.blobs.get(record.blob.hash)!.toString(), source, 'the blob of a broken module is its source as read');
  assert.match(result.content.modules['early.js']!.error!.message, /already been declared/);
  assert.equal(result.content.modules['ok.ts']!.error, undefined);
  assert.throws(() => new SnapshotBuilder(dir, { strict: true }).build(), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_BUILD_FAILED' && /broken\.ts:2:\d+/.test(error.message) && /--strict/.test(error.message));
  const big = tempDir(t);
  writeFiles(big, { 'a.js': `export const a = "${'a'.repeat(1500)}";`, 'b.js': `export const b = "${'b'.repeat(1500)}";` });
  assert.throws(() => new SnapshotBuilder(big, { maxTotalBytes: 2000 }).build(), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_TOO_LARGE');
  assert.throws(() => new SnapshotBuilder(join(dir, 'nope')), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_DIR_INVALID');
});

test('real-size modules: a 4 MB module builds under the default limit', (t) => {
  const dir = tempDir(t);
  const lines = Array.from({ length: 80_000 }, (_, index) => `export const value${index} = ${index} * 2 + ${JSON.stringify('v'.repeat(20))}.length;`);
  writeFiles(dir, { 'huge.js': lines.join('\n') });
  const result = new SnapshotBuilder(dir).build();
  assert.ok(result.totalBytes > 4_000_000);
  assert.equal(result.content.modules['huge.js']!.exports.length, 80_000);
});

test('the build cache: a second builder of an unchanged folder transforms nothing; an edited or corrupted entry is transformed again', (t) => {
  const dir = tempDir(t);
  const cacheDir = tempDir(t);
  writeFiles(dir, { 'main.ts': 'import { a } from "./lib"; export const b: number = a + 1;', 'lib.ts': 'export const a: number = 1;', 'broken.js': 'let x; let x;' });
  const cache = transformCache(cacheDir);
  const first = new SnapshotBuilder(dir, { cache }).build();
  assert.deepEqual(first.transformed, ['broken.js', 'lib.ts', 'main.ts']);
  const second = new SnapshotBuilder(dir, { cache }).build();
  assert.deepEqual(second.transformed, [], 'every file came from the cache');
  assert.deepEqual(second.content.modules, first.content.modules, 'the same records, the broken file still marked');
  writeFiles(dir, { 'lib.ts': 'export const a: number = 2;' });
  assert.deepEqual(new SnapshotBuilder(dir, { cache }).build().transformed, ['lib.ts']);
  // Every entry file overwritten with garbage: each one is a miss, transformed and written again.
  for (const folder of readdirSync(cacheDir)) for (const name of readdirSync(join(cacheDir, folder))) writeFileSync(join(cacheDir, folder, name), '{"transform": {"code": 1}}');
  assert.deepEqual(new SnapshotBuilder(dir, { cache }).build().transformed, ['broken.js', 'lib.ts', 'main.ts']);
  assert.deepEqual(new SnapshotBuilder(dir, { cache }).build().transformed, []);
});

test('reach mode: a file added between builds is found by the next one (folder listings last one build)', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'main.js': "import { a } from './lib/a';\nexport const x = a;", 'lib/a.js': 'export const a = 1;' });
  const builder = new SnapshotBuilder(dir, { reach: ['main.js'] });
  const first = builder.build();
  assert.deepEqual(Object.keys(first.content.modules).sort(), ['lib/a.js', 'main.js']);
  // lib/a.ts now exists beside lib/a.js; the extensionless import prefers .ts (tried first).
  writeFiles(dir, { 'lib/a.ts': 'export const a: number = 2;' });
  builder.invalidate(['lib/a.ts', 'main.js']);
  const second = builder.build();
  assert.ok(Object.hasOwn(second.content.modules, 'lib/a.ts'), `found: ${Object.keys(second.content.modules).join(', ')}`);
});

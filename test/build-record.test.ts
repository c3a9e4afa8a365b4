// The build record (src/build/record.ts): a local run's second start takes its whole build from
// one file when nothing it depends on changed, and never takes a stale one. Each case changes
// the folder the way a user does and checks the next builder sees the change.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SnapshotBuilder, transformCache, type BuildOptions, type BuildResult } from '../src/build/index.ts';
import { openStore } from '../src/store/index.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';

interface Folder {
  readonly dir: string;
  readonly cacheDir: string;
  /** A new builder (a new start) of the folder, its first build, and its record written. */
  build(options?: Partial<BuildOptions>): BuildResult;
  /** The one record file. */
  record(): string;
}

function folder(t: Parameters<typeof tempDir>[0], files: Record<string, string>): Folder {
  const dir = tempDir(t);
  // A folder inside the test's own (as builds/ sits in a store): a record written after the test, whose parent is gone, is dropped.
  const cacheDir = join(tempDir(t), 'builds');
  writeFiles(dir, files);
  const cache = transformCache(cacheDir);
  return {
    dir,
    cacheDir,
    build(options = {}) {
      const builder = new SnapshotBuilder(dir, { reach: ['main.js'], cache, ...options });
      const result = builder.build();
      builder.flushRecord();
      return result;
    },
    record() {
      const names = readdirSync(join(cacheDir, 'records'));
      assert.equal(names.length, 1, `one record: ${names.join(', ')}`);
      return join(cacheDir, 'records', names[0]!);
    },
  };
}

/** What each module's code is, by path: what a run would execute. */
function codes(result: BuildResult): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [path, record] of Object.entries(result.content.modules)) out[path] = result.content.blobs.get(record.blob.hash)!.toString('utf8');
  return out;
}

const BASE = {
  'package.json': JSON.stringify({ name: 'app', type: 'module' }),
  'main.js': "import { a } from './lib/a';\nimport { b } from './lib/b.js';\nexport default a + b;",
  'lib/a.js': 'export const a = 1;',
  'lib/b.js': 'export const b = 2;',
  'broken.js': 'let x; let x;',
};

test('a second start takes the whole build from the record: same records, same code, nothing transformed', (t) => {
  const app = folder(t, BASE);
  const first = app.build();
  assert.equal(first.restored, undefined);
  const second = app.build();
  assert.equal(second.restored, true, 'taken from the record');
  assert.deepEqual(second.content.modules, first.content.modules);
  assert.deepEqual(codes(second), codes(first));
  assert.equal(second.content.entry, first.content.entry);
  assert.equal(second.content.name, 'app');
  assert.deepEqual(second.transformed, []);
  assert.deepEqual(second.changed, Object.keys(first.content.modules).sort(), 'a first build: every module is new to its builder');
  // A builder restored from the record goes on building incrementally.
  const builder = new SnapshotBuilder(app.dir, { reach: ['main.js'], cache: transformCache(app.cacheDir) });
  assert.equal(builder.build().restored, true);
  writeFiles(app.dir, { 'lib/b.js': 'export const b = 20;' });
  builder.invalidate(['lib/b.js']);
  const edited = builder.build();
  assert.deepEqual(edited.changed, ['lib/b.js']);
  assert.match(codes(edited)['lib/b.js']!, /20/);
});

test('an edit of the same size with the mtime put back is seen (ctime and inode), and only the edited file is transformed', (t) => {
  const app = folder(t, BASE);
  app.build();
  const file = join(app.dir, 'lib/a.js');
  const { atime, mtime } = statSync(file);
  writeFileSync(file, 'export const a = 7;');
  utimesSync(file, atime, mtime);
  const next = app.build();
  assert.notEqual(next.restored, true);
  assert.match(codes(next)['lib/a.js']!, /= 7/);
  assert.deepEqual(next.transformed, ['lib/a.js']);
  // And the record written by that build is whole again.
  assert.equal(app.build().restored, true);
});

test('a file changed within the timestamp granularity of the record is verified by its content', (t) => {
  const app = folder(t, BASE);
  app.build();
  // The file changes, and the record is made to hold the new file's identity with the old
  // content's hash: exactly what a same-tick rewrite leaves. The racy check reads it.
  writeFileSync(join(app.dir, 'lib/a.js'), 'export const a = 9;');
  const stats = statSync(join(app.dir, 'lib/a.js'));
  const kept = JSON.parse(readFileSync(app.record(), 'latin1')) as { modules: Array<Record<string, unknown>>; savedAt: number };
  const item = kept.modules.find((each) => each.path === 'lib/a.js')!;
  // …and as if the record had been written long after the file was looked at: what counts is when the file was seen.
  Object.assign(item, { size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, ino: stats.ino, seenAt: stats.ctimeMs - 500 });
  Object.assign(kept, { savedAt: Date.now() + 10_000 });
  writeFileSync(app.record(), JSON.stringify(kept));
  const next = app.build();
  assert.notEqual(next.restored, true);
  assert.match(codes(next)['lib/a.js']!, /= 9/);
});

test('a file added where resolution looks changes what an import resolves to', (t) => {
  const app = folder(t, BASE);
  assert.equal(app.build().content.modules['main.js']!.imports[0]!.module, 'lib/a.js');
  // lib/a.ts is tried before lib/a.js for './lib/a'.
  writeFiles(app.dir, { 'lib/a.ts': 'export const a: number = 5;' });
  const next = app.build();
  assert.notEqual(next.restored, true);
  assert.equal(next.content.modules['main.js']!.imports[0]!.module, 'lib/a.ts');
  // A folder that did not exist (./lib/a/index.js was a candidate) appearing is seen too.
  rmSync(join(app.dir, 'lib/a.ts'));
  rmSync(join(app.dir, 'lib/a.js'));
  app.build();
  writeFiles(app.dir, { 'lib/a/index.js': 'export const a = 6;' });
  const third = app.build();
  assert.notEqual(third.restored, true);
  assert.equal(third.content.modules['main.js']!.imports[0]!.module, 'lib/a/index.js');
});

test('a removed module, a re-pointed symlink and a changed package.json are each seen', (t) => {
  const app = folder(t, { ...BASE, 'lib/v1.js': 'export const b = 1;', 'lib/v2.js': 'export const b = 2;', 'main.js': "import { a } from './lib/a.js';\nimport { b } from './lib/cur.js';\nexport default a + b;" });
  symlinkSync('v1.js', join(app.dir, 'lib/cur.js'));
  assert.match(codes(app.build())['lib/cur.js']!, /b = 1/);
  // ln -sf: a new link renamed over the old one.
  symlinkSync('v2.js', join(app.dir, 'lib/cur.tmp'));
  renameSync(join(app.dir, 'lib/cur.tmp'), join(app.dir, 'lib/cur.js'));
  const repointed = app.build();
  assert.notEqual(repointed.restored, true);
  assert.match(codes(repointed)['lib/cur.js']!, /b = 2/);

  writeFiles(app.dir, { 'package.json': JSON.stringify({ name: 'renamed', type: 'module' }) });
  assert.equal(app.build().content.name, 'renamed');

  unlinkSync(join(app.dir, 'lib/a.js'));
  const removed = app.build();
  assert.notEqual(removed.restored, true);
  assert.equal(removed.content.modules['main.js']!.imports[0]!.kind, 'unresolved');
  assert.equal(removed.unresolved.length, 1);
});

test('a damaged, truncated or foreign record is a build, never an error; other options keep a record of their own', (t) => {
  const app = folder(t, BASE);
  const first = app.build();
  const text = readFileSync(app.record(), 'latin1');
  for (const damaged of ['not json', text.slice(0, text.length / 2), JSON.stringify({ version: 1, key: 'other' }), JSON.stringify({ ...JSON.parse(text), modules: [{ path: 'main.js' }] })]) {
    writeFileSync(app.record(), damaged);
    const next = app.build();
    assert.notEqual(next.restored, true);
    assert.deepEqual(next.content.modules, first.content.modules);
  }
  assert.equal(app.build().restored, true, 'the build rewrote it');
  // Another entry is another record: the first stays.
  writeFiles(app.dir, { 'other.js': "export { a } from './lib/a.js';" });
  const other = app.build({ reach: ['other.js'] });
  assert.deepEqual(Object.keys(other.content.modules).sort(), ['lib/a.js', 'other.js', 'package.json']);
  assert.equal(readdirSync(join(app.cacheDir, 'records')).length, 2);
  assert.equal(app.build({ reach: ['other.js'] }).restored, true);
});

test('non-ASCII source survives the record (it is written as ASCII and read as latin1)', (t) => {
  const app = folder(t, { ...BASE, 'lib/b.js': 'export const b = "héllo ☃ 😀";' });
  const first = app.build();
  assert.ok(readFileSync(app.record()).every((byte) => byte < 0x80), 'the record is ASCII');
  const second = app.build();
  assert.equal(second.restored, true);
  assert.deepEqual(codes(second), codes(first));
  assert.match(codes(second)['lib/b.js']!, /héllo ☃ 😀/);
});

test('strict: a record with an unresolved import still fails the build', (t) => {
  const app = folder(t, { ...BASE, 'main.js': "import { z } from './missing.js';\nexport default z;" });
  app.build();
  assert.throws(() => app.build({ strict: true }), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_UNRESOLVED_IMPORT');
  // The non-strict record is taken whole, and keeps reporting the import.
  const again = app.build();
  assert.equal(again.restored, true);
  assert.equal(again.unresolved[0]!.specifier, './missing.js');
});

test('cache prune removes build cache files idle for a month, and keeps the rest', (t) => {
  const dir = tempDir(t);
  const storeDir = tempDir(t);
  writeFiles(dir, BASE);
  const builder = new SnapshotBuilder(dir, { reach: ['main.js'], cache: transformCache(join(storeDir, 'builds')) });
  builder.build();
  builder.flushRecord();
  const files = (readdirSync(join(storeDir, 'builds'), { recursive: true }) as string[]).filter((name) => statSync(join(storeDir, 'builds', name)).isFile());
  assert.ok(files.length >= 5, `transforms and a record: ${files.join(', ')}`);
  const old = new Date(Date.now() - 31 * 24 * 3600 * 1000);
  for (const name of files.slice(0, 2)) utimesSync(join(storeDir, 'builds', name), old, old);
  const store = openStore({ dir: storeDir });
  assert.equal(store.prune({ dryRun: true }).builds, 2);
  assert.equal(store.prune().builds, 2);
  assert.equal(store.prune().builds, 0);
  const left = (readdirSync(join(storeDir, 'builds'), { recursive: true }) as string[]).filter((name) => statSync(join(storeDir, 'builds', name)).isFile());
  assert.deepEqual(left.sort(), files.slice(2).sort());
});

test('files verified by content because they were written just before the record settle: the record is written again, then left alone', async (t) => {
  const app = folder(t, BASE);
  app.build();
  const savedAt = (): number => (JSON.parse(readFileSync(app.record(), 'latin1')) as { savedAt: number }).savedAt;
  const first = savedAt();
  // Every file was written within the racy window of the first record: read, found the same, and the record rewritten.
  await new Promise((resolve) => setTimeout(resolve, 2100));
  assert.equal(app.build().restored, true);
  const second = savedAt();
  assert.ok(second > first, 'rewritten after verifying racy files');
  // Now every file is older than the window: nothing is read, nothing rewritten.
  assert.equal(app.build().restored, true);
  assert.equal(savedAt(), second);
});

test('a listed path resolution passed over that becomes a module is seen: a file shrunk under the size limit, a broken symlink mended, a folder turned file', (t) => {
  const cases: Array<{ files: Record<string, string>; setup?: (dir: string) => void; change: (dir: string) => void; options?: Partial<BuildOptions>; check: (result: BuildResult) => void }> = [
    {
      files: { 'main.js': "import { x } from './big.js';\nexport default x;", 'big.js': `export const x = 1;${' '.repeat(200)}` },
      options: { maxFileBytes: 100 },
      change: (dir) => writeFileSync(join(dir, 'big.js'), 'export const x = 1;'),
      check: (result) => assert.ok(Object.hasOwn(result.content.modules, 'big.js')),
    },
    {
      files: { 'main.js': "import { x } from './gen.js';\nexport default x;", 'out/keep.txt': '' },
      setup: (dir) => symlinkSync('out/gen.js', join(dir, 'gen.js')),
      change: (dir) => writeFileSync(join(dir, 'out/gen.js'), 'export const x = 1;'),
      check: (result) => assert.ok(Object.hasOwn(result.content.modules, 'gen.js')),
    },
    {
      files: { 'main.js': "import { x } from './util';\nexport default x;", 'util.js': 'export const x = 1;', 'util.ts/keep.txt': '' },
      change: (dir) => {
        rmSync(join(dir, 'util.ts'), { recursive: true });
        writeFileSync(join(dir, 'util.ts'), 'export const x: number = 2;');
      },
      check: (result) => assert.equal(result.content.modules['main.js']!.imports[0]!.module, 'util.ts'),
    },
  ];
  for (const item of cases) {
    const app = folder(t, { 'package.json': JSON.stringify({ name: 'app', type: 'module' }), ...item.files });
    item.setup?.(app.dir);
    app.build(item.options);
    assert.equal(app.build(item.options).restored, true, 'unchanged: taken whole');
    item.change(app.dir);
    const next = app.build(item.options);
    assert.notEqual(next.restored, true);
    item.check(next);
  }
});

// V8's code cache for live modules, kept in the store: written after a run, used by the next
// start (V8 deserialises instead of compiling), and a refused entry dropped and written again.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { cachedDataVersionTag } from 'node:v8';
import { SnapshotBuilder } from '../src/build/index.ts';
import { connect, openFolder } from '../src/client/index.ts';
import { sha256Hex, signSnapshot } from '../src/snapshot/index.ts';
import { startServer } from './helpers/server-fixtures.ts';
import { codeCacheStats, flushCodeCache } from '../src/runtime/index.ts';
import { compileModule } from '../src/runtime/compile.ts';
import type { ModuleCodeCache } from '../src/runtime/source.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { openStore } from '../src/store/index.ts';
import { runPackKey } from '../src/store/run-pack.ts';
import { transformCache } from '../src/build/cache.ts';

function entries(cache: string): string[] {
  const dir = join(cache, 'code', cachedDataVersionTag().toString(16));
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

test('a start writes the code cache, the next start uses it, and an entry V8 refuses is dropped and written again', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': '{"name":"cached"}',
    'main.ts': `import { twice } from './lib';\nexport const value = twice(21);\n`,
    'lib.ts': `export function twice(n: number): number {\n  return [n, n].reduce((a, b) => a + b, 0);\n}\n`,
  });
  const cache = tempDir(t);
  const first = codeCacheStats();
  assert.equal(((await (await openFolder(join(dir, 'main.ts'), { cache })).import()) as { value: number }).value, 42);
  flushCodeCache();
  assert.equal(codeCacheStats().written - first.written, 2, 'one entry per module');
  // The start's run pack at once, the entries per module a moment later (the process runs on).
  assert.equal(readdirSync(join(cache, 'runs')).length, 1, 'one run pack for the start');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(entries(cache).length, 2);

  const before = codeCacheStats();
  assert.equal(((await (await openFolder(join(dir, 'main.ts'), { cache })).import()) as { value: number }).value, 42);
  assert.equal(codeCacheStats().used - before.used, 2, 'both modules deserialised, none compiled');

  // Without the run pack, the entries per module are read; each refused by V8 is dropped.
  rmSync(join(cache, 'runs'), { recursive: true });
  for (const file of entries(cache)) writeFileSync(file, Buffer.from('not V8 cached data at all'));
  const broken = codeCacheStats();
  assert.equal(((await (await openFolder(join(dir, 'main.ts'), { cache })).import()) as { value: number }).value, 42, 'a refused entry costs a compile, nothing else');
  assert.equal(codeCacheStats().rejected - broken.rejected, 2);
  flushCodeCache();
  await new Promise((resolve) => setTimeout(resolve, 20));
  rmSync(join(cache, 'runs'), { recursive: true });
  const again = codeCacheStats();
  assert.equal(((await (await openFolder(join(dir, 'main.ts'), { cache })).import()) as { value: number }).value, 42);
  assert.equal(codeCacheStats().used - again.used, 2, 'written again after the refusal');
});

test('a remote start writes its run pack (its blobs and code cache in one file); the next start uses it; a damaged pack is dropped and the blobs read one by one', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'package.json': '{"name":"packed"}', 'main.ts': `import { twice } from './lib';\nexport const value = twice(21);\n`, 'lib.ts': `export const twice = (n: number): number => n * 2;\n` });
  const running = await startServer(t);
  running.server.publish(signSnapshot(new SnapshotBuilder(dir).build().content, running.key));
  const cache = tempDir(t);
  const options = { publicKey: running.key.publicKeyString, cache, notice: () => {} };
  assert.equal(((await (await connect(`${running.url}/main.ts`, options)).import()) as { value: number }).value, 42);
  flushCodeCache();
  const packs = readdirSync(join(cache, 'runs'));
  assert.equal(packs.length, 1);

  const before = codeCacheStats();
  assert.equal(((await (await connect(`${running.url}/main.ts`, options)).import()) as { value: number }).value, 42);
  assert.equal(codeCacheStats().used - before.used, 2, 'both modules deserialised from the pack');
  assert.equal(codeCacheStats().written, before.written, 'nothing written again');
  // The start that hashed the pack recorded the file it hashed: the next start takes that very file as checked.
  const record = join(cache, 'runs', packs[0]!.replace(/\.pack$/, '.checked'));
  const stat = statSync(join(cache, 'runs', packs[0]!), { bigint: true });
  assert.equal(readFileSync(record, 'latin1'), `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`);
  assert.equal(((await (await connect(`${running.url}/main.ts`, options)).import()) as { value: number }).value, 42);
  assert.equal(statSync(join(cache, 'runs', packs[0]!), { bigint: true }).ctimeNs, stat.ctimeNs, 'a recorded pack is marked used through its record, so its identity holds');
  // cache verify drops the records: the next read hashes each pack again.
  openStore({ dir: cache }).verify();
  assert.ok(!existsSync(record));
  assert.equal(((await (await connect(`${running.url}/main.ts`, options)).import()) as { value: number }).value, 42);
  assert.ok(existsSync(record), 'hashed and recorded again');

  // A pack whose blob bytes changed fails its hash check: dropped, and the start reads the blobs as before.
  const path = join(cache, 'runs', packs[0]!);
  const bytes = readFileSync(path);
  bytes[4 + bytes.readUInt32BE(0)]! ^= 0xff; // the first byte of the first blob
  writeFileSync(path, bytes);
  const damaged = await connect(`${running.url}/main.ts`, options);
  assert.equal(((await damaged.import()) as { value: number }).value, 42);
  // Every module deserialised from its own entry: the pack is written again a second after the start.
  for (let waited = 0; !existsSync(path) && waited < 10_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(existsSync(path), 'written again');
  assert.notDeepEqual(readFileSync(path), bytes);
  assert.ok(!existsSync(record), 'the record of the damaged pack went with it');
});

test('prune keeps a run pack whose record a start marked used, though the pack itself is old, and removes records whose pack is gone', (t) => {
  const cache = tempDir(t);
  const store = openStore({ dir: cache });
  const hash = sha256Hex('blob');
  const key = runPackKey([hash]);
  store.writeRunPack(key, new Map([[hash, { blob: Buffer.from('blob'), cache: null }]]));
  assert.equal(store.readRunPack(key)?.get(hash)?.blob?.toString(), 'blob');
  const pack = join(cache, 'runs', `${key}.pack`);
  const record = join(cache, 'runs', `${key}.checked`);
  assert.ok(existsSync(record));
  const old = new Date(Date.now() - 30 * 24 * 3600 * 1000);
  utimesSync(pack, old, old);
  // Old pack, fresh record: the record holds the pack's identity as it was hashed, so it no longer matches (utimes moved ctime); kept anyway for its recent use.
  assert.equal(store.prune().codeCache, 0);
  assert.ok(existsSync(pack));
  utimesSync(record, old, old);
  assert.equal(store.prune().codeCache, 1, 'the pack, its record with it');
  assert.ok(!existsSync(pack) && !existsSync(record), 'both idle: both removed');
  writeFileSync(record, '1:2:3:4:5');
  store.prune();
  assert.ok(!existsSync(record), 'a record without its pack is removed');
});

test('modules that keep compiling (a hot swap every 200 ms) do not postpone the code cache for ever: it is written within seconds of the first, so the scripts waiting for it are let go', async () => {
  flushCodeCache();
  const written: number[] = [];
  const cache: ModuleCodeCache = { get: () => undefined, put: () => void written.push(Date.now()), drop: () => {} };
  const started = Date.now();
  let last = started;
  for (let index = 0; Date.now() - started < 5_000; index += 1) {
    compileModule(Buffer.from(`"use strict";yield;const v${index} = ${index};`), 0, `file:///swap-${index}.js`, false, { cache, hash: `swap-${index}` });
    last = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.ok(written.some((at) => at < last), `written while modules kept compiling (${written.length} entries, none before the last compile)`);
  flushCodeCache();
});

test('a store removed while the program ran is not made again by a code cache entry, a run pack or a build cache entry', (t) => {
  const parent = tempDir(t);
  const dir = join(parent, 'store');
  const store = openStore({ dir });
  const hash = 'ab'.repeat(32);
  const builds = transformCache(join(dir, 'builds'));
  // As before while the store is there.
  store.codeCache().put(hash, Buffer.from('cache'));
  assert.deepEqual(store.codeCache().get(hash), Buffer.from('cache'));
  rmSync(dir, { recursive: true, force: true });
  store.codeCache().put(hash, Buffer.from('cache'));
  store.writeRunPack(runPackKey([hash]), new Map([[hash, { blob: Buffer.from('blob'), cache: Buffer.from('cache') }]]));
  builds.saveRecord!('a'.repeat(40), '{}');
  builds.set('main.js', hash, { transform: null, error: { message: 'x' } } as never);
  assert.equal(existsSync(dir), false, `the removed store came back: ${existsSync(dir) ? readdirSync(dir).join(', ') : ''}`);
});

test('a build cache whose store does not exist yet makes it with its first entry (a first local run)', (t) => {
  const dir = join(tempDir(t), 'new-store');
  const builds = transformCache(join(dir, 'builds'));
  const entry = { transform: null, error: { message: 'x' } } as never;
  builds.set('main.js', 'cd'.repeat(32), entry);
  assert.deepEqual(builds.get('main.js', 'cd'.repeat(32)), entry);
  assert.equal(existsSync(join(dir, 'builds')), true);
});

test('a run pack is named by the set of its blobs: any order, duplicates once, another set another name; only blob hashes name one', () => {
  const hashes = ['a', 'b', 'c', 'd'].map((text) => sha256Hex(text));
  const key = runPackKey(hashes);
  assert.match(key, /^[0-9a-f]{32}-[0-9a-f]{1,16}$/);
  assert.equal(runPackKey([...hashes].reverse()), key);
  assert.equal(runPackKey([...hashes, hashes[0]!]), key);
  const names = new Set([key, runPackKey(hashes.slice(0, 3)), runPackKey(hashes.slice(1)), runPackKey([]), runPackKey([hashes[0]!]), runPackKey([sha256Hex('e'), ...hashes])]);
  assert.equal(names.size, 6);
  assert.throws(() => runPackKey(['not a hash']), TypeError);
});

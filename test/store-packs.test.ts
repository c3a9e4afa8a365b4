// Blob packs (src/store/packs.ts): a sync's module blobs in one file, with every promise blob
// files keep — verified reads, a commit only when complete, damage removed and reported, prune
// and verify — on a real store folder, and through a real cold start.
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { manifestBlobs, sha256Hex } from '../src/snapshot/index.ts';
import { STORE_CHANNEL, openStore, type Store } from '../src/store/index.ts';
import { SnapshotBuilder } from '../src/build/index.ts';
import { signSnapshot } from '../src/snapshot/index.ts';
import { cli, runAsync } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { startServer } from './helpers/server-fixtures.ts';
import { buildVersions, type Versions } from './helpers/store-fixtures.ts';

const ORIGIN = 'http://127.0.0.1:8080/app/';

let shared: Versions | undefined;
function versions(): Versions {
  if (!shared) {
    const dir = tempDir({ after: (fn) => process.once('exit', fn) }, 'livemod-packs-tree-');
    shared = buildVersions(dir, { modules: 20, versions: 2 });
  }
  return shared;
}

function packs(store: Store): string[] {
  try {
    return readdirSync(join(store.dir, 'packs'));
  } catch {
    return [];
  }
}

function blobFiles(store: Store): number {
  try {
    return readdirSync(join(store.dir, 'blobs'), { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()).length;
  } catch {
    return 0;
  }
}

/** Version `index`'s blobs, all written as one pack. */
function writePacked(store: Store, v: Versions, index: number): Map<string, Buffer> {
  const blobs = new Map(v.snapshots[index]!.blobs);
  store.writeBlobs(blobs);
  return blobs;
}

test('a pack holds many blobs in one file: read verified, present for has/missing, and enough for a commit', (t) => {
  const v = versions();
  const store = openStore({ dir: tempDir(t) });
  const blobs = writePacked(store, v, 0);
  assert.ok(blobs.size >= 8);
  assert.equal(packs(store).length, 1);
  assert.equal(blobFiles(store), 0, 'no blob files');
  for (const [hash, bytes] of blobs) {
    assert.ok(store.hasBlob(hash));
    assert.deepEqual(store.readBlob(hash), bytes);
  }
  assert.deepEqual(store.missingBlobs(blobs.keys()), []);
  const snapshot = v.snapshots[0]!;
  assert.equal(store.commitManifest(ORIGIN, { bytes: snapshot.sealed.bytes, manifest: snapshot.manifest, etag: null }).version, snapshot.manifest.version);
  // Another process (a new store object) finds the packed blobs from the packs' headers.
  const other = openStore({ dir: store.dir });
  for (const [hash, bytes] of blobs) assert.deepEqual(other.readBlob(hash), bytes);
  assert.equal(other.list().blobs, blobs.size);
  // A few blobs are not worth a pack: blob files.
  const few = new Map([...v.snapshots[1]!.blobs].filter(([hash]) => !blobs.has(hash)).slice(0, 3));
  store.writeBlobs(few);
  assert.equal(packs(store).length, 1);
  assert.equal(blobFiles(store), few.size);
});

test('bytes that do not hash to their name are refused whole: no pack is written', (t) => {
  const v = versions();
  const store = openStore({ dir: tempDir(t) });
  const blobs = new Map(v.snapshots[0]!.blobs);
  const first = [...blobs.keys()][0]!;
  blobs.set(first, Buffer.from('not these bytes'));
  assert.throws(() => store.writeBlobs(blobs), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_HASH_MISMATCH');
  assert.deepEqual(packs(store), []);
  assert.deepEqual(readdirSync(join(store.dir, 'tmp')), [], 'nothing half-written');
});

test('a tampered pack reads as absent, is removed whole, and the removal is reported; verify finds one too', (t) => {
  const v = versions();
  const store = openStore({ dir: tempDir(t) });
  const blobs = writePacked(store, v, 0);
  const file = join(store.dir, 'packs', packs(store)[0]!);
  const bytes = readFileSync(file);
  bytes[bytes.length - 1]! ^= 0xff;
  writeFileSync(file, bytes);
  const events: unknown[] = [];
  const listener = (message: unknown): void => void events.push(message);
  subscribe(STORE_CHANNEL, listener);
  t.after(() => unsubscribe(STORE_CHANNEL, listener));
  const reader = openStore({ dir: store.dir });
  const results = [...blobs.keys()].map((hash) => reader.readBlob(hash));
  assert.ok(results.some((result) => result === null), 'the damaged blob is not returned');
  assert.deepEqual(packs(store), [], 'the pack is gone');
  assert.ok(reader.takeEvents().some((event) => event.type === 'blob-removed'));
  assert.ok(events.length > 0, 'published on the diagnostics channel');
  assert.equal(reader.missingBlobs(blobs.keys()).length, blobs.size, 'all refetched next time');

  writePacked(store, v, 0);
  const again = join(store.dir, 'packs', packs(store)[0]!);
  const damaged = readFileSync(again);
  damaged[damaged.length - 2]! ^= 0xff;
  writeFileSync(again, damaged);
  const report = openStore({ dir: store.dir }).verify();
  assert.deepEqual(report.corrupt, [`packs/${again.split('/').pop()}`]);
  assert.deepEqual(packs(store), []);
  // A pack whose header is garbage holds nothing; reading the headers (ls, has) leaves it, verify removes it.
  writeFileSync(join(store.dir, 'packs', `${'a'.repeat(32)}.pack`), 'garbage');
  assert.equal(openStore({ dir: store.dir }).hasBlob([...blobs.keys()][0]!), false);
  assert.equal(openStore({ dir: store.dir }).list().blobs, 0);
  assert.equal(packs(store).length, 1, 'ls removes nothing');
  assert.deepEqual(openStore({ dir: store.dir }).verify().corrupt, [`packs/${'a'.repeat(32)}.pack`]);
  assert.deepEqual(packs(store), []);
});

test("another process's packs: one written later is found, one pruned meanwhile is missing again and fails a commit", (t) => {
  const v = versions();
  const dir = tempDir(t);
  const reader = openStore({ dir });
  // The reader indexes the (empty) packs first, as a long-running process does.
  assert.equal(reader.hasBlob([...v.snapshots[0]!.blobs.keys()][0]!), false);
  const writer = openStore({ dir });
  const blobs = writePacked(writer, v, 0);
  // missingBlobs looks at packs/ again once per call, not per blob: the new pack is found.
  assert.deepEqual(reader.missingBlobs(blobs.keys()), []);
  for (const [hash, bytes] of blobs) assert.deepEqual(reader.readBlob(hash), bytes, 'a pack written by another process is found');
  // Another process removes the pack (a prune of blobs no manifest needed yet).
  const pruner = openStore({ dir });
  const hourAgo = new Date(Date.now() - 3600_000);
  utimesSync(join(dir, 'packs', packs(writer)[0]!), hourAgo, hourAgo);
  assert.equal(pruner.prune().removed, blobs.size);
  assert.deepEqual(reader.missingBlobs(blobs.keys()).sort(), [...blobs.keys()].sort(), 'the reader sees they are gone');
  const snapshot = v.snapshots[0]!;
  assert.throws(() => reader.commitManifest(ORIGIN, { bytes: snapshot.sealed.bytes, manifest: snapshot.manifest, etag: null }), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_STORE_INCOMPLETE');
});

test("missingBlobs sees a blob file another process wrote in a blob folder that did not exist at its last call", (t) => {
  const dir = tempDir(t);
  const reader = openStore({ dir });
  const writer = openStore({ dir });
  const bytes = Buffer.from('a blob written as a file\n');
  const hash = sha256Hex(bytes);
  assert.deepEqual(reader.missingBlobs([hash]), [hash]);
  assert.ok(!existsSync(join(dir, 'blobs', hash.slice(0, 2))), 'its folder is made by the write below');
  writer.writeBlob(hash, bytes);
  assert.deepEqual(reader.missingBlobs([hash, hash]), []);
});

test('prune keeps a pack any manifest needs a blob of, and removes one none needs once past the grace period', (t) => {
  const v = versions();
  const store = openStore({ dir: tempDir(t) });
  const old = writePacked(store, v, 0);
  const current = writePacked(store, v, 1);
  assert.equal(packs(store).length, 2);
  const snapshot = v.snapshots[1]!;
  store.commitManifest(ORIGIN, { bytes: snapshot.sealed.bytes, manifest: snapshot.manifest, etag: null });
  // Version 0's pack shares blobs with version 1 (unchanged modules): it is needed too.
  assert.equal(store.prune({ graceMs: 0 }).removed, 0);
  assert.equal(packs(store).length, 2);
  // A pack of blobs nothing needs: young, then past the grace period.
  const stray = new Map<string, Buffer>();
  for (let index = 0; index < 10; index += 1) {
    const bytes = Buffer.from(`stray blob ${index}`);
    stray.set(sha256Hex(bytes), bytes);
  }
  store.writeBlobs(stray);
  assert.equal(packs(store).length, 3);
  const young = store.prune();
  assert.equal(young.removed, 0);
  assert.ok(young.young >= stray.size);
  const name = packs(store).find((each) => readFileSync(join(store.dir, 'packs', each)).includes('stray blob 0'))!;
  assert.ok(old.size > 0 && current.size > 0 && name);
  const hourAgo = new Date(Date.now() - 3600_000);
  utimesSync(join(store.dir, 'packs', name), hourAgo, hourAgo);
  assert.equal(store.prune({ dryRun: true }).removed, stray.size);
  assert.equal(packs(store).length, 3, 'a dry run removes nothing');
  // Planning a fetch that finds a packed blob marks its pack in use.
  assert.deepEqual(store.missingBlobs([[...stray.keys()][0]!]), []);
  assert.equal(store.prune().removed, 0, 'marked in use: spared');
  utimesSync(join(store.dir, 'packs', name), hourAgo, hourAgo);
  assert.equal(store.prune().removed, stray.size);
  assert.equal(packs(store).length, 2);
  for (const hash of manifestBlobs(snapshot.manifest).map((ref) => ref.hash)) assert.ok(store.readBlob(hash), 'needed blobs stay');
});

test('a cold start stores its module blobs as one pack and its files as blob files; warm, offline and cache verify agree', async (t) => {
  const dir = tempDir(t);
  const files: Record<string, string> = { 'package.json': JSON.stringify({ name: 'packed-app', type: 'module' }), 'main.js': '' };
  const imports: string[] = [];
  for (let index = 0; index < 12; index += 1) {
    files[`lib/m${index}.js`] = `export const v${index} = ${index};`;
    imports.push(`import { v${index} } from './lib/m${index}.js';`);
  }
  files['main.js'] = `${imports.join('\n')}\nconsole.log('sum', ${Array.from({ length: 12 }, (_, index) => `v${index}`).join(' + ')});`;
  writeFiles(dir, files);
  const running = await startServer(t);
  running.server.publish(signSnapshot(new SnapshotBuilder(dir, { program: { externals: 'bundle', external: [] } }).build().content, running.key));
  const cache = tempDir(t);
  const run = (...extra: string[]): ReturnType<typeof runAsync> => runAsync(['run', `${running.url}/main.js`, '--key', running.key.publicKeyString, '--cache', cache, ...extra]);
  const cold = await run();
  assert.equal(cold.status, 0, cold.stderr);
  assert.equal(cold.stdout.trim(), 'sum 66');
  const store = openStore({ dir: cache });
  assert.equal(packs(store).length, 1, 'the module code and maps in one pack');
  // The pack holds code and maps of 13 modules; blob files are the program's files (13 sources,
  // package.json) and the manifest's own bytes.
  assert.ok(blobFiles(store) <= 16, `blob files: ${blobFiles(store)}`);
  assert.equal((await run()).stdout.trim(), 'sum 66', 'warm');
  assert.equal((await run('--offline')).stdout.trim(), 'sum 66', 'offline');
  const verify = cli(['cache', 'verify', '--cache', cache, '--json']);
  assert.equal(verify.status, 0, verify.stderr);
  assert.deepEqual(JSON.parse(verify.stdout).corrupt, []);
});

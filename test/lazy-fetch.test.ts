// A URL run in lazy mode fetches what the start runs eagerly, and each lazily imported graph in
// one batch at its first read, while the read waits (a worker thread fetches; src/client/fetch-sync.ts).
// The client runs as `livemod run` in a child process: the server answers from this process.
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { SnapshotBuilder } from '../src/build/index.ts';
import { connect } from '../src/client/index.ts';
import { fetchSync } from '../src/client/fetch-sync.ts';
import { createRequestHandler, resolveServerOptions, SnapshotStore } from '../src/server/index.ts';
import { generatePublisherKey, signSnapshot, type Manifest } from '../src/snapshot/index.ts';
import { openStore } from '../src/store/index.ts';
import { runAsync } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { startServer } from './helpers/server-fixtures.ts';
import { startServerThread } from './helpers/server-thread.ts';

const FILES = {
  'package.json': '{"name":"lazy-fetch"}',
  'main.ts': [
    "import { a } from './a';",
    "import { b } from './lazy/b';",
    "console.log(process.argv.includes('touch') ? a + b : a);",
  ].join('\n'),
  'a.ts': "export const a = 'a';\n",
  'lazy/b.ts': "import { c } from './c';\nexport const b = 'b' + c;\n",
  'lazy/c.ts': "export const c = 'c';\n",
};

test('livemod run URL --lazy: an untouched lazy graph is never fetched; its first read fetches it in one batch; offline, a graph never fetched fails at the read', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, FILES);
  const running = await startServer(t);
  const snapshot = signSnapshot(new SnapshotBuilder(dir).build().content, running.key);
  running.server.publish(snapshot);
  const { manifest } = snapshot;
  const cache = tempDir(t);
  const run = (...args: string[]): ReturnType<typeof runAsync> => runAsync(['run', `${running.url}/main.ts`, '--lazy', '--once', '--key', running.key.publicKeyString, '--cache', cache, ...args]);
  const stored = (path: string): boolean => openStore({ dir: cache }).missingBlobs([manifest.modules[path]!.blob.hash]).length === 0;

  const untouched = await run();
  assert.equal(untouched.stdout, 'a\n', untouched.stderr);
  assert.ok(stored('main.ts') && stored('a.ts'));
  assert.ok(!stored('lazy/b.ts') && !stored('lazy/c.ts'), 'the lazy graph is not fetched by a run that never reads it');

  // Offline, the graph never fetched fails at its read, saying so; the eager part runs.
  assert.equal((await run('--offline')).stdout, 'a\n');
  const offline = await run('--offline', 'touch');
  assert.notEqual(offline.status, 0);
  assert.match(offline.stderr, /lazy import of lazy\/b\.ts .*running offline, but module "lazy\/b\.ts" \(and 1 more\) of cached version \d+ is not in the cache/);

  const batches = (): string[] => running.logs.filter((line) => /\bbatch: /.test(line));
  const before = batches().length;
  const touched = await run('touch');
  assert.equal(touched.stdout, 'abc\n', touched.stderr);
  assert.deepEqual(batches().slice(before).map((line) => /batch: (\d+) blobs/.exec(line)?.[1]), ['2'], 'one batch: the code of lazy/b.ts and lazy/c.ts (source maps come when a stack needs one)');
  assert.ok(stored('lazy/b.ts') && stored('lazy/c.ts'), 'fetched at the first read, graph and all');
  assert.equal((await run('--offline', 'touch')).stdout, 'abc\n', 'and kept for the next runs');

  // A cold start that reads it: the eager batch at start, the lazy one at the read.
  const cold = tempDir(t);
  const first = await runAsync(['run', `${running.url}/main.ts`, '--lazy', '--once', '--key', running.key.publicKeyString, '--cache', cold, 'touch']);
  assert.equal(first.stdout, 'abc\n', first.stderr);

  // The origin gone after a start that never read the graph: the start runs from the cache, and the read fails saying why.
  const later = tempDir(t);
  const args = ['run', `${running.url}/main.ts`, '--lazy', '--once', '--key', running.key.publicKeyString, '--cache', later];
  assert.equal((await runAsync(args)).stdout, 'a\n');
  await running.server.close();
  const down = await runAsync([...args, 'touch']);
  assert.notEqual(down.status, 0);
  assert.match(down.stderr, /lazy import of lazy\/b\.ts .*failed at its first read.*(ECONNREFUSED|refused|could not connect|cannot reach)/i);
});

test('a client whose origin is a server of its own process fetches lazy graphs at start: a read never waits on a thread the server needs', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { ...FILES, 'main.ts': "import { a } from './a';\nimport { b } from './lazy/b';\nexport const read = () => a + b;\n" });
  const running = await startServer(t);
  const snapshot = signSnapshot(new SnapshotBuilder(dir).build().content, running.key);
  running.server.publish(snapshot);
  const cache = tempDir(t);
  const app = await connect(`${running.url}/main.ts`, { publicKey: running.key.publicKeyString, cache, lazy: 'normal', notice: () => {} });
  assert.equal(openStore({ dir: cache }).missingBlobs([snapshot.manifest.modules['lazy/b.ts']!.blob.hash]).length, 0, 'fetched with the start');
  const main = (await app.import()) as unknown as { read(): string };
  const started = performance.now();
  assert.equal(main.read(), 'abc');
  assert.ok(performance.now() - started < 5000, 'the read did not wait for a fetch');
  await app.close();
});

test('the fetch thread reports a failure with a long message as a LivemodError, cut to a readable length', (t) => {
  const hash = 'a'.repeat(64);
  const manifest = { version: 1, name: 'app', entry: 'm.js', keyId: 'k', created: '', expires: '', modules: { 'm.js': { blob: { hash, size: 1 }, map: null, imports: [], exports: [], star: [], tla: false } } } as unknown as Manifest;
  const base = `http://127.0.0.1:1/${'x'.repeat(5000)}/`;
  assert.throws(
    () => fetchSync({ base, manifest, hashes: [hash], capabilities: {}, publicKey: '', headers: {}, timeoutMs: 3000, storeDir: tempDir(t) }),
    (error: Error & { code?: string }) => error.name === 'LivemodError' && typeof error.code === 'string' && error.code.startsWith('ERR_LIVEMOD_') && error.message.length < 1200,
  );
});

test('a lazy graph whose first read failed is fetched from the version a swap brings; one the origin no longer serves says to restart', async (t) => {
  const v1 = tempDir(t);
  const v2 = tempDir(t);
  const base = { 'package.json': '{"name":"lazy-swap"}', 'main.ts': "import { b } from './b';\nexport const read = () => b;\n" };
  writeFiles(v1, { ...base, 'b.ts': "if (!(globalThis as Record<string, unknown>).bReady) throw new Error('b not ready');\nexport const b = 'v1';\n" });
  writeFiles(v2, { ...base, 'b.ts': "export const b = 'v2';\n" });
  const server = await startServerThread(t, v1, { keepVersions: 1 });
  const app = await connect(`${server.url}/main.ts`, { publicKey: server.publicKey, cache: tempDir(t), lazy: 'normal', notice: () => {} });
  const main = (await app.import()) as unknown as { read(): string };
  assert.throws(() => main.read(), /b not ready; the next read tries it again/);
  await server.publish(v2);
  await app.update();
  assert.equal(main.read(), 'v2', 'the new version fetched b at the read');
  await app.close();

  // A run that stays on its version (no update) after the origin moved on: the read says why it cannot be had.
  const v3 = tempDir(t);
  writeFiles(v3, { ...base, 'b.ts': "export const b = 'v3';\n" });
  const pinned = await connect(`${server.url}/main.ts`, { publicKey: server.publicKey, cache: tempDir(t), lazy: 'normal', notice: () => {} });
  const stale = (await pinned.import()) as unknown as { read(): string };
  await server.publish(v3);
  assert.throws(() => stale.read(), /the origin no longer serves version \d+.*restart the program/);
  await pinned.close();
});

test('a first read whose origin stopped answering fails after one fetch: the message it builds does not wait for source maps', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'package.json': '{"name":"silent"}', 'main.ts': "import { b } from './b';\nexport const read = () => b;\n", 'b.ts': "export const b: string = 'b';\n" });
  const server = await startServerThread(t, dir);
  const notices: string[] = [];
  const app = await connect(`${server.url}/main.ts`, { publicKey: server.publicKey, cache: tempDir(t), lazy: 'normal', timeoutMs: 1500, notice: (line) => notices.push(line) });
  const main = (await app.import()) as unknown as { read(): string };
  await server.silence();
  assert.throws(() => main.read(), /lazy import of b\.ts .*did not finish/);
  assert.equal(await server.connections(), 1, 'one connection: the batch of the graph, no second wait for maps');
  assert.deepEqual(notices, []);
  await app.close();
});

test('a program that mounts the request handler on a server of its own and connects to it does not wait on itself for maps', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'package.json': '{"name":"own-handler"}', 'main.ts': "interface O { a: number }\nconst o: O = { a: 1 };\nexport function fail(): string {\n  return new Error('boom' + o.a).stack!;\n}\n" });
  const options = resolveServerOptions({});
  const snapshots = new SnapshotStore(options.keepVersions);
  const key = generatePublisherKey();
  snapshots.publish(signSnapshot(new SnapshotBuilder(dir).build().content, key));
  const server = createHttpServer(createRequestHandler({ options, snapshots }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const notices: string[] = [];
  const app = await connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}/main.ts`, { publicKey: key.publicKeyString, cache: tempDir(t), timeoutMs: 2000, notice: (line) => notices.push(line) });
  const main = (await app.import()) as unknown as { fail(): string };
  assert.match(main.fail(), /main\.ts:4:10/, 'mapped: the maps came with the code');
  assert.deepEqual(notices, []);
  await app.close();
});

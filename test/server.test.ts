// The module server as an API: options, listen/url, publish guards, close, and the bare handler.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { isLivemodError } from '../src/errors.ts';
import { createModuleServer, createRequestHandler, resolveServerOptions, SnapshotStore, type ServerStatus } from '../src/server/index.ts';
import { generatePublisherKey, sha256Hex } from '../src/snapshot/index.ts';
import { openChannel } from './helpers/server-clients.ts';
import { makeSnapshot, startServer, within } from './helpers/server-fixtures.ts';

function code(error: unknown): string | undefined {
  return isLivemodError(error) ? error.code : undefined;
}

test('options resolve once into a frozen object with the documented defaults', () => {
  const options = resolveServerOptions({ tokens: ['abc'] });
  assert.ok(Object.isFrozen(options));
  assert.ok(Object.isFrozen(options.tokens));
  assert.equal(options.host, '127.0.0.1');
  assert.equal(options.port, 0);
  assert.equal(options.maxBatchHashes, 20_000);
  assert.equal(options.maxRequestBodyBytes, 2 * 1024 * 1024);
  assert.equal(options.keepVersions, 8);
  assert.equal(options.maxMessageBytes, 64 * 1024);
  assert.equal(options.maxBufferedBytes, 4 * 1024 * 1024);
  assert.equal(typeof options.log, 'function');
  const server = createModuleServer({ port: 0 });
  assert.ok(Object.isFrozen(server.options));
});

test('invalid options are refused with ERR_LIVEMOD_USAGE naming the option', () => {
  const cases: Array<[Parameters<typeof resolveServerOptions>[0], RegExp]> = [
    [{ port: -1 }, /port/], [{ port: 70000 }, /port/], [{ keepVersions: 0 }, /keepVersions/], [{ maxBatchHashes: 1.5 }, /maxBatchHashes/],
    [{ tokens: ['has space'] }, /token/], [{ tokens: [''] }, /token/], [{ host: '' }, /host/],
    [{ headersTimeoutMs: 5000, requestTimeoutMs: 1000 }, /headersTimeoutMs/],
  ];
  for (const [options, message] of cases) {
    assert.throws(() => resolveServerOptions(options), (error: unknown) => code(error) === 'ERR_LIVEMOD_USAGE' && message.test((error as Error).message), JSON.stringify(options));
  }
});

test('listen resolves the URL once, and url throws before it', async (t) => {
  const server = createModuleServer();
  t.after(() => server.close());
  assert.throws(() => server.url, (error: unknown) => code(error) === 'ERR_LIVEMOD_USAGE');
  const first = server.listen();
  assert.equal(server.listen(), first, 'a second listen() returns the same promise');
  const { url, port } = await first;
  assert.equal(url, `http://127.0.0.1:${port}`);
  assert.equal(server.url, url);
  assert.ok(port > 0);
});

test('listening on a port in use fails with ERR_LIVEMOD_SERVE_FAILED', async (t) => {
  const { port } = await startServer(t);
  const second = createModuleServer({ port });
  t.after(() => second.close());
  await assert.rejects(second.listen(), (error: unknown) => code(error) === 'ERR_LIVEMOD_SERVE_FAILED' && /EADDRINUSE/.test((error as Error).message));
});

test('publish refuses a version that does not go up, and keeps serving the current one', async (t) => {
  const { server, key } = await startServer(t);
  const v1 = makeSnapshot(key, { 'a.ts': 'a' });
  const v2 = makeSnapshot(key, { 'a.ts': 'b' }, { previousVersion: v1.manifest.version });
  server.publish(v2);
  assert.throws(() => server.publish(v1), (error: unknown) => code(error) === 'ERR_LIVEMOD_ROLLBACK');
  assert.throws(() => server.publish(v2), (error: unknown) => code(error) === 'ERR_LIVEMOD_ROLLBACK', 'the same version again');
  assert.equal(server.current, v2);
  assert.equal(server.status().published, 1);
});

test('publish refuses a snapshot that lacks a blob its manifest references', async (t) => {
  const { server, url, key } = await startServer(t);
  const snapshot = makeSnapshot(key, { 'a.ts': 'a', 'b.ts': 'b' });
  const hollow = { ...snapshot, blobs: new Map([...snapshot.blobs].slice(0, 1)) };
  assert.throws(() => server.publish(hollow), (error: unknown) => code(error) === 'ERR_LIVEMOD_SERVE_FAILED' && /rebuild the snapshot/.test((error as Error).message));
  assert.equal(server.current, undefined);
  assert.equal((await fetch(`${url}/manifest.json`)).status, 503);
});

test('only blobs the manifest references are servable, whatever else the snapshot map holds', async (t) => {
  const { server, url, key } = await startServer(t);
  const snapshot = makeSnapshot(key, { 'a.ts': 'a' });
  const stray = Buffer.from('not in the manifest');
  const padded = { ...snapshot, blobs: new Map([...snapshot.blobs, [sha256Hex(stray), stray]]) };
  server.publish(padded);
  const response = await fetch(`${url}/blobs/${sha256Hex(stray)}`);
  assert.equal(response.status, 404);
  await response.arrayBuffer();
});

test('close() is idempotent, closes channels with 1001 and stops serving', async (t) => {
  const { server, url, key, port } = await startServer(t);
  server.publish(makeSnapshot(key, { 'a.ts': 'a' }));
  const channel = await openChannel(url);
  await channel.next('hello');
  // A keep-alive connection that would otherwise hold close() open.
  const kept = await fetch(`${url}/healthz`);
  await kept.text();
  const first = server.close();
  assert.equal(server.close(), first, 'the same promise');
  await within(first, 5000, 'close()');
  assert.equal((await within(channel.closed, 5000, 'the channel to close')).code, 1001);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`));
  await server.close();
  await assert.rejects(server.listen(), (error: unknown) => code(error) === 'ERR_LIVEMOD_USAGE');
});

test('close() before listen() resolves and leaves nothing listening', async () => {
  const server = createModuleServer();
  await within(server.close(), 5000, 'close() of a server that never listened');
  await assert.rejects(server.listen());
});

test('the request handler serves the protocol under a plain node:http server', async (t) => {
  const options = resolveServerOptions({});
  const snapshots = new SnapshotStore(options.keepVersions);
  const key = generatePublisherKey();
  const snapshot = makeSnapshot(key, { 'a.ts': 'a' });
  snapshots.publish(snapshot);
  const http = createServer(createRequestHandler({ options, snapshots }));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => http.close(() => resolve())));
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const manifest = await fetch(`${base}/manifest.json`, { headers: { connection: 'close' } });
  assert.deepEqual(Buffer.from(await manifest.arrayBuffer()), snapshot.sealed.bytes);
  const status = (await (await fetch(`${base}/status`, { headers: { connection: 'close' } })).json()) as ServerStatus;
  assert.equal(status.version, snapshot.manifest.version);
  assert.deepEqual(status.clients, []);
});

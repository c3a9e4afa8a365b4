// Hostile and broken requests: traversal, malformed targets, oversized URLs and headers,
// and a slow-loris client. Each must be refused (or cut) with the server still serving.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { parseErrorBody } from '../src/protocol/index.ts';
import { get, rawExchange } from './helpers/server-clients.ts';
import { makeSnapshot, startServer, within } from './helpers/server-fixtures.ts';

test('traversal and non-canonical paths are 400, never another route or a file', async (t) => {
  const { server, port, key } = await startServer(t);
  server.publish(makeSnapshot(key, { 'a.ts': 'a' }));
  const paths = [
    '/blobs/../manifest.json', '/blobs/..%2fmanifest.json', '/%2e%2e/manifest.json', '/%2E%2E/%2e%2e/etc/passwd',
    '//etc/passwd', '/blobs//x', '/./manifest.json', '/manifest.json/', '/blobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '/..%5c..%5cetc%5cpasswd', '/manifest.json%00', '/%0d%0aSet-Cookie:x',
  ];
  for (const path of paths) {
    const response = await get(port, path);
    assert.equal(response.status, 400, path);
    assert.equal(parseErrorBody(JSON.parse(response.body.toString()))?.code, 'ERR_LIVEMOD_BAD_REQUEST', path);
    assert.ok(!response.body.toString().includes('root:'), path);
  }
  for (const path of ['/%zz', '/blobs/%', '/%E0%A4%A']) {
    const response = await get(port, path);
    assert.equal(response.status, 400, path);
    assert.match(parseErrorBody(JSON.parse(response.body.toString()))!.message, /percent-encoding/);
  }
  assert.equal((await get(port, '/etc/passwd')).status, 404);
  assert.equal((await get(port, '/blobs/etc/passwd')).status, 400, 'not a hash');
  assert.equal((await get(port, '/healthz')).status, 200, 'still serving');
});

test('percent-encoded, query-carrying and absolute-form targets reach their route', async (t) => {
  const { server, port, key } = await startServer(t);
  const snapshot = makeSnapshot(key, { 'a.ts': 'a' });
  server.publish(snapshot);
  for (const path of ['/%6danifest.json', '/manifest.json?x=1&y', `http://127.0.0.1:${port}/manifest.json`]) {
    const response = await get(port, path);
    assert.equal(response.status, 200, path);
    assert.deepEqual(response.body, snapshot.sealed.bytes, path);
  }
});

test('request lines that are not origin-form paths are 400', async (t) => {
  const { port } = await startServer(t);
  for (const target of ['*', 'manifest.json', 'ftp://x/manifest.json']) {
    const reply = await rawExchange(port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(reply, /^HTTP\/1\.1 400 /, target);
  }
  const garbage = await rawExchange(port, 'this is not http\r\n\r\n');
  assert.match(garbage, /^HTTP\/1\.1 400 /);
  assert.equal((await get(port, '/healthz')).status, 200, 'still serving');
});

test('a URL over 4096 characters is 414 and headers over 16 KiB are 431', async (t) => {
  const { port } = await startServer(t);
  const long = await get(port, `/blobs/${'a'.repeat(4100)}`);
  assert.equal(long.status, 414);
  assert.equal(parseErrorBody(JSON.parse(long.body.toString()))?.code, 'ERR_LIVEMOD_TOO_LARGE');
  const huge = await rawExchange(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(20 * 1024)}\r\n\r\n`);
  assert.match(huge, /^HTTP\/1\.1 431 /);
  assert.equal((await get(port, '/healthz')).status, 200, 'still serving');
});

test('a slow-loris client sending headers one byte per second is cut at headersTimeoutMs', async (t) => {
  const { port } = await startServer(t, { headersTimeoutMs: 1500, requestTimeoutMs: 3000 });
  const request = Buffer.from('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n\r\n');
  const socket = connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  let sent = 0;
  let reply = '';
  const started = Date.now();
  const drip = setInterval(() => {
    if (sent < request.length && !socket.destroyed) socket.write(request.subarray(sent, ++sent));
  }, 1000);
  t.after(() => clearInterval(drip));
  socket.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1')));
  socket.on('error', () => {});
  socket.write(request.subarray(0, ++sent));
  await within(new Promise((resolve) => socket.on('close', resolve)), 8000, 'the server to cut the slow client');
  const elapsed = Date.now() - started;
  clearInterval(drip);
  assert.ok(sent < request.length, `cut after ${sent} of ${request.length} bytes`);
  assert.ok(elapsed >= 1400 && elapsed < 6000, `cut after ${elapsed} ms`);
  assert.ok(reply === '' || /^HTTP\/1\.1 408 /.test(reply), `the server answered ${JSON.stringify(reply.slice(0, 40))}`);
});

// The read routes against a real server: manifest, blobs, status, page, and their headers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseErrorBody, type ServerStatus } from '../src/protocol/index.ts';
import { openManifest, parsePublicKey, sha256Hex } from '../src/snapshot/index.ts';
import { get, rawExchange } from './helpers/server-clients.ts';
import { makeSnapshot, startServer } from './helpers/server-fixtures.ts';

async function errorCode(response: Response): Promise<string | undefined> {
  return parseErrorBody(await response.json())?.code;
}

test('manifest before any publish is 503 with a JSON error', async (t) => {
  const { url } = await startServer(t);
  const response = await fetch(`${url}/manifest.json`);
  assert.equal(response.status, 503);
  assert.equal(response.headers.get('content-type'), 'application/json');
  assert.equal(await errorCode(response), 'ERR_LIVEMOD_NO_SNAPSHOT');
});

test('manifest is served as signed bytes that verify with the publisher key', async (t) => {
  const { server, url, key } = await startServer(t);
  const snapshot = makeSnapshot(key, { 'main.ts': 'export default 1;\n', 'lib/util.ts': 'export const x = 2;\n' });
  server.publish(snapshot);
  const response = await fetch(`${url}/manifest.json`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'application/json');
  assert.equal(response.headers.get('etag'), snapshot.sealed.etag);
  assert.equal(response.headers.get('cache-control'), 'no-cache');
  assert.equal(response.headers.get('livemod-batch'), '/batch');
  assert.equal(response.headers.get('livemod-channel'), '/channel');
  const bytes = Buffer.from(await response.arrayBuffer());
  assert.deepEqual(bytes, snapshot.sealed.bytes);
  const manifest = openManifest(bytes, parsePublicKey(key.publicKeyString), `${url}/manifest.json`);
  assert.equal(manifest.version, snapshot.manifest.version);
  assert.deepEqual(Object.keys(manifest.modules), ['lib/util.ts', 'main.ts']);
  assert.equal(server.current, snapshot);
});

test('If-None-Match answers 304 for the current ETag, lists, weak tags and *, and 200 otherwise', async (t) => {
  const { server, url, key } = await startServer(t);
  const snapshot = makeSnapshot(key, { 'main.ts': 'export default 1;\n' });
  server.publish(snapshot);
  const etag = snapshot.sealed.etag;
  for (const header of [etag, `W/${etag}`, `"other", ${etag}`, '*', ` "x" ,W/${etag} `]) {
    const response = await fetch(`${url}/manifest.json`, { headers: { 'if-none-match': header } });
    assert.equal(response.status, 304, `If-None-Match: ${header}`);
    assert.equal(response.headers.get('etag'), etag);
    assert.equal((await response.arrayBuffer()).byteLength, 0);
  }
  for (const header of ['"other"', etag.slice(1, -1), 'W/"nope", "also-no"', '']) {
    const response = await fetch(`${url}/manifest.json`, { headers: { 'if-none-match': header } });
    assert.equal(response.status, 200, `If-None-Match: ${header}`);
    await response.arrayBuffer();
  }
  // A publish changes the ETag, so the old one no longer matches.
  server.publish(makeSnapshot(key, { 'main.ts': 'export default 2;\n' }, { previousVersion: snapshot.manifest.version }));
  const after = await fetch(`${url}/manifest.json`, { headers: { 'if-none-match': etag } });
  assert.equal(after.status, 200);
  assert.notEqual(after.headers.get('etag'), etag);
  await after.arrayBuffer();
});

test('HEAD on manifest and blob carries the GET headers and no body', async (t) => {
  const { server, port, key } = await startServer(t);
  const snapshot = makeSnapshot(key, { 'main.ts': 'export default 1;\n' });
  server.publish(snapshot);
  const manifest = await get(port, '/manifest.json', {}, 'HEAD');
  assert.equal(manifest.status, 200);
  assert.equal(manifest.headers['content-length'], String(snapshot.sealed.bytes.length));
  assert.equal(manifest.headers.etag, snapshot.sealed.etag);
  assert.equal(manifest.headers['livemod-batch'], '/batch');
  assert.equal(manifest.body.length, 0);
  const hash = snapshot.manifest.modules['main.ts']!.blob.hash;
  const blob = await get(port, `/blobs/${hash}`, {}, 'HEAD');
  assert.equal(blob.status, 200);
  assert.equal(blob.headers['content-length'], '18');
  assert.equal(blob.headers['content-type'], 'application/octet-stream');
  assert.equal(blob.body.length, 0);
});

test('blobs are served with immutable caching headers and the bytes of their hash', async (t) => {
  const { server, url, key } = await startServer(t);
  const snapshot = makeSnapshot(key, { 'main.ts': 'export default 1;\n', 'b.ts': Buffer.from([0, 255, 10, 13]) }, { maps: true });
  server.publish(snapshot);
  for (const record of Object.values(snapshot.manifest.modules)) {
    for (const ref of [record.blob, record.map!]) {
      const response = await fetch(`${url}/blobs/${ref.hash}`);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('content-type'), 'application/octet-stream');
      assert.equal(response.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.equal(response.headers.get('etag'), `"${ref.hash}"`);
      assert.equal(sha256Hex(Buffer.from(await response.arrayBuffer())), ref.hash);
    }
  }
});

test('malformed blob hashes are 400 and unknown ones 404', async (t) => {
  const { server, url, key } = await startServer(t);
  server.publish(makeSnapshot(key, { 'main.ts': 'export default 1;\n' }));
  for (const bad of ['abc', 'A'.repeat(64), 'g'.repeat(64), '0'.repeat(63), '0'.repeat(65), `${'0'.repeat(64)}.js`]) {
    const response = await fetch(`${url}/blobs/${bad}`);
    assert.equal(response.status, 400, bad);
    assert.equal(await errorCode(response), 'ERR_LIVEMOD_BAD_REQUEST');
  }
  const unknown = await fetch(`${url}/blobs/${'0'.repeat(64)}`);
  assert.equal(unknown.status, 404);
  const error = parseErrorBody(await unknown.json());
  assert.equal(error?.code, 'ERR_LIVEMOD_BLOB_UNKNOWN');
  assert.match(error!.message, /fetch \/manifest\.json again/);
});

test('blobs of earlier snapshots stay servable after a publish, until keepVersions pushes them out', async (t) => {
  const { server, url, key } = await startServer(t, { keepVersions: 2 });
  const v1 = makeSnapshot(key, { 'main.ts': 'export default 1;\n', 'shared.ts': 'export const s = 0;\n' });
  const v2 = makeSnapshot(key, { 'main.ts': 'export default 2;\n', 'shared.ts': 'export const s = 0;\n' }, { previousVersion: v1.manifest.version });
  const v3 = makeSnapshot(key, { 'main.ts': 'export default 3;\n', 'shared.ts': 'export const s = 0;\n' }, { previousVersion: v2.manifest.version });
  const first = v1.manifest.modules['main.ts']!.blob.hash;
  const shared = v1.manifest.modules['shared.ts']!.blob.hash;
  const status = async (hash: string): Promise<number> => {
    const response = await fetch(`${url}/blobs/${hash}`);
    await response.arrayBuffer();
    return response.status;
  };
  server.publish(v1);
  server.publish(v2);
  assert.equal(await status(first), 200, 'v1 blob while v1 is within the last 2');
  server.publish(v3);
  assert.equal(await status(first), 404, 'v1 blob after v1 left the last 2');
  assert.equal(await status(shared), 200, 'a blob v3 still references');
  assert.equal(await status(v2.manifest.modules['main.ts']!.blob.hash), 200);
});

test('/status reports the snapshot, totals and publishes as JSON', async (t) => {
  const { server, url, key } = await startServer(t);
  const empty = (await (await fetch(`${url}/status`)).json()) as ServerStatus;
  assert.equal(empty.version, null);
  assert.equal(empty.modules, 0);
  assert.equal(empty.published, 0);
  const snapshot = makeSnapshot(key, { 'a.ts': 'aaaa', 'b.ts': 'bb', 'c.ts': 'aaaa' });
  server.publish(snapshot);
  const response = await fetch(`${url}/status`);
  assert.equal(response.headers.get('content-type'), 'application/json');
  const status = (await response.json()) as ServerStatus;
  assert.equal(status.version, snapshot.manifest.version);
  assert.equal(status.etag, snapshot.sealed.etag);
  assert.equal(status.created, snapshot.manifest.created);
  assert.equal(status.expires, snapshot.manifest.expires);
  assert.equal(status.keyId, key.keyId);
  assert.equal(status.modules, 3);
  assert.equal(status.bytes, 6, 'a.ts and c.ts share one blob');
  assert.deepEqual(status.clients, []);
  assert.equal(status.published, 1);
  assert.ok(status.uptimeMs >= 0);
  assert.deepEqual(server.status().version, status.version);
});

test('the status page escapes module paths and caps the listing', async (t) => {
  const { server, url, key } = await startServer(t);
  const files: Record<string, string> = { '<script>.ts': 'export default "<b>";', 'a&"b\'.ts': 'x' };
  for (let index = 0; index < 600; index += 1) files[`z/${String(index).padStart(3, '0')}.ts`] = `export default ${index};`;
  server.publish(makeSnapshot(key, files));
  const response = await fetch(`${url}/`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.match(response.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  const page = await response.text();
  assert.ok(!page.includes('<script>'), 'no raw <script> from a module path');
  assert.ok(page.includes('&lt;script&gt;.ts'));
  assert.ok(page.includes('a&amp;&quot;b&#39;.ts'));
  assert.ok(page.includes('and 102 more'), '602 modules, 500 listed');
  assert.ok(page.includes(key.keyId));
  assert.equal((page.match(/<tr>/g) ?? []).length, 501, '500 module rows plus the header row');
});

test('a server in a fleet shows its place on /status and the page, source and last error escaped', async (t) => {
  const { server, url, key } = await startServer(t);
  server.publish(makeSnapshot(key, { 'a.ts': 'export default 1;' }));
  server.describeCluster(() => ({ role: 'replica', broker: 'nats://127.0.0.1:4222', brokerConnected: false, source: 'http://origin/<b>', lastLookAt: '2026-12-06T00:00:00.000Z', lastChangeAt: null, lastError: 'refused <script>' }));
  const status = (await (await fetch(`${url}/status`)).json()) as { cluster?: Record<string, unknown>; replicaCount: number };
  assert.equal(status.cluster?.role, 'replica');
  assert.equal(status.cluster?.brokerConnected, false);
  assert.equal(status.replicaCount, 0);
  const page = await (await fetch(`${url}/`)).text();
  assert.match(page, /Fleet replica, broker <code>nats:\/\/127\.0\.0\.1:4222<\/code> <b class="bad">disconnected<\/b>/);
  assert.ok(page.includes('http://origin/&lt;b&gt;') && page.includes('refused &lt;script&gt;'));
  assert.ok(!page.includes('<script>'));
});

test('/healthz is ok, unknown paths 404, wrong methods 405 with Allow', async (t) => {
  const { url } = await startServer(t);
  const health = await fetch(`${url}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(await health.text(), 'ok');
  const missing = await fetch(`${url}/nope`);
  assert.equal(missing.status, 404);
  assert.equal(await errorCode(missing), 'ERR_LIVEMOD_NOT_FOUND');
  for (const [method, path, allow] of [['POST', '/manifest.json', 'GET, HEAD'], ['DELETE', `/blobs/${'0'.repeat(64)}`, 'GET, HEAD'], ['GET', '/batch', 'POST'], ['PUT', '/status', 'GET, HEAD']] as const) {
    const response = await fetch(`${url}${path}`, { method });
    assert.equal(response.status, 405, `${method} ${path}`);
    assert.equal(response.headers.get('allow'), allow);
    assert.equal(await errorCode(response), 'ERR_LIVEMOD_METHOD_NOT_ALLOWED');
  }
  const plain = await fetch(`${url}/channel`);
  assert.equal(plain.status, 426, 'a plain GET of the channel asks for an upgrade');
  await plain.arrayBuffer();
});

test('a GET with a body is answered and the body ignored', async (t) => {
  const { server, port, key } = await startServer(t);
  server.publish(makeSnapshot(key, { 'main.ts': 'export default 1;\n' }));
  const reply = await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello');
  assert.match(reply, /^HTTP\/1\.1 200 /);
  assert.match(reply, /\r\n\r\nok$/);
});

test('a request with a non-WebSocket Upgrade header (h2c) is answered by its route', async (t) => {
  const { server, port, key } = await startServer(t);
  server.publish(makeSnapshot(key, { 'a.ts': 'a' }));
  const health = await get(port, '/healthz', { upgrade: 'h2c', connection: 'Upgrade, HTTP2-Settings', 'http2-settings': 'AAMAAABkAAQAAP__' });
  assert.equal(health.status, 200);
  const manifest = await get(port, '/manifest.json', { upgrade: 'h2c', connection: 'Upgrade' });
  assert.equal(manifest.status, 200);
});

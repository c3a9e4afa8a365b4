// Bearer tokens on every route but /healthz, on HTTP and on the channel upgrade.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { parseErrorBody } from '../src/protocol/index.ts';
import { channelRefusal, openChannel } from './helpers/server-clients.ts';
import { makeSnapshot, startServer, within } from './helpers/server-fixtures.ts';

const TOKENS = ['first-secret-token', 'second-token'];

test('with tokens, every route but /healthz needs a valid bearer token', async (t) => {
  const { server, url, key } = await startServer(t, { tokens: TOKENS });
  const snapshot = makeSnapshot(key, { 'a.ts': 'a' });
  server.publish(snapshot);
  const hash = snapshot.manifest.modules['a.ts']!.blob.hash;
  const health = await fetch(`${url}/healthz`);
  assert.equal(health.status, 200, '/healthz is open');
  await health.arrayBuffer();
  const routes: Array<[string, RequestInit]> = [
    ['/manifest.json', {}], [`/blobs/${hash}`, {}], ['/status', {}], ['/', {}], ['/nope', {}],
    ['/batch', { method: 'POST', body: JSON.stringify({ hashes: [hash] }) }],
  ];
  const refusals = [undefined, 'Bearer wrong', 'Bearer first-secret-toke', 'Bearer first-secret-token-and-more', `Basic ${TOKENS[0]}`, TOKENS[0]!, 'Bearer'];
  for (const [path, init] of routes) {
    for (const authorization of refusals) {
      const response = await fetch(`${url}${path}`, { ...init, headers: authorization === undefined ? {} : { authorization } });
      assert.equal(response.status, 401, `${path} with ${authorization}`);
      assert.equal(response.headers.get('www-authenticate'), 'Bearer');
      assert.equal(parseErrorBody(await response.json())?.code, 'ERR_LIVEMOD_UNAUTHORIZED');
    }
  }
  for (const token of TOKENS) {
    const manifest = await fetch(`${url}/manifest.json`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(manifest.status, 200);
    assert.deepEqual(Buffer.from(await manifest.arrayBuffer()), snapshot.sealed.bytes);
  }
  const blob = await fetch(`${url}/blobs/${hash}`, { headers: { authorization: `bearer ${TOKENS[1]}` } });
  assert.equal(blob.status, 200, 'the scheme is case-insensitive');
  assert.equal(blob.headers.get('cache-control'), 'private, max-age=31536000, immutable', 'shared caches must not keep token-guarded blobs');
  await blob.arrayBuffer();
  const missing = await fetch(`${url}/nope`, { headers: { authorization: `Bearer ${TOKENS[0]}` } });
  assert.equal(missing.status, 404, 'with a token, unknown paths are 404');
  await missing.arrayBuffer();
});

test('with tokens, the channel upgrade is refused with 401 before the handshake, and opens with a token', async (t) => {
  const { server, url, key } = await startServer(t, { tokens: TOKENS });
  const snapshot = makeSnapshot(key, { 'a.ts': 'a' });
  server.publish(snapshot);
  const anonymous = await channelRefusal(url);
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.headers['www-authenticate'], 'Bearer');
  assert.equal((await channelRefusal(url, { headers: { authorization: 'Bearer nope' } })).status, 401);
  assert.equal(server.status().clients.length, 0);
  const channel = await openChannel(url, { headers: { authorization: `Bearer ${TOKENS[1]}` } });
  t.after(() => channel.ws.terminate());
  assert.deepEqual(await channel.next('hello'), { type: 'hello', protocol: 1, version: snapshot.manifest.version, etag: snapshot.sealed.etag });
});

test('upgrades to any path but /channel are refused', async (t) => {
  const { url } = await startServer(t);
  const ws = new WebSocket(`${url.replace('http', 'ws')}/manifest.json`);
  ws.on('error', () => {});
  const status = await within(new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))), 5000, 'the refusal');
  ws.terminate();
  assert.equal(status, 404);
});

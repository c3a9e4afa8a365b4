// The channel: hello, pushes on publish, client status, and refusals that never crash the server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ServerStatus } from '../src/protocol/index.ts';
import { get, openChannel, type Channel } from './helpers/server-clients.ts';
import { makeSnapshot, startServer, within } from './helpers/server-fixtures.ts';

async function pingPong(channel: Channel): Promise<void> {
  channel.ws.send(JSON.stringify({ type: 'ping' }));
  assert.deepEqual(await channel.next('pong'), { type: 'pong' });
}

test('a channel opened before any publish says hello with no version, then gets the first one', async (t) => {
  const { server, url, key } = await startServer(t);
  const channel = await openChannel(url);
  t.after(() => channel.ws.terminate());
  assert.deepEqual(await channel.next('hello'), { type: 'hello', protocol: 1, version: null, etag: null });
  const snapshot = makeSnapshot(key, { 'a.ts': 'a' });
  server.publish(snapshot);
  assert.deepEqual(await channel.next('version'), { type: 'version', version: snapshot.manifest.version, etag: snapshot.sealed.etag, manifestHash: snapshot.sealed.hash, manifest: snapshot.sealed.bytes.toString('utf8') });
});

test('a publish pushes the new version to every connected channel', async (t) => {
  const { server, url, key } = await startServer(t);
  const v1 = makeSnapshot(key, { 'a.ts': 'a' });
  server.publish(v1);
  const channels = await Promise.all([openChannel(url), openChannel(url), openChannel(url)]);
  t.after(() => channels.forEach((channel) => channel.ws.terminate()));
  for (const channel of channels) {
    assert.deepEqual(await channel.next('hello'), { type: 'hello', protocol: 1, version: v1.manifest.version, etag: v1.sealed.etag });
  }
  const v2 = makeSnapshot(key, { 'a.ts': 'b' }, { previousVersion: v1.manifest.version });
  server.publish(v2);
  const pushed = await Promise.all(channels.map((channel) => channel.next('the pushed version')));
  for (const message of pushed) {
    assert.deepEqual(message, { type: 'version', version: v2.manifest.version, etag: v2.sealed.etag, manifestHash: v2.sealed.hash, manifest: v2.sealed.bytes.toString('utf8') });
  }
  assert.equal(server.status().clients.length, 3);
  assert.equal(new Set(server.status().clients.map((client) => client.id)).size, 3, 'client ids are unique');
});

test('a manifest too big for the frame is announced without it: clients fetch it', async (t) => {
  const { server, url, key } = await startServer(t);
  const v1 = makeSnapshot(key, { 'a.ts': 'a' });
  server.publish(v1);
  const channel = await openChannel(url);
  t.after(() => channel.ws.terminate());
  await channel.next('hello');
  // A few hundred modules with long names: a manifest past the 48 KiB an announcement may carry.
  const files: Record<string, string> = {};
  for (let index = 0; index < 400; index += 1) files[`module-with-a-rather-long-name-number-${index}.ts`] = `export const n = ${index};`;
  const big = makeSnapshot(key, files, { previousVersion: v1.manifest.version });
  assert.ok(big.sealed.bytes.byteLength > 48 * 1024, `${big.sealed.bytes.byteLength} bytes`);
  server.publish(big);
  assert.deepEqual(await channel.next('the pushed version'), { type: 'version', version: big.manifest.version, etag: big.sealed.etag, manifestHash: big.sealed.hash });
  // Just under the limit as bytes, over it once escaped into the frame's JSON string: announced without it too.
  let count = 1;
  let near = makeSnapshot(key, { 'a.ts': 'a' }, { previousVersion: big.manifest.version });
  while (near.sealed.bytes.byteLength < 46 * 1024) {
    count += 8;
    const more: Record<string, string> = {};
    for (let index = 0; index < count; index += 1) more[`module-with-a-rather-long-name-number-${index}.ts`] = `export const n = ${index};`;
    near = makeSnapshot(key, more, { previousVersion: big.manifest.version });
  }
  assert.ok(near.sealed.bytes.byteLength <= 48 * 1024, `${near.sealed.bytes.byteLength} bytes`);
  server.publish(near);
  const announced = (await channel.next('the next pushed version')) as unknown as Record<string, unknown>;
  assert.equal(announced.version, near.manifest.version);
  assert.equal(announced.manifest, undefined);
  // A small one still travels.
  const small = makeSnapshot(key, { 'a.ts': 'b' }, { previousVersion: near.manifest.version });
  server.publish(small);
  assert.equal(((await channel.next('a small version')) as unknown as Record<string, unknown>).manifest, small.sealed.bytes.toString('utf8'));
});

test('client status messages are stored per client and shown in /status', async (t) => {
  const { server, url, key } = await startServer(t);
  const snapshot = makeSnapshot(key, { 'a.ts': 'a' });
  server.publish(snapshot);
  const [reporting, silent] = await Promise.all([openChannel(url), openChannel(url)]);
  t.after(() => [reporting, silent].forEach((channel) => channel.ws.terminate()));
  await reporting.next('hello');
  await silent.next('hello');
  reporting.ws.send(JSON.stringify({ type: 'status', version: snapshot.manifest.version, swap: { ok: true, ms: 3 } }));
  // Messages are handled in order, so once the pong arrives the status was stored.
  await pingPong(reporting);
  const status = (await (await fetch(`${url}/status`)).json()) as ServerStatus;
  assert.equal(status.clients.length, 2);
  const reported = status.clients.find((client) => client.version !== undefined);
  assert.ok(reported);
  assert.equal(reported.version, snapshot.manifest.version);
  assert.deepEqual(reported.swap, { ok: true, ms: 3 });
  assert.ok(Number.isFinite(Date.parse(reported.lastStatusAt!)));
  assert.match(reported.address, /^127\.0\.0\.1:\d+$/);
  const other = status.clients.find((client) => client !== reported)!;
  assert.equal(other.version, undefined);
  const page = await (await fetch(`${url}/`)).text();
  assert.ok(page.includes(`<td class="n">${snapshot.manifest.version}</td>`), 'the page shows the reported version');
});

test('malformed, unknown and binary client messages get an error reply and the channel stays open', async (t) => {
  const { url } = await startServer(t);
  const channel = await openChannel(url);
  t.after(() => channel.ws.terminate());
  await channel.next('hello');
  const bad: Array<[string | Buffer, RegExp]> = [
    ['not json {', /not JSON/],
    ['[1,2]', /JSON object/],
    ['{"type":"launch"}', /unknown message type "launch"/],
    ['{"type":"status"}', /"version"/],
    ['{"type":"status","version":-1}', /"version"/],
    ['{"type":"status","version":1,"swap":"yes"}', /"swap"/],
    [JSON.stringify({ type: 'status', version: 1, swap: { log: 'x'.repeat(5000) } }), /over 4096 bytes/],
    [Buffer.from([1, 2, 3]), /binary/],
  ];
  for (const [frame, reason] of bad) {
    channel.ws.send(frame, { binary: Buffer.isBuffer(frame) });
    const reply = await channel.next(`the error for ${String(frame)}`);
    assert.equal(reply.type, 'error');
    assert.ok(reply.type === 'error' && reply.code === 'ERR_LIVEMOD_PROTOCOL');
    assert.match(reply.message, reason);
  }
  await pingPong(channel);
});

test('an oversized client message closes that channel with 1009 and the server keeps serving', async (t) => {
  const { url } = await startServer(t, { maxMessageBytes: 1024 });
  const channel = await openChannel(url);
  await channel.next('hello');
  channel.ws.send(JSON.stringify({ type: 'status', version: 1, swap: { pad: 'x'.repeat(4096) } }));
  const { code } = await within(channel.closed, 5000, 'the oversized channel to close');
  assert.equal(code, 1009);
  const next = await openChannel(url);
  t.after(() => next.ws.terminate());
  await next.next('hello');
  await pingPong(next);
});

test('a client that stops answering pings is terminated; one that answers stays', async (t) => {
  const { url, logged } = await startServer(t, { heartbeatMs: 200 });
  const [silent, lively] = await Promise.all([openChannel(url, { autoPong: false }), openChannel(url)]);
  t.after(() => lively.ws.terminate());
  await lively.next('hello');
  await within(silent.closed, 5000, 'the silent client to be terminated');
  await logged(/missed a heartbeat/);
  await pingPong(lively);
  assert.equal(lively.ws.readyState, lively.ws.OPEN);
});

test('channel clients beyond maxClients are closed with 1013; status counts them all and lists a bounded few', async (t) => {
  const { server, url, key, port } = await startServer(t, { maxClients: 2 });
  server.publish(makeSnapshot(key, { 'a.ts': 'a' }));
  const first = await openChannel(url);
  const second = await openChannel(url);
  t.after(() => {
    first.ws.terminate();
    second.ws.terminate();
  });
  const { default: WebSocket } = await import('ws');
  const third = new WebSocket(`${url.replace('http', 'ws')}/channel`);
  const code = await new Promise<number>((resolve) => third.once('close', (closeCode) => resolve(closeCode)));
  assert.equal(code, 1013);
  const status = JSON.parse((await get(port, '/status')).body.toString('utf8')) as { clientCount: number; clients: unknown[] };
  assert.equal(status.clientCount, 2);
  assert.equal(status.clients.length, 2);
});

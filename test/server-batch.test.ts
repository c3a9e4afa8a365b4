// POST /batch: framing, a cold sync in two requests, every refusal, and a slow reader.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { test } from 'node:test';
import { parseErrorBody, readBatchFrames, type BatchFrame } from '../src/protocol/index.ts';
import { manifestBlobs, openManifest, parsePublicKey, sha256Hex } from '../src/snapshot/index.ts';
import { fetchBlobs, fetchManifest } from '../src/sync/index.ts';
import { makeSnapshot, manyFiles, startServer, within } from './helpers/server-fixtures.ts';

async function postBatch(url: string, body: unknown): Promise<Response> {
  return fetch(`${url}/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

async function frames(response: Response): Promise<BatchFrame[]> {
  assert.ok(response.body);
  const all: BatchFrame[] = [];
  for await (const frame of readBatchFrames(response.body, 'the test server')) all.push(frame);
  return all;
}

test('a batch returns each requested blob once, in request order, framed with its length', async (t) => {
  const { server, url, key } = await startServer(t);
  const snapshot = makeSnapshot(key, { 'a.ts': 'export const a = 1;\n', 'b.ts': Buffer.alloc(100_000, 7), 'c.ts': '' }, { maps: true });
  server.publish(snapshot);
  const { a, b, c } = { a: snapshot.manifest.modules['a.ts']!, b: snapshot.manifest.modules['b.ts']!, c: snapshot.manifest.modules['c.ts']! };
  const wanted = [b.blob.hash, a.blob.hash, a.map!.hash, c.blob.hash, b.blob.hash, a.blob.hash];
  const response = await postBatch(url, { hashes: wanted });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'application/vnd.livemod.batch');
  const expectedLength = [b.blob, a.blob, a.map!, c.blob].reduce((sum, ref) => sum + 66 + String(ref.size).length + ref.size, 0);
  assert.equal(response.headers.get('content-length'), String(expectedLength));
  const got = await frames(response);
  assert.deepEqual(got.map((frame) => frame.hash), [b.blob.hash, a.blob.hash, a.map!.hash, c.blob.hash]);
  for (const frame of got) assert.equal(sha256Hex(frame.bytes), frame.hash);
  assert.equal(got[3]!.bytes.length, 0, 'an empty module is an empty frame');
});

test('a client takes an empty blob anywhere in a batch: its header, then the next frame in the same chunk', async (t) => {
  const { server, url, key } = await startServer(t);
  const snapshot = makeSnapshot(key, { 'a.ts': 'export const a = 1;\n', 'empty.ts': '', 'z.ts': 'export const z = 26;\n' });
  server.publish(snapshot);
  const result = await fetchManifest(url, { key: parsePublicKey(key.publicKeyString) });
  assert.equal(result.status, 'ok');
  if (result.status !== 'ok') return;
  const refs = manifestBlobs(result.manifest);
  // The empty one first, so a whole frame follows its header.
  const wanted = [snapshot.manifest.modules['empty.ts']!.blob.hash, ...refs.map((ref) => ref.hash).filter((hash) => hash !== snapshot.manifest.modules['empty.ts']!.blob.hash)];
  const blobs = await fetchBlobs(url, result.manifest, wanted, result.capabilities);
  assert.deepEqual([...blobs.keys()].sort(), [...wanted].sort());
  assert.equal(blobs.get(wanted[0]!)!.length, 0);
  for (const [hash, bytes] of blobs) assert.equal(sha256Hex(bytes), hash);
});

test('a cold client syncs a 2,000-module snapshot with the manifest and one batch', async (t) => {
  const { server, url, key, logs } = await startServer(t);
  const snapshot = makeSnapshot(key, manyFiles(2000));
  server.publish(snapshot);
  const manifestResponse = await fetch(`${url}/manifest.json`);
  const manifest = openManifest(Buffer.from(await manifestResponse.arrayBuffer()), parsePublicKey(key.publicKeyString), url);
  const refs = manifestBlobs(manifest);
  assert.equal(refs.length, 2000);
  const response = await postBatch(url, { hashes: refs.map((ref) => ref.hash) });
  assert.equal(response.status, 200);
  const got = await frames(response);
  assert.equal(got.length, 2000);
  got.forEach((frame, index) => {
    assert.equal(frame.hash, refs[index]!.hash);
    assert.equal(sha256Hex(frame.bytes), frame.hash);
  });
  assert.equal(logs.filter((line) => line.includes('batch:')).length, 1, 'exactly one batch request served');
});

test('batch bodies that are not JSON or not {hashes: [hash…]} are 400', async (t) => {
  const { server, url, key } = await startServer(t);
  server.publish(makeSnapshot(key, { 'a.ts': 'a' }));
  const bodies = ['not json', '[]', 'null', '{"hashes":"abc"}', '{"hashes":[1]}', `{"hashes":["${'A'.repeat(64)}"]}`, '{}'];
  for (const body of bodies) {
    const response = await postBatch(url, body);
    assert.equal(response.status, 400, body);
    const error = parseErrorBody(await response.json());
    assert.equal(error?.code, 'ERR_LIVEMOD_BAD_REQUEST', body);
    assert.match(error!.message, /"hashes"/);
  }
});

test('a batch over maxBatchHashes is 413', async (t) => {
  const { server, url, key } = await startServer(t, { maxBatchHashes: 5 });
  const snapshot = makeSnapshot(key, manyFiles(6));
  server.publish(snapshot);
  const hashes = manifestBlobs(snapshot.manifest).map((ref) => ref.hash);
  const refused = await postBatch(url, { hashes });
  assert.equal(refused.status, 413);
  const error = parseErrorBody(await refused.json());
  assert.equal(error?.code, 'ERR_LIVEMOD_TOO_LARGE');
  assert.match(error!.message, /at most 5/);
  const allowed = await postBatch(url, { hashes: hashes.slice(0, 5) });
  assert.equal(allowed.status, 200);
  assert.equal((await frames(allowed)).length, 5);
});

test('unknown hashes are 404 listing up to 10 of them, so the client refetches the manifest', async (t) => {
  const { server, url, key } = await startServer(t);
  const snapshot = makeSnapshot(key, { 'a.ts': 'a' });
  server.publish(snapshot);
  const unknown = Array.from({ length: 12 }, (_, index) => sha256Hex(`missing ${index}`));
  const response = await postBatch(url, { hashes: [snapshot.manifest.modules['a.ts']!.blob.hash, ...unknown] });
  assert.equal(response.status, 404);
  const error = parseErrorBody(await response.json());
  assert.equal(error?.code, 'ERR_LIVEMOD_BLOB_UNKNOWN');
  assert.deepEqual(error!.unknown, unknown.slice(0, 10));
  assert.equal(error!.unknownCount, 12);
  assert.match(error!.message, /fetch \/manifest\.json again/);
});

function postRaw(port: number, headers: Record<string, string>, send: (req: ReturnType<typeof request>) => void): Promise<{ status: number; body: string }> {
  return within(new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/batch', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    send(req);
  }), 5000, 'the batch response');
}

test('a body declared over maxRequestBodyBytes is refused before it is sent', async (t) => {
  const { server, port, key } = await startServer(t);
  server.publish(makeSnapshot(key, { 'a.ts': 'a' }));
  // Headers only: the 413 must come without the server waiting for (or reading) 3 MiB.
  const reply = await postRaw(port, { 'content-type': 'application/json', 'content-length': String(3 * 1024 * 1024) }, (req) => req.flushHeaders());
  assert.equal(reply.status, 413);
  assert.equal(parseErrorBody(JSON.parse(reply.body))?.code, 'ERR_LIVEMOD_TOO_LARGE');
});

test('a chunked body is cut off with 413 as soon as it passes maxRequestBodyBytes', async (t) => {
  const { server, port, key } = await startServer(t, { maxRequestBodyBytes: 64 * 1024 });
  server.publish(makeSnapshot(key, { 'a.ts': 'a' }));
  let sent = 0;
  let answered = false;
  const chunk = Buffer.alloc(16 * 1024, 0x20);
  const reply = await postRaw(port, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, (req) => {
    req.on('response', () => (answered = true));
    const pump = (): void => {
      // Keeps sending until the server answers: the test fails by timeout if it never does.
      while (!answered && sent < 64 * 1024 * 1024) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
    };
    req.write('{"hashes":[');
    pump();
  });
  assert.equal(reply.status, 413);
  assert.equal(parseErrorBody(JSON.parse(reply.body))?.code, 'ERR_LIVEMOD_TOO_LARGE');
  assert.ok(sent < 8 * 1024 * 1024, `answered after ${sent} bytes, not after reading everything`);
});

test('a client reading a large batch too slowly is cut at responseTimeoutMs, and the server never queues the whole response', async (t) => {
  const blobSize = 4 * 1024 * 1024;
  const files: Record<string, Buffer> = {};
  for (let index = 0; index < 6; index += 1) files[`big${index}.bin`] = Buffer.alloc(blobSize, index);
  const { server, port, key, logged } = await startServer(t, { responseTimeoutMs: 500 });
  const snapshot = makeSnapshot(key, files);
  server.publish(snapshot);
  const body = JSON.stringify({ hashes: manifestBlobs(snapshot.manifest).map((ref) => ref.hash) });
  const socket = connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  socket.on('error', () => {});
  socket.pause();
  socket.write(`POST /batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  const line = await logged(/still unsent/, 5000);
  const queued = Number(/\((\d+) bytes queued\)/.exec(line)?.[1]);
  assert.ok(queued <= blobSize + 128 * 1024, `${queued} bytes queued in the server, at most one blob beyond the socket`);
  // Now read what arrived: the response must be cut short, not complete.
  let received = 0;
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  socket.resume();
  await within(closed, 5000, 'the cut connection to close');
  assert.ok(received < 6 * blobSize, `received ${received} of ${6 * blobSize} bytes`);
});

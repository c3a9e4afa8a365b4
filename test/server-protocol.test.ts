// The wire protocol module on its own: batch framing across any chunking, and message parsers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLivemodError } from '../src/errors.ts';
import {
  batchFrameHeader, batchResponseLength, decodeMessage, encodeMessage, parseClientMessage, parseErrorBody, parseServerMessage, readBatchFrames,
  type BatchFrame, type ClientMessage, type ServerMessage,
} from '../src/protocol/index.ts';
import { sha256Hex } from '../src/snapshot/index.ts';

async function* chunked(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += size) yield new Uint8Array(data.subarray(at, at + size));
}

async function readAll(data: Buffer, size: number, maxFrameBytes?: number): Promise<BatchFrame[]> {
  const frames: BatchFrame[] = [];
  for await (const frame of readBatchFrames(chunked(data, size), 'test', maxFrameBytes)) frames.push(frame);
  return frames;
}

function encode(blobs: Buffer[]): Buffer {
  return Buffer.concat(blobs.flatMap((bytes) => [Buffer.from(batchFrameHeader(sha256Hex(bytes), bytes.length)), bytes]));
}

test('batch frames decode identically whatever the chunk boundaries, empty blobs included', async () => {
  const blobs = [Buffer.from('first\nwith newline'), Buffer.alloc(0), Buffer.alloc(3000, 9), Buffer.from('1234 5\n'), Buffer.alloc(0)];
  const data = encode(blobs);
  assert.equal(data.length, batchResponseLength(blobs.map((bytes) => ({ hash: sha256Hex(bytes), length: bytes.length }))));
  for (const size of [1, 2, 7, 65, 1000, data.length]) {
    const frames = await readAll(data, size);
    assert.deepEqual(frames.map((frame) => frame.bytes), blobs, `chunks of ${size}`);
    assert.deepEqual(frames.map((frame) => frame.hash), blobs.map((bytes) => sha256Hex(bytes)));
  }
});

test('truncated or malformed batch responses fail with ERR_LIVEMOD_PROTOCOL', async () => {
  const good = encode([Buffer.from('hello world')]);
  const cases: Array<[Buffer, RegExp, number?]> = [
    [good.subarray(0, good.length - 1), /ends inside blob/],
    [good.subarray(0, 30), /ends inside a frame header/],
    [Buffer.from(`${'a'.repeat(64)} 1x\nz`), /not "<hash> <length>"/],
    [Buffer.from(`${'A'.repeat(64)} 1\nz`), /not "<hash> <length>"/],
    [Buffer.from(`${'a'.repeat(64)} 01\nz`), /not "<hash> <length>"/],
    [Buffer.from('x'.repeat(200)), /longer than a hash/],
    [good, /over the 4-byte limit/, 4],
  ];
  for (const [data, message, limit] of cases) {
    await assert.rejects(readAll(data, 5, limit), (error: unknown) => isLivemodError(error) && error.code === 'ERR_LIVEMOD_PROTOCOL' && message.test(error.message), String(message));
  }
});

test('every message type survives encode → decode → parse', () => {
  const server: ServerMessage[] = [
    { type: 'hello', protocol: 1, version: 5, etag: '"x"' },
    { type: 'hello', protocol: 1, version: null, etag: null },
    { type: 'version', version: 6, etag: '"y"', manifestHash: 'ab' },
    { type: 'version', version: 7, etag: '"z"', manifestHash: 'cd', manifest: '{"envelope":"…"}' },
    { type: 'pong' },
    { type: 'error', code: 'ERR_LIVEMOD_PROTOCOL', message: 'no' },
  ];
  for (const message of server) assert.deepEqual(decodeMessage(encodeMessage(message), parseServerMessage), { ok: true, message });
  const client: ClientMessage[] = [{ type: 'status', version: 0 }, { type: 'status', version: 9, swap: { ok: false, error: 'x' } }, { type: 'ping' }];
  for (const message of client) assert.deepEqual(decodeMessage(encodeMessage(message), parseClientMessage), { ok: true, message });
});

test('parsers refuse wrong shapes, ignore unknown fields, and never throw', () => {
  for (const value of [null, 1, 'x', [], {}, { type: 1 }, { type: 'hello', protocol: 1, version: 'v', etag: null }, { type: 'version', version: 1 }, { type: 'version', version: 1, etag: '"x"', manifestHash: 'x', manifest: { signed: 1 } }, { type: 'error', code: 1 }, { type: 'nope' }]) {
    assert.equal(parseServerMessage(value).ok, false, JSON.stringify(value));
  }
  for (const value of [null, { type: 'status', version: 1.5 }, { type: 'status', version: 1, swap: [] }, { type: 'hello' }, { type: '__proto__' }]) {
    assert.equal(parseClientMessage(value).ok, false, JSON.stringify(value));
  }
  assert.deepEqual(parseClientMessage({ type: 'ping', extra: true }), { ok: true, message: { type: 'ping' } });
  assert.equal(decodeMessage('{', parseClientMessage).ok, false);
});

test('error bodies parse back into code, message and the unknown-hash list', () => {
  assert.deepEqual(parseErrorBody({ error: { code: 'ERR_LIVEMOD_BLOB_UNKNOWN', message: 'm', unknown: ['a'], unknownCount: 3 } }), { code: 'ERR_LIVEMOD_BLOB_UNKNOWN', message: 'm', unknown: ['a'], unknownCount: 3 });
  assert.deepEqual(parseErrorBody({ error: { code: 'C', message: 'm', unknown: [1] } }), { code: 'C', message: 'm' });
  for (const value of [null, {}, { error: 'x' }, { error: { code: 1, message: 'm' } }]) assert.equal(parseErrorBody(value), undefined);
});

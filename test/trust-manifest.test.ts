// Nothing from the network is parsed before its signature verifies. A client fed any 16 MiB body
// as its manifest stays within 64 MiB of its baseline memory and exits 1 at once, with one inert
// error line: measured on the real `livemod run` in child processes against a real server. The
// bounded parse of verified bytes, and the header's strictness, are held in-process with real keys.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test, type TestContext } from 'node:test';
import {
  MAX_MANIFEST_DEPTH, MAX_MANIFEST_VALUES, generatePublisherKey, openManifest, parsePublicKey, sealBytes, type PublisherKey,
} from '../src/snapshot/index.ts';
import { runAsync, type AsyncCliResult } from './helpers/cli.ts';
import { tempDir } from './helpers/fs.ts';
import { makeSnapshot } from './helpers/server-fixtures.ts';

const SIXTEEN_MIB = 16 * 1024 * 1024;
const PROBE = fileURLToPath(new URL('./helpers/rss-probe.ts', import.meta.url));
// eslint-disable-next-line no-control-regex -- what must never reach a terminal
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

/** Exactly `size` bytes: `head`, then `fill` repeated, then `tail`. */
function body(head: string, fill: string, tail: string, size = SIXTEEN_MIB): Buffer {
  const out = Buffer.alloc(size, fill);
  out.write(head, 0, 'latin1');
  out.write(tail, size - Buffer.byteLength(tail, 'latin1'), 'latin1');
  return out;
}

function header(entries: ReadonlyArray<{ keyId: string; sig: string }>): string {
  return `{"envelope":"livemod/envelope@2","signatures":[${entries.map((entry) => `{"keyId":"${entry.keyId}","sig":"${entry.sig}"}`).join(',')}],"signed":`;
}

const FAKE_SIG = 'A'.repeat(85) + 'A';

async function serveBody(t: TestContext, bytes: Buffer): Promise<string> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes.length }).end(bytes));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

interface Measured extends AsyncCliResult {
  readonly rssMiB: number;
}

async function measure(t: TestContext, url: string, key: PublisherKey): Promise<Measured> {
  const dir = tempDir(t);
  const rssFile = join(dir, 'rss');
  const result = await runAsync(['run', url, '--key', key.publicKeyString, '--cache', join(dir, 'cache')], { node: ['--import', PROBE], env: { LIVEMOD_TEST_RSS_FILE: rssFile }, timeoutMs: 30_000 });
  return { ...result, rssMiB: Number(readFileSync(rssFile, 'utf8')) / 1024 };
}

describe('a hostile 16 MiB manifest body, in a real `livemod run`', () => {
  const key = generatePublisherKey();
  const other = () => generatePublisherKey().keyId;
  const cases: Array<{ name: string; bytes: () => Buffer; code: string; message: RegExp }> = [
    {
      name: '16 MiB of nested [[[…',
      bytes: () => body('', '[', ''),
      code: 'ERR_LIVEMOD_MANIFEST_INVALID',
      message: /does not start with a livemod envelope/,
    },
    {
      name: 'a version-1 envelope with 5.6 million {} in signatures',
      bytes: () => body('{"signatures":[', '{},', '{}],"signed":{}}'),
      code: 'ERR_LIVEMOD_MANIFEST_INVALID',
      message: /is a version-1 manifest/,
    },
    {
      name: 'a well-formed header with the pinned key id over 16 MiB of nesting (bad signature)',
      bytes: () => body(header([{ keyId: key.keyId, sig: FAKE_SIG }]) + '{', '[', '}}'),
      code: 'ERR_LIVEMOD_SIGNATURE_INVALID',
      message: /fails its signature check/,
    },
    {
      name: 'four foreign key ids over 16 MiB of {}',
      bytes: () => body(header([other(), other(), other(), other()].map((keyId) => ({ keyId, sig: FAKE_SIG }))) + '{"a":[', '{},', '{}]}}'),
      code: 'ERR_LIVEMOD_WRONG_KEY',
      message: /is signed by key ids [0-9a-f]{16}, [0-9a-f]{16}, [0-9a-f]{16} and 1 more, not by the pinned key/,
    },
    {
      name: 'a key id holding ESC[2K, CR and a forged green success line',
      bytes: () => body(header([{ keyId: '\u001b[2K\r\u001b[32mverified, running version 99\u001b[0m\n', sig: FAKE_SIG }]), ' ', '}'),
      code: 'ERR_LIVEMOD_MANIFEST_INVALID',
      message: /has a malformed signature header/,
    },
    {
      name: 'a header of 5 signature entries (more than the 4 allowed)',
      bytes: () => body(header([0, 1, 2, 3, 4].map(() => ({ keyId: key.keyId, sig: FAKE_SIG }))), ' ', '}'),
      code: 'ERR_LIVEMOD_MANIFEST_INVALID',
      message: /at most 4 entries/,
    },
  ];

  test('each is refused with one inert line, within 64 MiB of the baseline and at once', async (t) => {
    // The baseline: the same command refusing a two-byte body.
    const baseline = await measure(t, await serveBody(t, Buffer.from('{}')), key);
    assert.equal(baseline.status, 1, baseline.stderr);
    t.diagnostic(`baseline: peak RSS ${baseline.rssMiB.toFixed(1)} MiB, ${baseline.ms.toFixed(0)} ms`);
    for (const item of cases) {
      const bytes = item.bytes();
      assert.equal(bytes.length, SIXTEEN_MIB);
      const run = await measure(t, await serveBody(t, bytes), key);
      const growth = run.rssMiB - baseline.rssMiB;
      t.diagnostic(`${item.name}: peak RSS +${growth.toFixed(1)} MiB over baseline, ${run.ms.toFixed(0)} ms (baseline ${baseline.ms.toFixed(0)} ms)`);
      assert.equal(run.status, 1, `${item.name}: ${run.stderr}`);
      assert.ok(run.stderr.endsWith(`[${item.code}]\n`), `${item.name}: ${run.stderr}`);
      assert.match(run.stderr, item.message, item.name);
      assert.equal(run.stderr.trimEnd().split('\n').length, 1, `${item.name}: one line`);
      assert.doesNotMatch(run.stderr.trimEnd(), CONTROL, `${item.name}: no control characters reach the terminal`);
      assert.ok(run.stderr.length < 1000, `${item.name}: a bounded line (${run.stderr.length} characters)`);
      assert.ok(growth <= 64, `${item.name}: peak RSS grew ${growth.toFixed(1)} MiB over the baseline`);
      // "At once": the target is a second over the baseline; the bound asserted leaves room for a loaded machine.
      assert.ok(run.ms - baseline.ms < 5_000, `${item.name}: took ${run.ms.toFixed(0)} ms, baseline ${baseline.ms.toFixed(0)} ms`);
    }
  });
});

describe('the envelope header and the bounded parse of verified bytes', () => {
  const key = generatePublisherKey();
  const pinned = parsePublicKey(key.publicKeyString);
  const open = (bytes: Buffer): unknown => openManifest(bytes, pinned, 'test');
  const refused = (bytes: Buffer, code: string, message: RegExp): void => {
    assert.throws(() => open(bytes), (error: NodeJS.ErrnoException) => {
      assert.equal(error.code, code, error.message);
      assert.match(error.message, message);
      assert.doesNotMatch(error.message, CONTROL);
      return true;
    });
  };

  test('signed by the real key, but nested deeper than the limit: refused before JSON.parse', () => {
    const depth = MAX_MANIFEST_DEPTH + 8;
    refused(sealBytes(Buffer.from(`{"a":${'['.repeat(depth)}${']'.repeat(depth)}}`), key), 'ERR_LIVEMOD_MANIFEST_INVALID', new RegExp(`nests deeper than ${MAX_MANIFEST_DEPTH} levels`));
  });

  test('signed by the real key, but holding more values than the limit: refused before JSON.parse', () => {
    refused(sealBytes(Buffer.from(`{"a":[${'0,'.repeat(MAX_MANIFEST_VALUES)}0]}`), key), 'ERR_LIVEMOD_MANIFEST_INVALID', new RegExp(`holds more than ${MAX_MANIFEST_VALUES} values`));
  });

  test('brackets and commas inside strings, escaped quotes and backslashes included, do not count', () => {
    const snapshot = makeSnapshot(key, { 'a.ts': 'x' });
    const path = `${'[,'.repeat(100)}"]].ts`;
    const record = { ...snapshot.manifest.modules['a.ts']!, exports: ['\\', '\\"[[[', `${'{'.repeat(MAX_MANIFEST_DEPTH * 2)}\\\\`] };
    const signed = JSON.stringify({ ...snapshot.manifest, entry: null, modules: { [path]: record } });
    const manifest = openManifest(sealBytes(Buffer.from(signed), key), pinned, 'test');
    assert.deepEqual(manifest.modules[path]!.exports, record.exports);
  });

  test('a string that never closes is refused, after escapes of every kind; a million escapes in one string are still read', () => {
    refused(sealBytes(Buffer.from('{"a":"abc,[[[}'), key), 'ERR_LIVEMOD_MANIFEST_INVALID', /a string does not end/);
    refused(sealBytes(Buffer.from('{"a":"abc\\"}'), key), 'ERR_LIVEMOD_MANIFEST_INVALID', /a string does not end/);
    refused(sealBytes(Buffer.from(`{"a":"${'\\"'.repeat(1_000_000)}}`), key), 'ERR_LIVEMOD_MANIFEST_INVALID', /a string does not end/);
    // Well formed, but not a manifest: past the bounded parse, refused by the validation.
    refused(sealBytes(Buffer.from(`{"a":"${'\\"['.repeat(1_000_000)}"}`), key), 'ERR_LIVEMOD_MANIFEST_INVALID', /manifest\.schema|must be absent/);
  });

  test('a validly signed field name with control characters is shown escaped and cut', () => {
    const snapshot = makeSnapshot(key, { 'a.ts': 'x' });
    const signed = JSON.stringify({ ...snapshot.manifest, [`\u001b[2K\r${'x'.repeat(5000)}`]: 1 });
    refused(sealBytes(Buffer.from(signed), key), 'ERR_LIVEMOD_MANIFEST_INVALID', /manifest\["\\x1b\[2K\\x0dx+"… \(\d+ more characters\)\] must be absent/);
  });

  test('the header layout is exact: whitespace, key order, bytes after the envelope, a cut body', () => {
    const { sealed } = makeSnapshot(key, { 'a.ts': 'x' });
    const text = sealed.bytes.toString('latin1');
    assert.doesNotThrow(() => open(sealed.bytes));
    refused(Buffer.from(text.replace('"signatures":[', '"signatures": [')), 'ERR_LIVEMOD_MANIFEST_INVALID', /does not start with a livemod envelope/);
    refused(Buffer.from(text.replace(/\{"keyId":"([0-9a-f]+)","sig":"([^"]+)"\}/, '{"sig":"$2","keyId":"$1"}')), 'ERR_LIVEMOD_MANIFEST_INVALID', /malformed signature header/);
    refused(Buffer.from(`${text}\n`), 'ERR_LIVEMOD_MANIFEST_INVALID', /ends with the envelope/);
    refused(sealed.bytes.subarray(0, sealed.bytes.length - 10), 'ERR_LIVEMOD_MANIFEST_INVALID', /ends with the envelope/);
    refused(sealed.bytes.subarray(0, 30), 'ERR_LIVEMOD_MANIFEST_INVALID', /cut short/);
  });

  test('a signature spelled with other unused low bits is refused: one signature, one text', () => {
    const { sealed } = makeSnapshot(key, { 'a.ts': 'x' });
    const at = sealed.bytes.indexOf('"sig":"') + 7 + 85;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const value = alphabet.indexOf(String.fromCharCode(sealed.bytes[at]!));
    // The last of 86 characters carries 2 signature bits and 4 unused ones: flip an unused one.
    const copy = Buffer.from(sealed.bytes);
    copy[at] = alphabet.charCodeAt(value ^ 1);
    assert.deepEqual(Buffer.from(copy.subarray(at - 85, at + 1).toString('latin1'), 'base64url'), Buffer.from(sealed.bytes.subarray(at - 85, at + 1).toString('latin1'), 'base64url'), 'the two spellings decode to the same signature');
    refused(copy, 'ERR_LIVEMOD_SIGNATURE_INVALID', /fails its signature check/);
  });
});

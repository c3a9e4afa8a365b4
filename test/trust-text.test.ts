// Error text from the network is bounded and inert. Every value a host controls that reaches a
// message — HTTP status text, a server's error body, batch framing, module paths and specifiers
// of a signed manifest, key ids (test/trust-manifest.test.ts) — is shown with its control
// characters escaped and cut to a bounded length, so a failed run cannot erase its own error
// line and print a forged success. Real servers on 127.0.0.1:0, the real CLI where the terminal matters.
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { connect } from '../src/client/index.ts';
import { generatePublisherKey, signSnapshot } from '../src/snapshot/index.ts';
import { SnapshotBuilder, publishSnapshot } from '../src/build/index.ts';
import { fetchSnapshot } from '../src/sync/index.ts';
import { inert, listed, quoted } from '../src/text.ts';
import { rejectsWithCode } from './helpers/assert.ts';
import { runAsync } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { startServer } from './helpers/server-fixtures.ts';
import { startHost } from './helpers/static-host.ts';

// eslint-disable-next-line no-control-regex -- what must never reach a terminal
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const FORGED = '\u001b[2K\u001b[1A\u001b[32mverified, running version 99\u001b[0m';
const quiet = { notice: () => {} };

function assertInert(message: string, max = 1000): void {
  assert.doesNotMatch(message, CONTROL, `no control characters: ${JSON.stringify(message)}`);
  assert.ok(message.length <= max, `bounded: ${message.length} characters`);
}

/** A raw TCP server answering every request with exactly these bytes (what node:http would refuse to send). */
async function rawServer(t: TestContext, answer: (request: string) => Buffer): Promise<string> {
  const server = createNetServer((socket) => {
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (head.includes('\r\n\r\n')) socket.end(answer(head));
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

test('inert(), quoted() and listed(): escaped, cut, counted', () => {
  assert.equal(inert(`a${FORGED}`), 'a\\x1b[2K\\x1b[1A\\x1b[32mverified, running version 99\\x1b[0m');
  assert.equal(inert('\u0085\u009b\u202e\r\n'), '\\x85\\x9b\\u202e\\x0d\\x0a');
  assert.equal(inert('x'.repeat(61_500_000), 10), `${'x'.repeat(10)}… (61499990 more characters)`);
  assert.equal(inert(`${'x'.repeat(9)}😀`, 10), `${'x'.repeat(9)}… (2 more characters)`, 'a surrogate pair is never split');
  assert.equal(quoted('a"b\\c\u001b'), '"a\\"b\\\\c\\x1b"');
  assert.equal(listed(['a', 'b', 'c', 'd', 'e']), 'a, b, c and 2 more');
  assert.equal(listed([]), 'none');
});

test('HTTP status text with escape sequences, 5000 characters long, is shown inert and cut, also on the terminal', async (t) => {
  const url = await rawServer(t, () => Buffer.from(`HTTP/1.1 500 ${FORGED}${'x'.repeat(5000)}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`, 'latin1'));
  const key = generatePublisherKey();
  const error = await rejectsWithCode(connect(url, { publicKey: key.publicKeyString, cache: tempDir(t), ...quiet }), 'ERR_LIVEMOD_FETCH_FAILED', /answered 500 \\x1b\[2K\\x1b\[1A\\x1b\[32mverified, running version 99\\x1b\[0mx+… \(\d+ more characters\); try again later/);
  assertInert(error.message, 400);
  const run = await runAsync(['run', url, '--key', key.publicKeyString, '--cache', join(tempDir(t), 'cache')]);
  assert.equal(run.status, 1);
  assert.equal(run.stderr.split('\n').length, 2, 'one line');
  assertInert(run.stderr.trimEnd(), 400);
});

test("a server's error body is kept as its message only inert and cut", async (t) => {
  const server = createHttpServer((_req, res) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'ERR_LIVEMOD_NO_SNAPSHOT', message: `${FORGED}\r\n${'y'.repeat(10_000)}` } })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const error = await rejectsWithCode(connect(url, { publicKey: generatePublisherKey().publicKeyString, cache: tempDir(t), ...quiet }), 'ERR_LIVEMOD_NO_SNAPSHOT', /answered 500: \\x1b\[2K.*version 99\\x1b\[0m\\x0d\\x0ay+… \(\d+ more characters\)/);
  assertInert(error.message, 600);
});

test('a batch frame header with escape sequences is quoted inert and cut', async (t) => {
  const key = generatePublisherKey();
  const dir = tempDir(t);
  writeFiles(dir, { 'a.ts': 'export const a = 1;' });
  const real = signSnapshot(new SnapshotBuilder(dir).build().content, key);
  const url = await rawServer(t, (request) => {
    if (request.startsWith('GET /manifest.json')) {
      return Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlivemod-batch: /batch\r\ncontent-length: ${real.sealed.bytes.length}\r\nconnection: close\r\n\r\n`), real.sealed.bytes]);
    }
    // Short enough to pass the header length check: it is refused for its content, and quoted.
    const body = `${FORGED}\n`;
    return Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: application/vnd.livemod.batch\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  const error = await rejectsWithCode(fetchSnapshot(url, key), 'ERR_LIVEMOD_PROTOCOL', /has a frame header "\\x1b\[2K.*that is not "<hash> <length>"/);
  assertInert(error.message, 600);
});

test('a module path and a specifier holding escape sequences are shown escaped', async (t) => {
  const dir = tempDir(t);
  const evil = `evil${FORGED}.ts`;
  writeFiles(dir, {
    'main.ts': `import { x } from './${evil.replace('.ts', '')}';\nexport const y = x;`,
    [evil]: 'export const x = 1;',
    'broken.ts': `import z from "./nowhere${'\\u001b[2K\\r'}forged";\nexport default z;`,
  });
  const key = generatePublisherKey();
  const out = tempDir(t);
  await publishSnapshot(new SnapshotBuilder(dir).build().content, key, out);

  // The blob of the module with the hostile path is changed on the host: the hash error names it, escaped.
  const tampered = await startHost(t, out, { tamper: (_path, bytes) => (bytes.includes('x = 1;') ? Buffer.from(bytes.toString().replace('= 1', '= 2')) : bytes), ranges: 'ignore' });
  const error = await rejectsWithCode(connect(tampered.url, { publicKey: key.publicKeyString, cache: tempDir(t), ...quiet }), 'ERR_LIVEMOD_HASH_MISMATCH', /for "evil\\x1b\[2K\\x1b\[1A\\x1b\[32mverified, running version 99\\x1b\[0m\.ts" from /);
  assertInert(error.message);

  const host = await startHost(t, out);
  const app = await connect(host.url, { publicKey: key.publicKeyString, cache: tempDir(t), ...quiet });
  assert.equal((await app.import('main.ts')).y, 1);
  await assert.rejects(app.import('broken.ts'), (failure: Error & { code?: string }) => {
    assert.equal(failure.code, 'ERR_MODULE_NOT_FOUND');
    assert.match(failure.message, /Cannot find module '\.\/nowhere\\x1b\[2K\\x0dforged'/);
    assertInert(failure.message);
    return true;
  });
  await rejectsWithCode(app.import(`missing${FORGED}.ts`), 'ERR_LIVEMOD_MODULE_NOT_FOUND', /no module "missing\\x1b\[2K.*" in the snapshot .* modules there include "broken\.ts", "evil\\x1b/);
});

test('a 401 after a redirect names the host that answered', async (t) => {
  const target = await startServer(t, { tokens: ['secret-token-9'] });
  target.server.publish(signSnapshot({ name: 'redirected', modules: {}, entry: null, blobs: new Map() }, target.key));
  const redirector = createHttpServer((req, res) => res.writeHead(302, { location: `${target.url}${req.url}` }).end());
  await new Promise<void>((resolve) => redirector.listen(0, 'localhost', resolve));
  t.after(() => new Promise<void>((resolve) => redirector.close(() => resolve())));
  const from = `http://localhost:${(redirector.address() as AddressInfo).port}/`;
  const error = await rejectsWithCode(connect(from, { publicKey: target.key.publicKeyString, token: 'secret-token-9', cache: tempDir(t), ...quiet }), 'ERR_LIVEMOD_UNAUTHORIZED');
  assert.match(error.message, new RegExp(`GET ${from}manifest\\.json was redirected to 127\\.0\\.0\\.1:${target.port}, which answered 401: a token is sent only to the origin you named`));
});

// The client end to end, in-process: connect() against a real livemod server and a static
// host over loopback, with a real store in a temp dir.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test, type TestContext } from 'node:test';
import { connect } from '../src/client/index.ts';
import { openStore } from '../src/store/index.ts';
import { generatePublisherKey, sha256Hex, signSnapshot, type PublisherKey } from '../src/snapshot/index.ts';
import { SnapshotBuilder, publishSnapshot } from '../src/build/index.ts';
import type { RequestEvent } from '../src/sync/index.ts';
import { rejectsWithCode } from './helpers/assert.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { startServer } from './helpers/server-fixtures.ts';
import { startHost } from './helpers/static-host.ts';

const TREE = {
  'package.json': JSON.stringify({ name: 'client-test', type: 'module', exports: './main.ts' }),
  'main.ts': `import { greet } from './lib/greet'; import { sep } from 'node:path'; export const result: string = greet('client') + sep;`,
  'lib/greet.ts': `export const greet = (name: string): string => \`hello \${name}\`;`,
};

function requests(): { events: RequestEvent[]; onRequest: (event: RequestEvent) => void } {
  const events: RequestEvent[] = [];
  return { events, onRequest: (event) => events.push(event) };
}

function build(t: TestContext, files: Record<string, string> = TREE) {
  const dir = tempDir(t);
  writeFiles(dir, files);
  return new SnapshotBuilder(dir).build().content;
}

async function served(t: TestContext, files?: Record<string, string>) {
  const running = await startServer(t);
  running.server.publish(signSnapshot(build(t, files), running.key));
  return running;
}

async function published(t: TestContext, key: PublisherKey, files?: Record<string, string>, version?: number): Promise<string> {
  const out = tempDir(t);
  await publishSnapshot(build(t, files), key, out, version ? { version } : {});
  return out;
}

const quiet = { notice: () => {} };

test('cold start from a livemod server takes at most 3 requests; a warm start exactly 1 (304)', async (t) => {
  const { url, key } = await served(t);
  const cache = tempDir(t);
  const cold = requests();
  const app = await connect(`${url}/main.ts`, { publicKey: key.publicKeyString, cache, onRequest: cold.onRequest, ...quiet });
  assert.equal(app.from, 'network');
  assert.equal(app.entry, 'main.ts');
  assert.equal((await app.import()).result, 'hello client/');
  assert.ok(cold.events.length <= 3, `cold: ${cold.events.map((event) => event.kind).join(', ')}`);
  assert.deepEqual(cold.events.map((event) => event.kind), ['manifest', 'batch']);

  const warm = requests();
  const again = await connect(`${url}/`, { publicKey: key.publicKeyString, cache, onRequest: warm.onRequest, ...quiet });
  assert.equal(again.from, 'not-modified');
  assert.deepEqual(warm.events.map((event) => [event.kind, event.status]), [['manifest', 304]]);
  assert.equal(again.entry, 'main.ts', 'the manifest entry runs when the URL names no module');
  assert.equal((await again.import()).result, 'hello client/');
});

test('a static snapshot: cold in at most 3 requests, warm 1, and a module deeper in the tree finds the manifest above it', async (t) => {
  const key = generatePublisherKey();
  const host = await startHost(t, await published(t, key));
  const cache = tempDir(t);
  const cold = requests();
  const app = await connect(`${host.url}lib/greet.ts`, { publicKey: key.publicKeyString, cache, onRequest: cold.onRequest, ...quiet });
  assert.equal(app.entry, 'lib/greet.ts');
  assert.equal(typeof (await app.import()).greet, 'function');
  assert.ok(cold.events.filter((event) => event.status !== 404).length <= 3, cold.events.map((event) => `${event.kind} ${event.status}`).join(', '));
  const warm = requests();
  await connect(`${host.url}lib/greet.ts`, { publicKey: key.publicKeyString, cache, onRequest: warm.onRequest, ...quiet });
  assert.deepEqual(warm.events.map((event) => event.status).filter((status) => status !== 404), [304], 'lib/manifest.json is looked for first');
  // Only what runs was fetched: starting at the entry, which reaches more, fetches the rest then.
  const wider = requests();
  const entry = await connect(host.url, { publicKey: key.publicKeyString, cache, onRequest: wider.onRequest, ...quiet });
  assert.equal(wider.events[0]!.status, 304);
  assert.ok(wider.events.length > 1, 'the modules the entry reaches were fetched');
  assert.ok(await entry.import());
});

test('a 304 runs the stored manifest only if it still verifies: one changed in the store, its record made to match, is refused', async (t) => {
  const key = generatePublisherKey();
  const host = await startHost(t, await published(t, key));
  const cache = tempDir(t);
  await connect(host.url, { publicKey: key.publicKeyString, cache, ...quiet });
  const [origin] = readdirSync(join(cache, 'origins'));
  const folder = join(cache, 'origins', origin!);
  const bytes = readFileSync(join(folder, 'manifest.json'), 'utf8');
  assert.ok(bytes.includes('"main.ts"'));
  // Same length, other signed bytes; the record's hash made to match, so only the signature can tell.
  const forged = bytes.replace('"main.ts"', '"evil.ts"');
  writeFileSync(join(folder, 'manifest.json'), forged);
  const state = JSON.parse(readFileSync(join(folder, 'state.json'), 'utf8')) as { manifestHash: string };
  writeFileSync(join(folder, 'state.json'), JSON.stringify({ ...state, manifestHash: sha256Hex(forged) }));
  rmSync(join(folder, 'checked'), { force: true });
  const events = requests();
  await rejectsWithCode(connect(host.url, { publicKey: key.publicKeyString, cache, onRequest: events.onRequest, ...quiet }), 'ERR_LIVEMOD_SIGNATURE_INVALID');
  assert.deepEqual(events.events.map((event) => event.status), [304], 'the host confirmed the version the record names');
});

test('offline: an unreachable origin runs the cached version and says how old it is; --offline makes no request', async (t) => {
  const { url, key, server } = await served(t);
  const cache = tempDir(t);
  await connect(url, { publicKey: key.publicKeyString, cache, ...quiet });
  await server.close();

  const notices: string[] = [];
  const app = await connect(url, { publicKey: key.publicKeyString, cache, notice: (line) => notices.push(line), timeoutMs: 5000 });
  assert.equal(app.from, 'offline');
  assert.equal((await app.import('main.ts')).result, 'hello client/');
  assert.match(notices.join('\n'), /unreachable.*running cached version \d+ .*last confirmed \d+ s ago/);

  const none = requests();
  const offline = await connect(url, { publicKey: key.publicKeyString, cache, offline: true, onRequest: none.onRequest, ...quiet });
  assert.equal(offline.from, 'offline');
  assert.deepEqual(none.events, []);

  await new Promise((resolve) => setTimeout(resolve, 5));
  await assert.rejects(connect(url, { publicKey: key.publicKeyString, cache, maxStaleMs: 1, timeoutMs: 5000, ...quiet }), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_TOO_STALE' && /--max-stale/.test(error.message));
  await assert.rejects(connect(url, { publicKey: key.publicKeyString, cache: tempDir(t), offline: true, ...quiet }), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_NOT_CACHED');
});

test('rollback: a host serving an older version than the client accepted is refused with its own code', async (t) => {
  const key = generatePublisherKey();
  const newer = await published(t, key, TREE, 2000);
  const older = await published(t, key, TREE, 1000);
  const cache = tempDir(t);
  const host = await startHost(t, newer);
  assert.equal((await connect(host.url, { publicKey: key.publicKeyString, cache, ...quiet })).version, 2000);
  writeFileSync(join(newer, 'manifest.json'), readFileSync(join(older, 'manifest.json')));
  await assert.rejects(connect(host.url, { publicKey: key.publicKeyString, cache, ...quiet }), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_ROLLBACK' && /1000/.test(error.message));
});

test('freeze: an expired manifest is refused with its own code', async (t) => {
  const key = generatePublisherKey();
  const out = tempDir(t);
  await publishSnapshot(build(t), key, out, { now: Date.now() - 3_600_000, ttlMs: 60_000 });
  const host = await startHost(t, out);
  await assert.rejects(connect(host.url, { publicKey: key.publicKeyString, cache: tempDir(t), ...quiet }), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_EXPIRED');
});

test('a wrong pinned key and a missing key are refused before anything runs', async (t) => {
  const { url } = await served(t);
  await assert.rejects(connect(url, { publicKey: generatePublisherKey().publicKeyString, cache: tempDir(t), ...quiet }), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_WRONG_KEY');
  const saved = process.env.LIVEMOD_KEY;
  delete process.env.LIVEMOD_KEY;
  t.after(() => {
    if (saved !== undefined) process.env.LIVEMOD_KEY = saved;
  });
  await assert.rejects(connect(url, { cache: tempDir(t), ...quiet }), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_KEY_MISSING');
});

test('a blob tampered on the wire is refused and nothing is committed to the store', async (t) => {
  const key = generatePublisherKey();
  const host = await startHost(t, await published(t, key), {
    ranges: 'ignore',
    tamper: (path, bytes) => (path.startsWith('/pack/') ? Buffer.from(bytes.toString('latin1').replace('hello', 'HELLO'), 'latin1') : bytes),
  });
  const cache = tempDir(t);
  await assert.rejects(connect(host.url, { publicKey: key.publicKeyString, cache, ...quiet }), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_HASH_MISMATCH');
  await assert.rejects(connect(host.url, { publicKey: key.publicKeyString, cache, offline: true, ...quiet }), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_NOT_CACHED', 'no manifest was accepted');
});

test('a blob tampered on disk is detected, removed and refetched', async (t) => {
  const { url, key } = await served(t);
  const cache = tempDir(t);
  const app = await connect(url, { publicKey: key.publicKeyString, cache, ...quiet });
  const hash = app.manifest.modules['lib/greet.ts']!.blob.hash;
  const file = join(cache, 'blobs', hash.slice(0, 2), hash);
  const bytes = readFileSync(file);
  writeFileSync(file, Buffer.from(bytes.toString('utf8').replace('hello', 'PWNED')));
  const notices: string[] = [];
  const again = await connect(url, { publicKey: key.publicKeyString, cache, notice: (line) => notices.push(line) });
  assert.equal((await again.import('main.ts')).result, 'hello client/');
  assert.match(notices.join('\n'), /failed their hash check \(and were removed\); refetching/);
  assert.deepEqual(readFileSync(file), bytes, 'the good blob is back');
  assert.ok(readdirSync(join(cache, 'blobs')).length > 0);
});

test('the config file names the key (and token) per origin; a malformed one is a clear error', async (t) => {
  const running = await startServer(t, { tokens: ['secret-token-1'] });
  running.server.publish(signSnapshot(build(t), running.key));
  const config = join(tempDir(t), 'config.json');
  const saved = { config: process.env.LIVEMOD_CONFIG, key: process.env.LIVEMOD_KEY, token: process.env.LIVEMOD_TOKEN };
  delete process.env.LIVEMOD_KEY;
  delete process.env.LIVEMOD_TOKEN;
  process.env.LIVEMOD_CONFIG = config;
  t.after(() => {
    for (const [name, value] of [['LIVEMOD_CONFIG', saved.config], ['LIVEMOD_KEY', saved.key], ['LIVEMOD_TOKEN', saved.token]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  writeFileSync(config, JSON.stringify({ origins: { 'http://127.0.0.1/': { key: 'ed25519:wrong' }, [`${running.url}/`]: { key: running.key.publicKeyString, token: 'secret-token-1' } } }));
  const app = await connect(`${running.url}/main.ts`, { cache: tempDir(t), ...quiet });
  assert.equal((await app.import()).result, 'hello client/');
  writeFileSync(config, '{"origins": [1]}');
  await assert.rejects(connect(running.url, { cache: tempDir(t), ...quiet }), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_CONFIG_INVALID' && error.message.includes(config));
});

test('a token is never sent to the host a manifest request was redirected to', async (t) => {
  const target = await startServer(t);
  target.server.publish(signSnapshot(build(t), target.key));
  const seenByTarget: (string | undefined)[] = [];
  const { createServer } = await import('node:http');
  // The redirected-to host records the authorization header of every request it gets.
  const recorder = createServer(async (req, res) => {
    seenByTarget.push(req.headers.authorization);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const answer = await fetch(new URL(req.url ?? '/', target.url), { method: req.method ?? 'GET', headers: { 'content-type': req.headers['content-type'] ?? 'application/json' }, ...(req.method === 'POST' ? { body: Buffer.concat(chunks) } : {}) });
    const headers: Record<string, string> = {};
    answer.headers.forEach((value, name) => (headers[name] = value));
    delete headers['content-encoding'];
    delete headers['content-length'];
    res.writeHead(answer.status, headers).end(Buffer.from(await answer.arrayBuffer()));
  });
  await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', resolve));
  const redirector = createServer((req, res) => res.writeHead(302, { location: `http://127.0.0.1:${(recorder.address() as { port: number }).port}${req.url}` }).end());
  await new Promise<void>((resolve) => redirector.listen(0, 'localhost', resolve));
  t.after(() => {
    recorder.closeAllConnections();
    recorder.close();
    redirector.closeAllConnections();
    redirector.close();
  });
  const app = await connect(`http://localhost:${(redirector.address() as { port: number }).port}/main.ts`, { publicKey: target.key.publicKeyString, token: 'secret-token-2', cache: tempDir(t), ...quiet });
  assert.equal((await app.import()).result, 'hello client/');
  assert.ok(seenByTarget.length >= 2);
  assert.deepEqual(seenByTarget.filter((value) => value !== undefined), [], 'no request to the other host carried the token');
});

test('a stored manifest is re-opened without a second signature check only as the very file a start opened, with the key it opened it with', async (t) => {
  const key = generatePublisherKey();
  const host = await startHost(t, await published(t, key));
  const cache = tempDir(t);
  await connect(host.url, { publicKey: key.publicKeyString, cache, ...quiet });
  const store = openStore({ dir: cache });
  assert.equal(store.readOrigin(host.url)!.openedWith, null, 'a commit alone records no opening');
  // The first 304 opens the stored manifest with the key, and says so beside the state.
  await connect(host.url, { publicKey: key.publicKeyString, cache, ...quiet });
  const stored = store.readOrigin(host.url)!;
  assert.equal(stored.openedWith, key.publicKeyString);
  const [origin] = readdirSync(join(cache, 'origins'));
  const folder = join(cache, 'origins', origin!);
  assert.equal(readFileSync(join(folder, 'checked'), 'latin1').split(' ').slice(1).join(' '), `${stored.state.manifestHash} ${stored.identity} ${key.publicKeyString}`);
  const warm = await connect(host.url, { publicKey: key.publicKeyString, cache, ...quiet });
  assert.equal(warm.from, 'not-modified');
  assert.equal((await warm.import()).result, 'hello client/');
  // Another pinned key is held to the signature as ever.
  await rejectsWithCode(connect(host.url, { publicKey: generatePublisherKey().publicKeyString, cache, ...quiet }), 'ERR_LIVEMOD_WRONG_KEY');

  // Changed in place, size and mtime kept, its state and confirmation forged to name the new
  // bytes and the file as it was: the kernel's ctime tells, and the signature is checked.
  const path = join(folder, 'manifest.json');
  const before = statSync(path);
  const forged = readFileSync(path, 'utf8').replace('"main.ts"', '"evil.ts"');
  writeFileSync(path, forged);
  utimesSync(path, before.atime, before.mtime);
  assert.equal(statSync(path).ino, before.ino);
  const state = JSON.parse(readFileSync(join(folder, 'state.json'), 'utf8')) as { manifestHash: string };
  writeFileSync(join(folder, 'state.json'), JSON.stringify({ ...state, manifestHash: sha256Hex(forged) }));
  writeFileSync(join(folder, 'checked'), `${Date.now()} ${sha256Hex(forged)} ${stored.identity} ${key.publicKeyString}`);
  assert.equal(store.readOrigin(host.url)!.openedWith, null);
  const events = requests();
  await rejectsWithCode(connect(host.url, { publicKey: key.publicKeyString, cache, onRequest: events.onRequest, ...quiet }), 'ERR_LIVEMOD_SIGNATURE_INVALID');
  assert.deepEqual(events.events.map((event) => event.status), [304]);
});

test('damage the kernel did not see (the confirmation made to know the changed file) is still found by cache verify, which hashes every record', async (t) => {
  const key = generatePublisherKey();
  const host = await startHost(t, await published(t, key));
  const cache = tempDir(t);
  await connect(host.url, { publicKey: key.publicKeyString, cache, ...quiet });
  await connect(host.url, { publicKey: key.publicKeyString, cache, ...quiet });
  const store = openStore({ dir: cache });
  const stored = store.readOrigin(host.url)!;
  assert.equal(stored.openedWith, key.publicKeyString);
  const folder = join(cache, 'origins', readdirSync(join(cache, 'origins'))[0]!);
  const path = join(folder, 'manifest.json');
  writeFileSync(path, readFileSync(path, 'utf8').replace('"main.ts"', '"mainXts"'));
  const now = statSync(path, { bigint: true });
  // As if the bytes had rotted under an unchanged file: the record still knows it.
  writeFileSync(join(folder, 'checked'), `${Date.now()} ${stored.state.manifestHash} ${now.dev}:${now.ino}:${now.size}:${now.mtimeNs}:${now.ctimeNs} ${key.publicKeyString}`);
  assert.equal(store.readOrigin(host.url)!.openedWith, key.publicKeyString);
  // Hashed, it no longer matches its state, and its entry names no module of it: the record is removed.
  assert.deepEqual(store.verify().corrupt, [relative(cache, folder)]);
  assert.equal(store.readOrigin(host.url), null);
  const app = await connect(host.url, { publicKey: key.publicKeyString, cache, ...quiet });
  assert.equal(app.from, 'network');
  assert.equal((await app.import()).result, 'hello client/');
});

test('an older signed manifest planted in the cache beside the newer ETag is not revalidated into running', async (t) => {
  const running = await startServer(t);
  const v1 = signSnapshot(build(t, { ...TREE, 'lib/greet.ts': 'export const greet = (name: string): string => `old ${name}`;' }), running.key);
  running.server.publish(v1);
  const cache = tempDir(t);
  await connect(running.url, { publicKey: running.key.publicKeyString, cache, ...quiet });
  const v2 = signSnapshot(build(t), running.key, { previousVersion: v1.manifest.version });
  running.server.publish(v2);
  await connect(running.url, { publicKey: running.key.publicKeyString, cache, ...quiet });
  // Plant v1's signed bytes, with a state naming their hash but keeping v2's ETag.
  const { originId, normaliseOrigin } = await import('../src/store/index.ts');
  const folder = join(cache, 'origins', originId(normaliseOrigin(`${running.url}/`)));
  const state = JSON.parse(readFileSync(join(folder, 'state.json'), 'utf8'));
  writeFileSync(join(folder, 'manifest.json'), v1.sealed.bytes);
  writeFileSync(join(folder, 'state.json'), JSON.stringify({ ...state, version: v1.manifest.version, manifestHash: v1.sealed.hash }));
  const app = await connect(running.url, { publicKey: running.key.publicKeyString, cache, ...quiet });
  assert.equal(app.version, v2.manifest.version);
  assert.equal((await app.import('main.ts')).result, 'hello client/');
});

test('only an unreachable origin or a gateway error falls back to the cache, not any error the server answers', async (t) => {
  const key = generatePublisherKey();
  const out = await published(t, key);
  let answer: number | null = null;
  const host = await startHost(t, out);
  const { createServer } = await import('node:http');
  const front = createServer((req, res) => {
    if (answer !== null) {
      res.writeHead(answer, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'ERR_LIVEMOD_FETCH_FAILED', message: 'go offline' } }));
      return;
    }
    void fetch(new URL(req.url ?? '/', host.url)).then(async (upstream) => res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? '' }).end(Buffer.from(await upstream.arrayBuffer())));
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    front.closeAllConnections();
    front.close();
  });
  const url = `http://127.0.0.1:${(front.address() as { port: number }).port}/`;
  const cache = tempDir(t);
  await connect(url, { publicKey: key.publicKeyString, cache, ...quiet });
  answer = 500;
  await assert.rejects(connect(url, { publicKey: key.publicKeyString, cache, ...quiet }), (error: NodeJS.ErrnoException) => /answered 500/.test(error.message));
  answer = 503;
  assert.equal((await connect(url, { publicKey: key.publicKeyString, cache, ...quiet })).from, 'offline');
});

test('a cache shared read-only still runs: offline, after a 304, and for cache ls', async (t) => {
  const { url, key } = await served(t);
  const cache = tempDir(t);
  await connect(url, { publicKey: key.publicKeyString, cache, ...quiet });
  const { spawnSync } = await import('node:child_process');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  // Not tempDir(): the mount must be gone before the folder is removed.
  const view = mkdtempSync(join(tmpdir(), 'livemod-ro-'));
  const bind = spawnSync('mount', ['--bind', cache, view], { encoding: 'utf8' });
  const readOnly = bind.status === 0 ? spawnSync('mount', ['-o', 'remount,bind,ro', view], { encoding: 'utf8' }) : bind;
  if (readOnly.status !== 0) {
    if (bind.status === 0) spawnSync('umount', [view]);
    rmSync(view, { recursive: true, force: true });
    t.skip(`cannot make a read-only bind mount here (${(readOnly.stderr || String(readOnly.error)).trim()}); needs root and mount`);
    return;
  }
  t.after(() => {
    spawnSync('umount', [view]);
    rmSync(view, { recursive: true, force: true });
  });
  const offline = await connect(url, { publicKey: key.publicKeyString, cache: view, offline: true, ...quiet });
  assert.equal((await offline.import('main.ts')).result, 'hello client/');
  const revalidated = await connect(url, { publicKey: key.publicKeyString, cache: view, ...quiet });
  assert.equal(revalidated.from, 'not-modified');
  const { cli } = await import('./helpers/cli.ts');
  assert.equal(cli(['cache', 'ls', '--cache', view, '--json']).status, 0);
});

// A start's conditional manifest request on a bare socket (src/sync/bare-revalidation.ts): what
// it takes from the answer (a well-formed 304 head only), what it leaves to node:http (every
// other answer, asked again), and the transport failures it throws as node:http would. The
// parser and the socket are tested in this process against raw TCP servers on 127.0.0.1:0; the
// whole path through real `livemod run` processes, where node:http is not loaded beforehand.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bareAllowed, bareNotModified, parseNotModified } from '../src/sync/bare-revalidation.ts';
import { runAsync } from './helpers/cli.ts';
import { tempDir } from './helpers/fs.ts';
import { publishedFolder } from './helpers/published-folder.ts';
import { within } from './helpers/server-fixtures.ts';

/** A raw TCP server: `answer` gets each connection's request head and the socket. */
async function rawServer(t: TestContext, answer: (head: string, socket: Socket) => void): Promise<{ url: URL; heads: string[] }> {
  const heads: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let text = '';
    let answered = false;
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1 || answered) return;
      answered = true;
      heads.push(text.slice(0, end));
      answer(text.slice(0, end), socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy();
    server.close(() => resolve());
  }));
  return { url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/app/manifest.json?x=1`), heads };
}

const ask = (url: URL, signal = AbortSignal.timeout(10_000)) => bareNotModified(url, { accept: 'application/json', 'if-none-match': '"abc"', authorization: 'Bearer t0ken' }, signal);

test('a 304 head is read: status text, headers by lowercase name, repeated ones joined; the request is a plain HTTP/1.1 GET that closes', async (t) => {
  const host = await rawServer(t, (_head, socket) => {
    socket.write('HTTP/1.1 304 Not Modified\r\nETag: "abc"\r\nLivemod-Channel: /_livemod/channel\r\nVary: accept\r\nvary:  origin \r\n\r\n');
  });
  const head = await ask(host.url);
  assert.deepEqual(head, { statusText: 'Not Modified', headers: { etag: '"abc"', 'livemod-channel': '/_livemod/channel', vary: 'accept, origin' } });
  const lines = host.heads[0]!.split('\r\n');
  assert.equal(lines[0], 'GET /app/manifest.json?x=1 HTTP/1.1');
  assert.deepEqual(lines.slice(1).sort(), ['Connection: close', `Host: ${host.url.host}`, 'accept: application/json', 'authorization: Bearer t0ken', 'if-none-match: "abc"'].sort());
});

test('an IPv6 origin is asked at its address, with the Host node:http would send', async (t) => {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n\r\n')) socket.end(`HTTP/1.1 304 Not Modified\r\nX-Host: ${/\r\nHost: ([^\r]*)/.exec(text)?.[1] ?? ''}\r\n\r\n`);
    });
  });
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(0, '::1', () => resolve(true));
  });
  if (!listening) {
    t.skip('no IPv6 loopback (::1) on this machine');
    return;
  }
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const head = await ask(new URL(`http://[::1]:${port}/manifest.json`));
  assert.deepEqual(head, { statusText: 'Not Modified', headers: { 'x-host': `[::1]:${port}` } });
});

test('every answer but a well-formed 304 head is left to node:http (null), and the socket is closed', async (t) => {
  const answers = [
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}',
    'HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\n\r\n',
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n',
    'HTTP/1.1 304 Not Modified\r\nBroken header line\r\n\r\n',
    'HTTP/1.1 304 Not Modified\r\nX-Folded: one\r\n two\r\n\r\n',
    'HTTP/1.1 304 Not Modified\r\nX-Bad: a\u0000b\r\n\r\n',
    'HTTP/2 304\r\n\r\n',
    'HTTP/1.1 3045 Odd\r\n\r\n',
    `HTTP/1.1 304 Not Modified\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`,
  ];
  for (const text of answers) {
    let closed: Promise<void> = Promise.resolve();
    const host = await rawServer(t, (_head, socket) => {
      closed = new Promise((resolve) => socket.on('close', () => resolve()));
      socket.write(text, 'latin1');
    });
    assert.equal(await ask(host.url), null, JSON.stringify(text.slice(0, 60)));
    await within(closed, 5000, 'the bare socket to close');
  }
});

test('a head that never ends is not read past 16 KiB', async (t) => {
  const host = await rawServer(t, (_head, socket) => {
    socket.write('HTTP/1.1 304 Not Modified\r\n');
    const timer = setInterval(() => socket.writable && socket.write(`X-Pad: ${'p'.repeat(1000)}\r\n`), 1);
    socket.on('close', () => clearInterval(timer));
  });
  assert.equal(await ask(host.url), null);
});

test('transport failures are thrown as node:http throws them: refused, closed before a head, aborted', async (t) => {
  const closing = await rawServer(t, (_head, socket) => socket.end('HTTP/1.1 304 Not Mo'));
  await assert.rejects(ask(closing.url), { code: 'ECONNRESET', message: 'socket hang up' });
  // A port nobody listens on: one just closed.
  const port = await new Promise<number>((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address() as AddressInfo;
      probe.close(() => resolve(free));
    });
  });
  await assert.rejects(ask(new URL(`http://127.0.0.1:${port}/manifest.json`)), { code: 'ECONNREFUSED' });
  const silent = await rawServer(t, () => {});
  const controller = new AbortController();
  const reason = new Error('given up');
  setTimeout(() => controller.abort(reason), 50);
  await assert.rejects(ask(silent.url, controller.signal), (thrown) => thrown === reason);
  await assert.rejects(ask(silent.url, AbortSignal.abort(reason)), (thrown) => thrown === reason);
});

test('a hostile head costs what reading it does: no expression backtracks over 16 KiB of blanks', () => {
  const blanks = ' \t'.repeat(8150);
  for (const head of [`HTTP/1.1 304 X\r\nA:${blanks}\u0000`, `HTTP/1.1 304 X\r\nA:${blanks}\r`, `HTTP/1.1 304 ${blanks}\u0000`, `HTTP/1.1 304 X\r\n${'a'.repeat(16_000)} :x`]) {
    const started = performance.now();
    assert.equal(parseNotModified(head), null);
    // Linear work is well under a millisecond; the backtracking this replaced took minutes.
    assert.ok(performance.now() - started < 2000, `${performance.now() - started} ms for a ${head.length}-character head`);
  }
  assert.deepEqual(parseNotModified(`HTTP/1.1 304 X\r\nA:${blanks}v${blanks}`), { statusText: 'X', headers: { a: 'v' } });
});

test('parseNotModified: only a 304 status line with well-formed header lines', () => {
  assert.deepEqual(parseNotModified('HTTP/1.0 304'), { statusText: '', headers: {} });
  assert.deepEqual(parseNotModified('HTTP/1.1 304 Not Modified\r\nA: 1\r\na: 2'), { statusText: 'Not Modified', headers: { a: '1, 2' } });
  assert.equal(parseNotModified('HTTP/1.1 200 OK'), null);
  assert.equal(parseNotModified('HTTP/1.1 304 Not Modified\r\n: no name'), null);
  assert.equal(parseNotModified('HTTP/1.1 304 Not Modified\r\nBad Name: x'), null);
  assert.equal(parseNotModified('HTTP/1.1 304 Not Modified\r\nA: 1\r\n'), null);
});

test('bareAllowed: plain http, no credentials in the URL, no environment proxy, headers node:http would send, node:http not loaded yet', () => {
  const url = new URL('http://127.0.0.1:9/manifest.json');
  const headers = { 'if-none-match': '"x"' };
  // This process loaded node:http (the test runner): a child that has not says yes.
  assert.equal(bareAllowed(url, headers), false);
  const module = fileURLToPath(new URL('../src/sync/bare-revalidation.ts', import.meta.url));
  const check = (code: string, env: NodeJS.ProcessEnv = {}): string => {
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', `import { bareAllowed } from ${JSON.stringify(module)};\n${code}`], { encoding: 'utf8', env: { ...process.env, NODE_USE_ENV_PROXY: '', NODE_OPTIONS: '', ...env } });
    assert.equal(result.status, 0, result.stderr);
    return result.stdout.trim();
  };
  const ok = `const h = { 'if-none-match': '"x"' };`;
  assert.equal(check(`${ok} console.log(bareAllowed(new URL('http://127.0.0.1:9/m'), h), bareAllowed(new URL('http://[::1]:9/m'), h))`), 'true true');
  assert.equal(check(`${ok} console.log(bareAllowed(new URL('https://127.0.0.1:9/m'), h), bareAllowed(new URL('http://u:p@127.0.0.1:9/m'), h))`), 'false false');
  assert.equal(check(`console.log(bareAllowed(new URL('http://127.0.0.1:9/m'), { a: 'x\\r\\nInjected: 1' }), bareAllowed(new URL('http://127.0.0.1:9/m'), { 'a b': 'x' }))`), 'false false');
  assert.equal(check(`console.log(bareAllowed(new URL('http://127.0.0.1:9/m'), { host: 'other' }), bareAllowed(new URL('http://127.0.0.1:9/m'), { Connection: 'keep-alive' }))`), 'false false');
  assert.equal(check(`${ok} process.getBuiltinModule('node:http'); console.log(bareAllowed(new URL('http://127.0.0.1:9/m'), h))`), 'false');
  assert.equal(check(`${ok} console.log(bareAllowed(new URL('http://127.0.0.1:9/m'), h))`, { NODE_USE_ENV_PROXY: '1' }), 'false');
});

test('the request made again after a bare try gets a stall timer of its own', async (t) => {
  // Each answer comes 600 ms after its request, within the 1,000 ms stall limit, but the two
  // together are not: the second request must not inherit what the first one used.
  const host = await rawServer(t, (head, socket) => {
    const bare = /\r\nConnection: close/i.test(head);
    setTimeout(() => socket.end(bare ? 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n' : 'HTTP/1.1 304 Not Modified\r\nETag: "abc"\r\nContent-Length: 0\r\n\r\n'), 600);
  });
  // Through a fresh process: this one has node:http loaded, which turns the bare try off.
  const sync = fileURLToPath(new URL('../src/sync/index.ts', import.meta.url));
  const snapshot = fileURLToPath(new URL('../src/snapshot/index.ts', import.meta.url));
  const code = `import { fetchManifest } from ${JSON.stringify(sync)};
import { generatePublisherKey, parsePublicKey } from ${JSON.stringify(snapshot)};
const key = parsePublicKey(generatePublisherKey().publicKeyString);
const result = await fetchManifest(${JSON.stringify(new URL('/app/', host.url).href)}, { key, etag: '"abc"', unchangedLikely: true, stallTimeoutMs: 1000, timeoutMs: 20000 });
console.log(result.status, process.moduleLoadList.includes('NativeModule http'));`;
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk));
  const status = await within(new Promise<number | null>((resolve) => child.on('close', resolve)), 60_000, 'the child');
  assert.equal(status, 0, err);
  assert.equal(out.trim(), 'not-modified true', 'a 200 to the bare try, then the 304 through node:http');
  assert.equal(host.heads.length, 2);
});

/**
 * A TCP front for an origin: each connection's first request head goes to `first` (which may
 * answer in the origin's place, or return false to pass the connection on untouched).
 */
async function front(t: TestContext, origin: URL, first: (head: string, socket: Socket, index: number) => boolean): Promise<{ url: string; heads: string[] }> {
  const { connect } = await import('node:net');
  const heads: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    let buffered = Buffer.alloc(0);
    let decided = false;
    socket.on('data', (chunk: Buffer) => {
      if (decided) return;
      buffered = Buffer.concat([buffered, chunk]);
      const text = buffered.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return;
      decided = true;
      heads.push(text.slice(0, end).split('\r\n')[0]!);
      if (first(text.slice(0, end), socket, heads.length - 1)) return;
      socket.pause();
      const upstream = connect({ host: origin.hostname, port: Number(origin.port) }, () => {
        upstream.write(buffered);
        socket.pipe(upstream).pipe(socket);
        socket.resume();
      });
      upstream.on('error', () => socket.destroy());
      sockets.add(upstream);
      upstream.on('close', () => sockets.delete(upstream));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy();
    server.close(() => resolve());
  }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${new URL(origin).pathname}`, heads };
}

const PROGRAM = (version: string) => ({
  'main.ts': `import { version } from './version.ts';\nimport { filler } from './filler.ts';\nif (filler.length !== 24576) throw new Error('filler');\nconsole.log(JSON.stringify({ version, http: process.moduleLoadList.includes('NativeModule http'), crypto: process.moduleLoadList.includes('NativeModule crypto') }));\n`,
  'version.ts': `export const version = '${version}';\n`,
  // More code than a start hashes without node:crypto (2 KiB): the run pack is taken as checked, not hashed.
  'filler.ts': `export const filler = ${JSON.stringify('x'.repeat(24 * 1024))};\n`,
});

test('livemod run: a warm start revalidates on a bare socket (node:http never loads) and, from the second, re-opens the stored manifest (node:crypto never loads); a new version, a malformed 304 and a refused connection each still come out as through node:http', async (t) => {
  const running = await publishedFolder(t, PROGRAM('one'));
  let mode: 'pass' | 'garbage' | 'hang-up' = 'pass';
  const origin = new URL(running.url);
  const proxied = await front(t, origin, (head, socket) => {
    // Only the bare request says `Connection: close` in this exact form; node:http's keep-alive requests pass.
    const bare = /\r\nConnection: close\r\n?/i.test(`${head}\r\n`) && head.startsWith('GET ') && /if-none-match/i.test(head);
    if (!bare || mode === 'pass') return false;
    if (mode === 'garbage') socket.end('HTTP/1.1 304 Not Modified\r\nthis is no header\r\n\r\n');
    else socket.destroy();
    return true;
  });
  const cwd = tempDir(t);
  const cache = tempDir(t);
  // Every request of a sync is published on livemod's diagnostics channel, the bare one included.
  const subscriber = join(tempDir(t), 'log.mjs');
  writeFileSync(subscriber, "import { subscribe } from 'node:diagnostics_channel';\nsubscribe('livemod:sync', (e) => process.stderr.write(`[seen] ${e.kind} ${e.method} ${new URL(e.url).pathname} ${e.status}\\n`));\n");
  const run = async (...flags: string[]) => {
    const result = await runAsync(['run', proxied.url, '--key', running.key.publicKeyString, '--cache', cache, '--once', ...flags], { cwd, node: ['--import', subscriber] });
    assert.equal(result.status, 0, result.stderr);
    return { ...(JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { version: string; http: boolean; crypto: boolean }), stderr: result.stderr };
  };
  // Cold: no ETag to revalidate with, node:http fetches.
  assert.deepEqual((await run()).version, 'one');
  const before = proxied.heads.length;
  const warm = await run();
  assert.deepEqual([warm.version, warm.http], ['one', false], 'a warm start answered 304 never loads node:http');
  assert.deepEqual(proxied.heads.slice(before), [`GET ${origin.pathname}manifest.json HTTP/1.1`], 'one request: the bare one');
  assert.deepEqual(warm.stderr.match(/\[seen\] .*/g), [`[seen] manifest GET ${origin.pathname}manifest.json 304`]);
  assert.equal(warm.crypto, true, "the first warm start checks the stored manifest's signature");
  const second = await run();
  assert.deepEqual([second.version, second.http, second.crypto], ['one', false, false], 'the file the first one opened with this key is re-opened, unchanged, and the run pack the first one hashed is the same file: nothing to hash or verify');

  // A new version: the bare request gets a 200, and node:http asks again and takes it.
  running.publish(PROGRAM('two'));
  const updated = await run();
  assert.deepEqual([updated.version, updated.http], ['two', true]);
  assert.deepEqual(updated.stderr.match(/\[seen\] manifest .*/g), [`[seen] manifest GET ${origin.pathname}manifest.json 200`], 'the bare try that was not a 304 is no request of its own');

  mode = 'garbage';
  const garbled = await run();
  assert.deepEqual([garbled.version, garbled.http], ['two', true], 'a malformed 304 is asked again through node:http, which gets the real answer');

  // A connection dropped before any answer is what node:http would meet: the origin counts as unreachable, and the cached version runs, said so.
  mode = 'hang-up';
  const dropped = await run();
  assert.equal(dropped.version, 'two');
  assert.match(dropped.stderr, /unreachable \(ERR_LIVEMOD_FETCH_FAILED\): running cached version/);
});

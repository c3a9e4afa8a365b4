// The client side of the channel against a hostile host: HTTP passes through to a real livemod
// server, but the host's /channel says whatever the test makes it say — garbage, binary and
// oversized frames, floods of announcements and pings, announcements of versions that do not
// exist or do not verify. The client ignores or closes, reconnects with backoff, syncs at most
// once per announced version, and never runs anything that did not verify.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketServer, type WebSocket } from 'ws';
import { SnapshotBuilder } from '../src/build/index.ts';
import { connect, type App } from '../src/client/index.ts';
import { signSnapshot } from '../src/snapshot/index.ts';
import { startServer, within } from './helpers/server-fixtures.ts';
import { BIN } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';

interface HostileHost {
  url: string;
  /** Manifest requests that reached the host. */
  manifests: number;
  /** Channel connections opened. */
  channels: number;
  /** Serve this body in place of the origin's manifest (null: pass through). */
  manifestOverride: Buffer | null;
  /** The If-None-Match and status of the last manifest request passed through. */
  lastManifest: { ifNoneMatch: string | null; status: number } | null;
  /** Answer this many blob batch requests with the 404 of a server that does not hold the blobs (a replica behind). */
  batchesUnknown: number;
}

async function hostile(t: TestContext, origin: string, channel: (ws: WebSocket, host: HostileHost) => void): Promise<HostileHost> {
  const upstream = new URL(origin);
  const state: HostileHost = { url: '', manifests: 0, channels: 0, manifestOverride: null, lastManifest: null, batchesUnknown: 0 };
  const server = createServer((req, res) => {
    const manifest = (req.url ?? '').split('?')[0]!.endsWith('/manifest.json');
    if (manifest) state.manifests += 1;
    if (req.url?.startsWith('/batch') && state.batchesUnknown > 0) {
      state.batchesUnknown -= 1;
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'ERR_LIVEMOD_BLOB_UNKNOWN', message: 'no such blob here', unknown: [], unknownCount: 1 } }));
      return;
    }
    if (req.url?.startsWith('/manifest.json')) {
      if (state.manifestOverride) {
        res.writeHead(200, { 'content-type': 'application/json', 'livemod-channel': '/channel', 'livemod-batch': '/batch' }).end(state.manifestOverride);
        return;
      }
    }
    const forward = request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: { ...req.headers, host: upstream.host } }, (reply) => {
      if (manifest) state.lastManifest = { ifNoneMatch: (req.headers['if-none-match'] as string | undefined) ?? null, status: reply.statusCode ?? 0 };
      res.writeHead(reply.statusCode ?? 502, reply.headers);
      reply.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  const sockets = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    sockets.handleUpgrade(req, socket, head, (ws) => {
      state.channels += 1;
      channel(ws, state);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    for (const ws of sockets.clients) ws.terminate();
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return state;
}

async function origin(t: TestContext): Promise<{ url: string; key: string; publishNext: () => number; version: () => number; manifest: () => Buffer }> {
  const running = await startServer(t);
  const dir = tempDir(t);
  writeFiles(dir, { 'package.json': '{"name":"hostile-test"}', 'main.js': 'export const value = 1; import.meta.hot.accept();', 'lib/util.js': 'import { value } from "../main.js"; export const twice = () => value * 2; import.meta.hot.accept();' });
  const builder = new SnapshotBuilder(dir);
  let current = signSnapshot(builder.build().content, running.key);
  running.server.publish(current);
  let edits = 1;
  return {
    url: running.url,
    key: running.key.publicKeyString,
    version: () => current.manifest.version,
    manifest: () => current.sealed.bytes,
    publishNext() {
      edits += 1;
      writeFiles(dir, { 'main.js': `export const value = ${edits}; import.meta.hot.accept();` });
      builder.invalidate(['main.js']);
      current = signSnapshot(builder.build().content, running.key, { previousVersion: current.manifest.version });
      running.server.publish(current);
      return current.manifest.version;
    },
  };
}

async function liveClient(t: TestContext, url: string, key: string, module = ''): Promise<{ app: App; lines: string[] }> {
  const lines: string[] = [];
  const app = await connect(`${url}${module}`, { publicKey: key, cache: tempDir(t), live: true, notice: (line) => lines.push(line) });
  t.after(() => app.close());
  return { app, lines };
}

const hello = (version: number): string => JSON.stringify({ type: 'hello', protocol: 1, version, etag: null });
const announce = (version: number, manifest?: Buffer): string => JSON.stringify({ type: 'version', version, etag: '"x"', manifestHash: 'x', ...(manifest ? { manifest: manifest.toString('utf8') } : {}) });

test('garbage, binary and malformed frames are ignored, then the channel is dropped and reopened with backoff; nothing is synced for them', async (t) => {
  const real = await origin(t);
  const host = await hostile(t, real.url, (ws) => {
    ws.send('not json at all');
    ws.send(Buffer.from([0, 1, 2, 3]), { binary: true });
    ws.send('{"type":"version","version":"soon"}');
    ws.send('[1,2,3]');
    for (let index = 0; index < 20; index += 1) ws.send(`{"type":"nonsense-${index}"}`);
  });
  const { app, lines } = await liveClient(t, host.url, real.key);
  await within((async () => {
    while (host.channels < 2) await sleep(10);
  })(), 10_000, 'the client to reconnect after dropping the channel');
  assert.equal(host.manifests, 1, 'only the initial sync reached the host');
  assert.equal(app.version, real.version());
  assert.ok(lines.some((line) => /ignored a frame/.test(line)));
  assert.ok(lines.some((line) => /invalid frames .* closing, and reconnecting later/.test(line)));
  // Reconnects back off: well under one connection per 50 ms.
  const before = host.channels;
  await sleep(600);
  assert.ok(host.channels - before <= 6, `${host.channels - before} reconnects in 600 ms`);
});

test('an oversized frame closes the channel (it is never buffered whole), and the client reconnects', async (t) => {
  const real = await origin(t);
  const host = await hostile(t, real.url, (ws, state) => {
    if (state.channels === 1) ws.send(`{"type":"version","version":1,"etag":"${'x'.repeat(1024 * 1024)}","manifestHash":"x"}`);
  });
  const { app } = await liveClient(t, host.url, real.key);
  await within((async () => {
    while (host.channels < 2) await sleep(10);
  })(), 10_000, 'a reconnect after the oversized frame');
  assert.equal(app.version, real.version());
});

test('a flood of announcements costs a few syncs per announced version, spaced by a growing wait, when they do not materialise', async (t) => {
  const real = await origin(t);
  const host = await hostile(t, real.url, (ws) => {
    const fake = real.version() + 1_000;
    for (let index = 0; index < 2_000; index += 1) ws.send(announce(fake));
    for (let index = 0; index < 2_000; index += 1) ws.ping();
  });
  const { app } = await liveClient(t, host.url, real.key);
  await within((async () => {
    while (host.manifests < 2) await sleep(10);
  })(), 5000, 'the one sync the announcement asks for');
  await sleep(300);
  assert.equal(host.manifests, 2, '2,000 announcements of one version: one sync at once');
  // Then retries (a replica behind a balancer may be a moment late), each after twice the wait:
  // 0.5 s, 1 s, 2 s; never a fifth.
  await within((async () => {
    while (host.manifests < 5) await sleep(20);
  })(), 8000, 'the retries of the announced version');
  await sleep(2500);
  assert.equal(host.manifests, 5, '2,000 announcements of one version: four syncs in all');
  assert.equal(app.version, real.version());
});

test('ever-higher fake announcements are rate-limited: a lying channel cannot make the client sync in a loop', async (t) => {
  const real = await origin(t);
  const host = await hostile(t, real.url, (ws) => {
    let next = real.version() + 1;
    const timer = setInterval(() => {
      for (let index = 0; index < 50; index += 1) ws.send(announce(next++));
    }, 10);
    ws.on('close', () => clearInterval(timer));
  });
  await liveClient(t, host.url, real.key);
  await sleep(1500);
  // 150 distinct versions announced: after the first sync finds nothing newer, each next one waits longer.
  assert.ok(host.manifests <= 6, `${host.manifests} manifest requests in 1.5 s`);
});

test('an announced version whose manifest does not verify is refused and reported; the running version stays', async (t) => {
  const real = await origin(t);
  const host = await hostile(t, real.url, (ws, state) => {
    ws.send(hello(real.version()));
    setTimeout(() => {
      state.manifestOverride = Buffer.from('{"signatures":[],"signed":{"version":99999999999999}}');
      ws.send(announce(99_999_999_999_999));
    }, 50);
  });
  const { app, lines } = await liveClient(t, host.url, real.key);
  const main = await app.import('main.js');
  const record = await within(new Promise<{ status: string; error?: string }>((resolve) => app.on('swap', resolve)), 5000, 'the refused update');
  assert.equal(record.status, 'failed');
  assert.match(record.error!, /ERR_LIVEMOD_/);
  assert.equal(app.version, real.version());
  assert.equal(main.value, 1);
  assert.ok(lines.some((line) => line.startsWith('[livemod swap]')));
});

test('a real announcement through the same hostile host is synced, verified and swapped', async (t) => {
  const real = await origin(t);
  let send: ((text: string) => void) | undefined;
  const host = await hostile(t, real.url, (ws) => {
    send = (text) => ws.send(text);
    ws.send('garbage first');
  });
  const { app } = await liveClient(t, host.url, real.key);
  const main = await app.import('main.js');
  await within((async () => {
    while (!send) await sleep(10);
  })(), 5000, 'the channel');
  const version = real.publishNext();
  const swapped = within(new Promise<{ status: string }>((resolve) => app.on('swap', resolve)), 5000, 'the swap');
  send!(announce(version));
  assert.equal((await swapped).status, 'applied');
  assert.equal(main.value, 2);
});

test('the channel never keeps a finished program alive: livemod run exits when the program ends', async (t) => {
  const running = await startServer(t);
  const dir = tempDir(t);
  writeFiles(dir, { 'package.json': '{"name":"exits"}', 'main.js': 'console.log("done");' });
  running.server.publish(signSnapshot(new SnapshotBuilder(dir).build().content, running.key));
  // An asynchronous child: the server answers from this very process.
  const child = spawn(process.execPath, [BIN, 'run', `${running.url}/main.js`, '--key', running.key.publicKeyString, '--cache', tempDir(t)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const [code] = await within(once(child, 'exit'), 20_000, 'livemod run to exit while its channel is open') as [number];
  assert.equal(code, 0);
  assert.equal(stdout, 'done\n');
});

test('one announcement of a version that never comes does not stop the client from following the real ones', async (t) => {
  const real = await origin(t);
  let send: ((text: string) => void) | undefined;
  const host = await hostile(t, real.url, (ws) => {
    send = (text) => ws.send(text);
    ws.send(announce(Number.MAX_SAFE_INTEGER));
  });
  const { app } = await liveClient(t, host.url, real.key);
  const main = await app.import('main.js');
  await within((async () => {
    while (host.manifests < 2) await sleep(10);
  })(), 5000, 'the sync for the fake version');
  const version = real.publishNext();
  const swapped = within(new Promise<{ status: string }>((resolve) => app.on('swap', resolve)), 10_000, 'the real version');
  send!(announce(version));
  assert.equal((await swapped).status, 'applied');
  assert.equal(main.value, 2);
});

test('a flood of refusals from the server is said once per connection and closes it', async (t) => {
  const real = await origin(t);
  const host = await hostile(t, real.url, (ws) => {
    for (let index = 0; index < 5_000; index += 1) ws.send(JSON.stringify({ type: 'error', code: 'ERR_LIVEMOD_PROTOCOL', message: 'x'.repeat(500) }));
  });
  const { lines } = await liveClient(t, host.url, real.key);
  await within((async () => {
    while (host.channels < 2) await sleep(10);
  })(), 10_000, 'a reconnect after the flood');
  // A refusal line and a closing line per connection, not one per frame.
  assert.ok(lines.length <= host.channels * 3, `${lines.length} lines for ${host.channels} connections`);
});

test('a version announced by a server whose manifest lags is tried a few times, and again when a reconnection says hello with it', async (t) => {
  const real = await origin(t);
  const old = Buffer.from(await (await fetch(new URL('manifest.json', real.url))).arrayBuffer());
  let channel: WebSocket | undefined;
  const host = await hostile(t, real.url, (ws) => {
    channel = ws;
    ws.send(hello(real.version()));
  });
  const { app } = await liveClient(t, host.url, real.key);
  const main = await app.import('main.js');
  await within((async () => {
    while (!channel) await sleep(10);
  })(), 5000, 'the channel');
  // Behind a balancer: the version is announced, but the manifest comes from a replica still on the old one.
  host.manifestOverride = old;
  const before = host.manifests;
  const next = real.publishNext();
  channel!.send(announce(next));
  await within((async () => {
    while (host.manifests < before + 4) await sleep(20);
  })(), 10_000, 'four tries of the announced version');
  await sleep(3000);
  assert.equal(host.manifests, before + 4, 'no fifth try on the same connection');
  assert.equal(main.value, 1);
  // The lagging replica catches up; the channel drops and the client reconnects: the hello's version is tried again.
  host.manifestOverride = null;
  channel!.terminate();
  await within((async () => {
    while (main.value !== 2) await sleep(20);
  })(), 10_000, 'the version, after the reconnection');
  assert.equal(app.version, next);
});

/** A live client behind the hostile host, its channel open, and a way to send on it. */
async function following(t: TestContext, real: Awaited<ReturnType<typeof origin>>, module = ''): Promise<{ host: HostileHost; app: App; lines: string[]; main: Record<string, unknown>; send: (text: string) => void }> {
  let send: ((text: string) => void) | undefined;
  const host = await hostile(t, real.url, (ws) => {
    send = (text) => ws.send(text);
    ws.send(hello(real.version()));
  });
  const { app, lines } = await liveClient(t, host.url, real.key, module);
  const main = await app.import('main.js');
  await within((async () => {
    while (!send) await sleep(10);
  })(), 5000, 'the channel');
  return { host, app, lines, main, send: (text) => send!(text) };
}

test('a manifest pushed with the announcement is verified and used: the update makes no manifest request', async (t) => {
  const real = await origin(t);
  const { host, app, main, send } = await following(t, real);
  const before = host.manifests;
  const version = real.publishNext();
  const swapped = within(new Promise<{ status: string; version: number }>((resolve) => app.on('swap', resolve)), 5000, 'the swap');
  send(announce(version, real.manifest()));
  const record = await swapped;
  assert.equal(record.status, 'applied');
  assert.equal(record.version, version);
  assert.equal(main.value, 2);
  assert.equal(host.manifests, before, 'no manifest request for the pushed manifest');
  // Once the store has committed it (just after the swap), revalidation is a 304 against the pushed manifest's ETag.
  const etag = `"${createHash('sha256').update(real.manifest()).digest('hex')}"`;
  await within((async () => {
    do {
      assert.equal(await app.update(), null);
    } while (host.lastManifest?.ifNoneMatch !== etag && (await sleep(50), true));
  })(), 5000, 'a revalidation with the pushed manifest\'s ETag');
  assert.deepEqual(host.lastManifest, { ifNoneMatch: etag, status: 304 });
});

test('a client started on a module of a subfolder takes a pushed manifest too, with no request for either base', async (t) => {
  const real = await origin(t);
  const { host, app, send } = await following(t, real, 'lib/util.js');
  const util = await app.import('lib/util.js');
  const before = host.manifests;
  const version = real.publishNext();
  const swapped = within(new Promise<{ status: string; version: number }>((resolve) => app.on('swap', resolve)), 5000, 'the swap');
  send(announce(version, real.manifest()));
  assert.equal((await swapped).version, version);
  assert.equal((util.twice as () => number)(), 4);
  assert.equal(host.manifests, before, 'neither lib/manifest.json nor manifest.json requested');
});

test('a pushed manifest whose blobs the answering replica does not hold yet is had as without the push: no failed swap', async (t) => {
  const real = await origin(t);
  const { host, app, lines, main, send } = await following(t, real);
  const records: { status: string; version: number }[] = [];
  app.on('swap', (record) => records.push(record));
  const version = real.publishNext();
  // Behind a balancer: the replica that pushed has the version; the one answering the blob request is a moment behind.
  host.batchesUnknown = 1;
  send(announce(version, real.manifest()));
  await within((async () => {
    while (records.length === 0) await sleep(10);
  })(), 5000, 'the swap');
  assert.deepEqual(records.map((record) => [record.status, record.version]), [['applied', version]]);
  assert.equal(main.value, 2);
  assert.equal(host.batchesUnknown, 0, 'the blob request of the push was made and refused');
  assert.ok(!lines.some((line) => line.includes('[livemod swap]') && line.includes('failed')), lines.join('\n'));
});

test('a pushed manifest that does not verify is refused and said; the manifest is fetched instead and the real version runs', async (t) => {
  const real = await origin(t);
  const { host, app, lines, main, send } = await following(t, real);
  const before = host.manifests;
  const version = real.publishNext();
  // One byte of the signed part changed: the signature no longer covers it.
  const tampered = Buffer.from(real.manifest());
  const at = tampered.indexOf('"version":') + '"version":'.length;
  tampered[at] = tampered[at] === 0x31 ? 0x32 : 0x31;
  const swapped = within(new Promise<{ status: string; version: number }>((resolve) => app.on('swap', resolve)), 5000, 'the swap');
  send(announce(version, tampered));
  const record = await swapped;
  assert.equal(record.status, 'applied');
  assert.equal(record.version, version);
  assert.equal(main.value, 2);
  assert.equal(host.manifests, before + 1, 'fetched once instead');
  assert.equal(lines.filter((line) => line.includes('pushed with an announcement was refused')).length, 1, lines.join('\n'));
});

test('a replayed older manifest pushed with a higher announcement is refused as a rollback, and one of the running version is passed over; nothing older runs', async (t) => {
  const real = await origin(t);
  const first = real.manifest();
  const { host, app, lines, main, send } = await following(t, real);
  const swap = (): Promise<{ status: string; version: number }> => within(new Promise((resolve) => {
    const listener = (record: { status: string; version: number }): void => {
      app.off('swap', listener);
      resolve(record);
    };
    app.on('swap', listener);
  }), 5000, 'the swap');
  // The running version's own manifest under a higher announcement: not newer, so passed over for a request.
  const second = real.publishNext();
  let before = host.manifests;
  let swapped = swap();
  send(announce(second, first));
  assert.equal((await swapped).version, second);
  assert.equal(host.manifests, before + 1);
  assert.equal(lines.filter((line) => line.includes('pushed with an announcement was refused')).length, 0, lines.join('\n'));
  // A manifest older than the one running now: refused as a rollback, said, and the real one fetched.
  const third = real.publishNext();
  before = host.manifests;
  swapped = swap();
  send(announce(third, first));
  assert.equal((await swapped).version, third);
  assert.equal(main.value, 3);
  assert.equal(host.manifests, before + 1);
  assert.ok(lines.some((line) => line.includes('pushed with an announcement was refused') && line.includes('rollback')), lines.join('\n'));
});

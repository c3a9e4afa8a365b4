// Scale-out with real parts: nats-server (Debian's), `livemod serve` origins and replicas as
// child processes, nginx balancing over replicas, live clients on 127.0.0.1. The broker is never
// trusted: forged announcements are sent on it, and it is stopped and started again under load.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { connect as natsConnect } from '@nats-io/transport-node';
import { SnapshotBuilder, publishSnapshot } from '../src/build/index.ts';
import { connect } from '../src/client/index.ts';
import { generatePublisherKey, privateKeyToPem } from '../src/snapshot/index.ts';
import type { ServerStatus } from '../src/protocol/index.ts';
import { runAsync, startCli, type LiveCli } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { natsMissing, startNats, type Nats } from './helpers/nats.ts';
import { redisMissing, startRedis } from './helpers/redis.ts';
import { nginxMissing, startNginx } from './helpers/nginx.ts';
import { startHost } from './helpers/static-host.ts';
import { startS3rver } from './helpers/s3rver.ts';
import { within } from './helpers/server-fixtures.ts';

const skip = natsMissing();
if (skip) console.log(`# cluster tests skipped: ${skip}`);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function nats(t: TestContext): Promise<Nats> {
  const broker = await startNats();
  t.after(() => broker.stop());
  return broker;
}

function cli(t: TestContext, args: string[]): LiveCli {
  const child = startCli(args);
  t.after(async () => {
    child.child.kill('SIGKILL');
    await child.stop();
  });
  return child;
}

async function status(url: string): Promise<ServerStatus> {
  const response = await fetch(`${url}/status`);
  return (await response.json()) as ServerStatus;
}

/** Polls `check` until it holds (every 50 ms), failing after `ms`. */
async function until(what: string, ms: number, check: () => Promise<boolean> | boolean): Promise<void> {
  await within((async () => {
    while (!(await check())) await sleep(50);
  })(), ms, what);
}

function keyFile(t: TestContext): { path: string; publicKey: string } {
  const key = generatePublisherKey();
  const path = join(tempDir(t), 'publisher.key');
  writeFileSync(path, privateKeyToPem(key), { mode: 0o600 });
  return { path, publicKey: key.publicKeyString };
}

function appFolder(t: TestContext, value: number): string {
  const dir = tempDir(t);
  writeFiles(dir, { 'package.json': '{"name":"fleet-app"}', 'main.js': `export const value = ${value}; import.meta.hot.accept();` });
  return dir;
}

async function origin(t: TestContext, dir: string, key: { path: string }, broker: Nats): Promise<{ cli: LiveCli; url: string; version: () => Promise<number> }> {
  const server = cli(t, ['serve', dir, '--watch', '--key', key.path, '--port', '0', '--cluster', broker.url]);
  const listening = await server.next((event) => event.event === 'listening');
  await server.next((event) => event.event === 'watching');
  const url = listening.url as string;
  return { cli: server, url, version: async () => (await status(url)).version! };
}

async function replica(t: TestContext, source: string, publicKey: string, broker: Nats | null, extra: string[] = []): Promise<{ cli: LiveCli; url: string; port: number }> {
  const server = cli(t, ['serve', '--follow', source, '--trust', publicKey, '--port', '0', '--poll', '0', ...(broker ? ['--cluster', broker.url] : []), ...extra]);
  const listening = await server.next((event) => event.event === 'listening');
  const url = listening.url as string;
  return { cli: server, url, port: Number(new URL(url).port) };
}

async function liveClient(t: TestContext, url: string, publicKey: string): Promise<{ value: () => unknown; version: () => number }> {
  const app = await connect(url, { publicKey, cache: tempDir(t), live: true, notice: () => {} });
  t.after(() => app.close());
  const main = await app.import('main.js');
  return { value: () => main.value, version: () => app.version };
}

test('a publish on the origin reaches the clients of two replicas; a replica killed and restarted catches up, and its clients with it; the fleet view sums them', { skip: skip ?? false }, async (t) => {
  const broker = await nats(t);
  const key = keyFile(t);
  const dir = appFolder(t, 1);
  const first = await origin(t, dir, key, broker);
  const one = await replica(t, first.url, key.publicKey, broker);
  const two = await replica(t, first.url, key.publicKey, broker);
  const clientOne = await liveClient(t, one.url, key.publicKey);
  const clientTwo = await liveClient(t, two.url, key.publicKey);
  assert.equal(clientOne.value(), 1);

  writeFiles(dir, { 'main.js': 'export const value = 2; import.meta.hot.accept();' });
  await until('both clients to run version 2', 15_000, () => clientOne.value() === 2 && clientTwo.value() === 2);
  assert.equal(clientOne.version(), await first.version());

  // The fleet view: three servers of one app, two clients, one version.
  const fleet = await runAsync(['fleet', '--cluster', broker.url, '--json', '--wait', '500ms']);
  assert.equal(fleet.status, 0, fleet.stderr);
  const view = JSON.parse(fleet.stdout) as { servers: number; clients: number; apps: { app: string; versions: Record<string, number>; servers: { role: string }[] }[] };
  assert.equal(view.servers, 3);
  assert.equal(view.clients, 2);
  assert.deepEqual(view.apps.map((app) => app.app), ['fleet-app']);
  assert.deepEqual(view.apps[0]!.versions, { [String(await first.version())]: 3 });
  assert.deepEqual(view.apps[0]!.servers.map((server) => server.role), ['origin', 'replica', 'replica']);

  // Replica two dies; a version is published while it is down; it comes back on its port.
  two.cli.child.kill('SIGKILL');
  await two.cli.stop();
  writeFiles(dir, { 'main.js': 'export const value = 3; import.meta.hot.accept();' });
  await until('client one to run version 3', 15_000, () => clientOne.value() === 3);
  assert.equal(clientTwo.value(), 2, 'client two has no server');
  await replica(t, first.url, key.publicKey, broker, ['--port', String(two.port)]);
  await until('client two to reconnect and run version 3', 20_000, () => clientTwo.value() === 3);
  const replicaStatus = await status(`http://127.0.0.1:${two.port}`);
  assert.equal(replicaStatus.version, await first.version());
  assert.equal(replicaStatus.cluster?.role, 'replica');
  assert.equal(replicaStatus.cluster?.brokerConnected, true);
});

test('behind nginx, a replica\'s death moves its clients to the other replica, and they keep following', { skip: skip ?? nginxMissing() ?? false }, async (t) => {
  const broker = await nats(t);
  const key = keyFile(t);
  const dir = appFolder(t, 1);
  const first = await origin(t, dir, key, broker);
  const replicas = [await replica(t, first.url, key.publicKey, broker), await replica(t, first.url, key.publicKey, broker)];
  const balancer = await startNginx({ upstreams: replicas.map((server) => `127.0.0.1:${server.port}`) });
  t.after(() => balancer.stop());
  const clients: { value: () => unknown }[] = [];
  for (let index = 0; index < 4; index += 1) clients.push(await liveClient(t, balancer.url.replace(/\/$/, ''), key.publicKey));
  const counts = async (): Promise<number[]> => Promise.all(replicas.map(async (server) => (await status(server.url)).clientCount));
  await until('the four channels to be spread over the replicas', 10_000, async () => (await counts()).reduce((a, b) => a + b, 0) === 4);
  const busiest = (await counts()).indexOf(Math.max(...(await counts())));
  const other = replicas[1 - busiest]!;

  replicas[busiest]!.cli.child.kill('SIGKILL');
  await replicas[busiest]!.cli.stop();
  // Every client is back, on the survivor, well within 5 s (jittered backoff from 250 ms).
  await until('every client to reconnect to the surviving replica', 5000, async () => (await status(other.url)).clientCount === 4);
  writeFiles(dir, { 'main.js': 'export const value = 2; import.meta.hot.accept();' });
  await until('every client to run version 2 through the survivor', 15_000, () => clients.every((client) => client.value() === 2));
});

test('a replica of a static snapshot learns of versions from the broker; forged announcements cost a look and change nothing; after a broker outage it catches up', { skip: skip ?? false }, async (t) => {
  const broker = await nats(t);
  const dir = appFolder(t, 1);
  const out = tempDir(t);
  const key = generatePublisherKey();
  const builder = new SnapshotBuilder(dir);
  let published = (await publishSnapshot(builder.build().content, key, out)).snapshot;
  const host = await startHost(t, out);
  const follower = await replica(t, host.url, key.publicKeyString, broker);
  const served = async (): Promise<number | null> => (await status(follower.url)).version;
  assert.equal(await served(), published.manifest.version);

  const nc = await natsConnect({ servers: broker.url.replace('nats://', '') });
  t.after(() => nc.close());
  const subject = 'livemod.app.fleet-app.version';
  const announce = (body: unknown): void => nc.publish(subject, typeof body === 'string' ? body : JSON.stringify(body));
  const next = async (): Promise<void> => {
    writeFiles(dir, { 'main.js': `export const value = ${published.manifest.version % 1000}; import.meta.hot.accept();` });
    builder.invalidate(['main.js']);
    published = (await publishSnapshot(builder.build().content, key, out, { previousVersion: published.manifest.version })).snapshot;
  };

  // Forged: garbage, a huge version, another app's name, an oversized message. None changes what is served.
  const before = host.seen.filter((request) => request.path.endsWith('manifest.json')).length;
  announce('not json');
  announce({ type: 'livemod/announce@1', app: 'fleet-app', version: published.manifest.version + 10 ** 9, manifestHash: 'a'.repeat(64) });
  announce({ type: 'livemod/announce@1', app: 'another-app', version: published.manifest.version + 1, manifestHash: 'b'.repeat(64) });
  announce('x'.repeat(64 * 1024));
  await sleep(500);
  assert.equal(await served(), published.manifest.version);
  const looks = host.seen.filter((request) => request.path.endsWith('manifest.json')).length - before;
  assert.ok(looks >= 1 && looks <= 2, `the forged newer version cost ${looks} looks at the source`);
  assert.match(follower.cli.stderr(), /ignored/);

  // A real version, announced: served at once (the replica polls never: --poll 0).
  await next();
  announce({ type: 'livemod/announce@1', app: 'fleet-app', version: published.manifest.version, manifestHash: published.sealed.hash });
  await until('the replica to serve the announced version', 10_000, async () => (await served()) === published.manifest.version);

  // The broker goes away; a version is published that nobody announces; the broker comes back.
  await broker.stop();
  await next();
  await sleep(300);
  await broker.start();
  await until('the replica to catch up when the broker is back', 15_000, async () => (await served()) === published.manifest.version);
  const cluster = (await status(follower.url)).cluster!;
  assert.equal(cluster.brokerConnected, true);
  assert.equal(cluster.source, host.url);

  // A flood of ever-higher forged versions: each look that does not find the version doubles the
  // wait before the next hint-driven one, so 150 announcements cost a few looks, not 150.
  const flooded = host.seen.filter((request) => request.path.endsWith('manifest.json')).length;
  let fake = published.manifest.version + 1;
  for (let index = 0; index < 150; index += 1) {
    announce({ type: 'livemod/announce@1', app: 'fleet-app', version: fake++, manifestHash: 'c'.repeat(64) });
    await sleep(10);
  }
  await sleep(300);
  const flood = host.seen.filter((request) => request.path.endsWith('manifest.json')).length - flooded;
  assert.ok(flood >= 1 && flood <= 4, `150 forged announcements in 1.5 s cost ${flood} looks at the source`);
  assert.equal(await served(), published.manifest.version);
});

test('bad input to serve --follow, --cluster and fleet: one line, a stable code, a non-zero exit', { skip: skip ?? false }, async (t) => {
  const dir = appFolder(t, 1);
  const key = generatePublisherKey();
  const cases: { args: string[]; code: string; message: RegExp }[] = [
    { args: ['serve', '--follow', 'not a url', '--trust', key.publicKeyString], code: 'ERR_LIVEMOD_USAGE', message: /--follow .* is not a URL/ },
    { args: ['serve', '--follow', 'ftp://host/x', '--trust', key.publicKeyString], code: 'ERR_LIVEMOD_USAGE', message: /not an http\(s\) URL/ },
    { args: ['serve', '--follow', 'http://127.0.0.1:9/'], code: 'ERR_LIVEMOD_KEY_MISSING', message: /--trust/ },
    { args: ['serve', '--follow', 'http://127.0.0.1:9/', '--trust', 'ed25519:nonsense'], code: 'ERR_LIVEMOD_KEY_INVALID', message: /./ },
    { args: ['serve', dir, '--follow', 'http://127.0.0.1:9/', '--trust', key.publicKeyString], code: 'ERR_LIVEMOD_USAGE', message: /either a folder .* or --follow/ },
    { args: ['serve', dir, '--trust', key.publicKeyString], code: 'ERR_LIVEMOD_USAGE', message: /--trust is for a replica/ },
    { args: ['serve'], code: 'ERR_LIVEMOD_USAGE', message: /needs a folder/ },
    { args: ['serve', dir, '--port', '0', '--cluster', 'amqp://127.0.0.1:5672'], code: 'ERR_LIVEMOD_CLUSTER', message: /not a nats:\/\/ or tls:\/\/ URL/ },
    { args: ['serve', dir, '--port', '0', '--cluster', 'redis://127.0.0.1:1'], code: 'ERR_LIVEMOD_CLUSTER', message: /cannot connect to the broker at redis:\/\/127\.0\.0\.1:1.*redis-server/ },
    { args: ['serve', dir, '--port', '0', '--cluster', 'redis://127.0.0.1:1/x?y'], code: 'ERR_LIVEMOD_CLUSTER', message: /not a redis:\/\/ URL of one host/ },
    { args: ['serve', dir, '--port', '0', '--cluster', 'nats://127.0.0.1:1'], code: 'ERR_LIVEMOD_CLUSTER', message: /cannot connect to the broker at nats:\/\/127\.0\.0\.1:1/ },
    { args: ['serve', '--follow', 'http://127.0.0.1:1/', '--trust', key.publicKeyString, '--port', '0'], code: 'ERR_LIVEMOD_FETCH_FAILED', message: /127\.0\.0\.1:1/ },
    { args: ['serve', '--follow', 's3://Bad_Bucket!/x', '--trust', key.publicKeyString], code: 'ERR_LIVEMOD_USAGE', message: /--follow "s3:\/\/Bad_Bucket!\/x" has an invalid bucket name/ },
    { args: ['serve', '--follow', 's3://tools/app', '--trust', key.publicKeyString], code: 'ERR_LIVEMOD_USAGE', message: /needs to know where the bucket is read over HTTP/ },
    { args: ['serve', '--follow', 'http://127.0.0.1:9/', '--trust', key.publicKeyString, '--s3-path-style'], code: 'ERR_LIVEMOD_USAGE', message: /are for --follow s3:/ },
    { args: ['serve', dir, '--port', '0', '--cluster', 'nats://us%zz:pw@127.0.0.1:4222'], code: 'ERR_LIVEMOD_CLUSTER', message: /malformed %-escape/ },
    { args: ['fleet'], code: 'ERR_LIVEMOD_USAGE', message: /needs the broker/ },
    { args: ['fleet', '--cluster', `nats://${'x'.repeat(3000)}`], code: 'ERR_LIVEMOD_CLUSTER', message: /too long/ },
    { args: ['fleet', '--cluster', 'nats://127.0.0.1:4222', '--wait', '2h'], code: 'ERR_LIVEMOD_USAGE', message: /over a minute/ },
  ];
  for (const { args, code, message } of cases) {
    const result = await runAsync([...args, '--json'], { env: { LIVEMOD_KEY: undefined, LIVEMOD_CLUSTER: undefined, AWS_REGION: undefined, AWS_ENDPOINT_URL: undefined, AWS_ENDPOINT_URL_S3: undefined } });
    assert.notEqual(result.status, 0, `${args.join(' ')} exits non-zero`);
    const error = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { error?: { code: string; message: string } };
    assert.equal(error.error?.code, code, `${args.join(' ')}: ${result.stdout}${result.stderr}`);
    assert.match(error.error!.message, message);
    assert.doesNotMatch(error.error!.message, /\n/, 'one line');
  }
});

test('publish to an S3 bucket announces on the broker; a replica following the bucket\'s HTTP URL serves the new version at once', { skip: skip ?? false }, async (t) => {
  const broker = await nats(t);
  const store = await startS3rver(t, ['tools']);
  const key = keyFile(t);
  const dir = appFolder(t, 1);
  const home = tempDir(t);
  const env = { ...store.env, AWS_PROFILE: undefined, AWS_REGION: undefined, AWS_ENDPOINT_URL: undefined, AWS_ENDPOINT_URL_S3: undefined, AWS_CONFIG_FILE: join(home, 'c'), AWS_SHARED_CREDENTIALS_FILE: join(home, 'k'), AWS_EC2_METADATA_DISABLED: 'true' };
  const publish = async (): Promise<{ version: number; url: string }> => {
    const result = await runAsync(['publish', dir, '--out', 's3://tools/app', '--key', key.path, '--s3-endpoint', store.endpoint, '--s3-path-style', '--cluster', broker.url, '--json'], { env });
    assert.equal(result.status, 0, result.stderr + result.stdout);
    return JSON.parse(result.stdout) as { version: number; url: string };
  };
  const first = await publish();
  // Followed as s3://, read through the store's HTTP endpoint (path-style), as its clients read it.
  const follower = await replica(t, 's3://tools/app', key.publicKey, broker, ['--s3-endpoint', store.endpoint, '--s3-path-style']);
  assert.equal((await status(follower.url)).version, first.version);
  assert.equal((await status(follower.url)).cluster?.source, first.url);
  writeFiles(dir, { 'main.js': 'export const value = 2; import.meta.hot.accept();' });
  const second = await publish();
  // --poll 0 and no origin channel: only the announcement can have told it.
  await until('the replica to serve the published version', 10_000, async () => (await status(follower.url)).version === second.version);
  const client = await liveClient(t, follower.url, key.publicKey);
  assert.equal(client.value(), 2);
});

test('an origin whose broker turns it away for good (credentials on reconnect) serves and publishes on, and says so', { skip: skip ?? false }, async (t) => {
  const broker = await nats(t);
  const key = keyFile(t);
  const dir = appFolder(t, 1);
  const first = await origin(t, dir, key, broker);
  await broker.stop();
  await broker.start({ user: 'someone', pass: 'else' });
  await until('the origin to give the broker up', 20_000, () => /closed for good/.test(first.cli.stderr()));
  writeFiles(dir, { 'main.js': 'export const value = 2; import.meta.hot.accept();' });
  const published = await first.cli.next((event) => event.event === 'published');
  assert.equal(await first.version(), published.version, 'the new version is served');
  await until('the origin to say the version went unannounced', 5000, () => /could not be announced/.test(first.cli.stderr()));
  assert.equal(first.cli.child.exitCode, null, 'still running');
  assert.equal((await status(first.url)).cluster?.brokerConnected, false);
});

test('the same fleet over Redis: a publish announced there reaches a replica of a static snapshot and its client, the fleet view answers, a Redis restart is caught up', { skip: redisMissing() ?? false }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const key = keyFile(t);
  const dir = appFolder(t, 1);
  const out = tempDir(t);
  const publish = async (cluster: boolean): Promise<number> => {
    const result = await runAsync(['publish', dir, '--out', out, '--key', key.path, ...(cluster ? ['--cluster', redis.url] : []), '--json']);
    assert.equal(result.status, 0, result.stderr + result.stdout);
    return (JSON.parse(result.stdout) as { version: number }).version;
  };
  await publish(true);
  const host = await startHost(t, out);
  // A static source and --poll 0: only an announcement on Redis (or Redis coming back) makes it look.
  const follower = await replica(t, host.url, key.publicKey, null, ['--cluster', redis.url]);
  const client = await liveClient(t, follower.url, key.publicKey);
  writeFiles(dir, { 'main.js': 'export const value = 2; import.meta.hot.accept();' });
  const second = await publish(true);
  await until('the replica to serve the version announced on Redis', 15_000, async () => (await status(follower.url)).version === second);
  await until('its client to run it', 15_000, () => client.value() === 2);

  const fleet = await runAsync(['fleet', '--cluster', redis.url, '--json', '--wait', '500ms']);
  assert.equal(fleet.status, 0, fleet.stderr);
  const view = JSON.parse(fleet.stdout) as { servers: number; clients: number; broker: string };
  assert.deepEqual([view.servers, view.clients, view.broker], [1, 1, redis.url]);

  // Hostile publishers on Redis: deep nesting (JSON.stringify of it overflows the stack), garbage,
  // an oversized message, a reply channel aimed at a subject. The replica serves on, unchanged.
  const { Redis } = await import('ioredis');
  const hostile = new Redis(redis.url);
  hostile.on('error', () => {});
  t.after(() => hostile.disconnect());
  const deep = `{"body":${'['.repeat(8000)}${']'.repeat(8000)}}`;
  for (const channel of ['livemod.fleet', 'livemod.app.fleet-app.version']) {
    await hostile.publish(channel, deep);
    await hostile.publish(channel, 'not json');
    await hostile.publish(channel, JSON.stringify({ body: 'x'.repeat(64 * 1024) }));
    await hostile.publish(channel, JSON.stringify({ body: { type: 'livemod/fleet@1' }, reply: 'livemod.app.fleet-app.version' }));
  }
  await sleep(300);
  assert.equal((await status(follower.url)).version, second, 'still serving, the same version');

  await redis.stop();
  await until('the replica to see the broker gone', 10_000, async () => (await status(follower.url)).cluster?.brokerConnected === false);
  writeFiles(dir, { 'main.js': 'export const value = 3; import.meta.hot.accept();' });
  const third = await publish(false);
  await redis.start();
  await until('the replica to catch up once Redis is back', 15_000, async () => (await status(follower.url)).version === third);
  assert.equal((await status(follower.url)).cluster?.brokerConnected, true);
});

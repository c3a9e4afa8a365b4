// `livemod publish --out s3://…` against a REAL S3-compatible server (s3rver, started per test on
// 127.0.0.1:0, see helpers/s3rver.ts for what it does and does not do), and `livemod run` of the
// store's HTTP URL. The order of writes is checked where it matters: a publish that fails on the
// way (a dead store, a refused upload, no bucket) never leaves a manifest.
import assert from 'node:assert/strict';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { openS3Target, publishSnapshot, SnapshotBuilder, type S3Options } from '../src/build/index.ts';
import { generatePublisherKey, manifestBlobs, openManifest, parsePublicKey, type Manifest, type PublisherKey, type SnapshotContent } from '../src/snapshot/index.ts';
import { fetchBlobs, type RequestEvent } from '../src/sync/index.ts';
import { cli, runAsync, type AsyncCliResult } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { startProxy } from './helpers/hostile-proxy.ts';
import { startS3rver, type S3Store } from './helpers/s3rver.ts';

const BOUND = { timeout: 90_000 };

// A big module besides the small ones, so a client missing only a small one takes a range of the pack.
const PROGRAM = {
  'package.json': JSON.stringify({ name: 's3-app', type: 'module' }),
  'main.ts': `import { greet } from './lib/greet.ts';\nimport { table } from './lib/table.ts';\nconsole.log(greet(process.argv[2] ?? 'world'), table.length);\n`,
  'lib/greet.ts': 'export const greet = (name: string): string => `hello, ${name}`;\n',
  'lib/table.ts': `export const table: string[] = ${JSON.stringify(Array.from({ length: 400 }, (_, index) => `row ${index} ${'x'.repeat(40)}`))};\n`,
};

/** The environment of a child process that talks to `store` and to nothing else: no profile, no metadata service, no user config. */
function isolated(t: TestContext, store: S3Store | null): Record<string, string | undefined> {
  const home = tempDir(t);
  return {
    ...(store?.env ?? {}),
    AWS_PROFILE: undefined,
    AWS_REGION: undefined,
    AWS_DEFAULT_REGION: undefined,
    AWS_ENDPOINT_URL: undefined,
    AWS_ENDPOINT_URL_S3: undefined,
    AWS_SESSION_TOKEN: undefined,
    AWS_CONFIG_FILE: join(home, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    LIVEMOD_KEY: undefined,
    LIVEMOD_CONFIG: undefined,
    LIVEMOD_CACHE: join(home, 'cache'),
    XDG_CONFIG_HOME: home,
  };
}

function keyFile(t: TestContext): { file: string; publicKey: string } {
  const file = join(tempDir(t), 'publisher.key');
  const made = cli(['keygen', '--out', file]);
  assert.equal(made.status, 0, made.stderr);
  return { file, publicKey: made.stdout.trim() };
}

async function publish(t: TestContext, dir: string, out: string, key: string, env: Record<string, string | undefined>, endpoint: string): Promise<AsyncCliResult & { json: Record<string, unknown> }> {
  const result = await runAsync(['publish', dir, '--out', out, '--key', key, '--s3-endpoint', endpoint, '--s3-path-style', '--json'], { env, cwd: tempDir(t) });
  const lines = result.stdout.trim().split('\n');
  return { ...result, json: JSON.parse(lines.at(-1) || '{}') as Record<string, unknown> };
}

/** The SDK as the test's own eyes on the store. */
function storeClient(t: TestContext, store: S3Store): S3Client {
  const client = new S3Client({ endpoint: store.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: store.env.AWS_ACCESS_KEY_ID, secretAccessKey: store.env.AWS_SECRET_ACCESS_KEY } });
  t.after(() => client.destroy());
  return client;
}

async function keys(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (listed.Contents ?? []).map((item) => item.Key!).sort();
}

async function manifestAt(url: string, publicKey: string): Promise<Manifest> {
  const response = await fetch(`${url}manifest.json`);
  assert.equal(response.status, 200);
  return openManifest(Buffer.from(await response.arrayBuffer()), parsePublicKey(publicKey), url);
}

function options(store: S3Store, extra: Partial<S3Options> = {}): S3Options {
  return { endpoint: store.endpoint, pathStyle: true, credentials: { accessKeyId: store.env.AWS_ACCESS_KEY_ID, secretAccessKey: store.env.AWS_SECRET_ACCESS_KEY }, env: {}, ...extra };
}

/** publishSnapshot into s3://bucket/prefix through the real SDK, in-process. */
async function publishIn(store: S3Store, url: string, content: SnapshotContent, key: PublisherKey, extra: Partial<S3Options> = {}): Promise<Awaited<ReturnType<typeof publishSnapshot>>> {
  const target = await openS3Target(url, options(store, extra));
  try {
    return await publishSnapshot(content, key, target);
  } finally {
    await target.close();
  }
}

function build(t: TestContext, files: Record<string, string> = PROGRAM): SnapshotContent {
  const dir = tempDir(t);
  writeFiles(dir, files);
  return new SnapshotBuilder(dir).build().content;
}

test('publish to a bucket, then `livemod run` of the store URL; a second publish uploads only the changed blobs, the manifest last', BOUND, async (t) => {
  const store = await startS3rver(t, ['tools']);
  const env = isolated(t, store);
  const { file, publicKey } = keyFile(t);
  const dir = tempDir(t);
  writeFiles(dir, PROGRAM);

  const first = await publish(t, dir, 's3://tools/app', file, env, store.endpoint);
  assert.equal(first.status, 0, first.stderr);
  const url = `${store.endpoint}/tools/app/`;
  assert.equal(first.json.out, 's3://tools/app/');
  assert.equal(first.json.url, url, 'the publish says where clients read it');
  const v1 = await manifestAt(url, publicKey);
  const v1Blobs = new Set(manifestBlobs(v1).map((ref) => ref.hash));
  assert.equal(first.json.blobsWritten, v1Blobs.size);
  await store.settled();
  assert.equal(store.writes.length, v1Blobs.size + 2);
  assert.ok(store.writes.slice(0, -2).every((write) => write.startsWith('ObjectCreated:Put app/blobs/')), 'every blob first');
  assert.deepEqual(store.writes.slice(-2), [`ObjectCreated:Put app/${v1.pack!.path}`, 'ObjectCreated:Put app/manifest.json'], 'then the pack, then the manifest');

  const cache = tempDir(t);
  const ran = await runAsync(['run', url, '--key', publicKey, '--cache', cache, '--', 'store'], { env, cwd: tempDir(t) });
  assert.equal(ran.status, 0, ran.stderr);
  assert.equal(ran.stdout.trim(), 'hello, store 400');

  writeFiles(dir, { 'lib/greet.ts': 'export const greet = (name: string): string => `hello again, ${name}`;\n' });
  await store.settled();
  store.writes.length = 0;
  const second = await publish(t, dir, 's3://tools/app', file, env, store.endpoint);
  assert.equal(second.status, 0, second.stderr);
  const v2 = await manifestAt(url, publicKey);
  assert.ok(v2.version > v1.version, 'versions only go up');
  const added = manifestBlobs(v2).map((ref) => ref.hash).filter((hash, index, all) => !v1Blobs.has(hash) && all.indexOf(hash) === index);
  assert.ok(added.length > 0 && added.length < v1Blobs.size / 2, `${added.length} new blobs`);
  assert.equal(second.json.blobsWritten, added.length, 'only the changed blobs are uploaded');
  await store.settled();
  assert.deepEqual(store.writes.slice(0, -2).sort(), added.map((hash) => `ObjectCreated:Put app/blobs/${hash}`).sort());
  assert.deepEqual(store.writes.slice(-2), [`ObjectCreated:Put app/${v2.pack!.path}`, 'ObjectCreated:Put app/manifest.json']);

  // The warm client takes the new blobs with a Range request on the pack, none one by one (s3rver
  // answers even a multi-range header with one range, from its first start to the end).
  const seen: string[] = [];
  const proxy = await startProxy(t, store.endpoint, { answer: (req) => (seen.push(`${req.method} ${req.url} ${req.headers.range ?? '-'}`), null) });
  const warm = await runAsync(['run', `${proxy.url}tools/app/`, '--key', publicKey, '--cache', cache, '--', 'store'], { env, cwd: tempDir(t) });
  assert.equal(warm.status, 0, warm.stderr);
  assert.equal(warm.stdout.trim(), 'hello again, store 400');
  assert.deepEqual(seen.map((line) => line.replace(/bytes=[\d,-]+$/, 'bytes=…')), ['GET /tools/app/manifest.json -', `GET /tools/app/${v2.pack!.path} bytes=…`]);

  await store.settled();
  store.writes.length = 0;
  const unchanged = await publish(t, dir, 's3://tools/app', file, env, store.endpoint);
  assert.equal(unchanged.json.blobsWritten, 0);
  await store.settled();
  assert.deepEqual(store.writes, ['ObjectCreated:Put app/manifest.json'], 'a re-sign uploads the manifest alone: the pack is there already');
});

test('stored objects carry Cache-Control and Content-Type as docs/protocol.md says; a prefix-less snapshot sits at the bucket top', BOUND, async (t) => {
  const store = await startS3rver(t, ['site']);
  const key = generatePublisherKey();
  const { snapshot } = await publishIn(store, 's3://site', build(t), key);
  const url = `${store.endpoint}/site/`;
  const head = async (path: string): Promise<[string | null, string | null]> => {
    const response = await fetch(`${url}${path}`, { method: 'HEAD' });
    assert.equal(response.status, 200, path);
    return [response.headers.get('cache-control'), response.headers.get('content-type')];
  };
  assert.deepEqual(await head('manifest.json'), ['no-cache', 'application/json']);
  assert.deepEqual(await head(snapshot.manifest.pack!.path), ['public, max-age=31536000, immutable', 'application/octet-stream']);
  assert.deepEqual(await head(`blobs/${manifestBlobs(snapshot.manifest)[0]!.hash}`), ['public, max-age=31536000, immutable', 'application/octet-stream']);
  assert.deepEqual(await manifestAt(url, key.publicKeyString), snapshot.manifest);
});

test('scattered blobs from the pack: s3rver answers a multi-range request with one range, and the client still takes each blob from it', BOUND, async (t) => {
  const store = await startS3rver(t, ['tools']);
  const files: Record<string, string> = {};
  for (let index = 0; index < 40; index += 1) files[`m${index}.ts`] = `export const value${index} = ${JSON.stringify('y'.repeat(200 + index))};\n`;
  const content = build(t, files);
  const { snapshot } = await publishIn(store, 's3://tools/scatter', content, generatePublisherKey());
  const manifest = snapshot.manifest;
  const url = `${store.endpoint}/tools/scatter/`;
  const raw = await fetch(`${url}${manifest.pack!.path}`, { headers: { range: 'bytes=10-19,100-109' } });
  assert.equal(raw.status, 206);
  assert.equal(raw.headers.get('content-range'), `bytes 10-${manifest.pack!.size - 1}/${manifest.pack!.size}`, 'one range, to the end');
  await raw.body?.cancel();

  const wanted = Object.keys(manifest.modules).sort().filter((_, index) => index % 7 === 3).map((path) => manifest.modules[path]!.blob.hash);
  const events: RequestEvent[] = [];
  const blobs = await fetchBlobs(url, manifest, wanted, {}, { onRequest: (event) => events.push(event), rangeGapBytes: 0 });
  assert.deepEqual(events.map((event) => [event.kind, event.status]), [['ranges', 206]], 'no blob fetched one by one');
  assert.ok(events[0]!.ranges > 1);
  for (const hash of wanted) assert.ok(blobs.get(hash)!.equals(content.blobs.get(hash)!));
});

test('the prefix decides: versions go up, another key\'s snapshot and a prefix of other objects are refused, blobs are found across listing pages', BOUND, async (t) => {
  const store = await startS3rver(t, ['tools']);
  const client = storeClient(t, store);
  const key = generatePublisherKey();
  const content = build(t);
  const first = await publishIn(store, 's3://tools/app/v', content, key);
  await store.settled();
  store.writes.length = 0;
  // Pages of 3 objects: a blob missed on a later page would be uploaded again.
  const again = await publishIn(store, 's3://tools/app/v/', content, key, { pageSize: 3 });
  assert.ok(content.blobs.size > 6);
  assert.equal(again.blobsWritten, 0);
  await store.settled();
  assert.deepEqual(store.writes, ['ObjectCreated:Put app/v/manifest.json']);
  assert.ok(again.snapshot.manifest.version > first.snapshot.manifest.version);

  await store.settled();
  store.writes.length = 0;
  await assert.rejects(publishIn(store, 's3://tools/app/v', content, generatePublisherKey()), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_OUT_INVALID' && /s3:\/\/tools\/app\/v\/ holds a snapshot signed by key [0-9a-f]{16}, not by this key .*publish into another prefix/.test(error.message));
  await store.settled();
  assert.deepEqual(store.writes, [], 'nothing written');

  await client.send(new PutObjectCommand({ Bucket: 'tools', Key: 'site/index.html', Body: '<p>hi</p>' }));
  await assert.rejects(publishIn(store, 's3://tools/site', content, key), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_OUT_INVALID' && error.message.includes('s3://tools/site/ is not empty (it holds "site/index.html") and holds no livemod manifest'));
  await client.send(new PutObjectCommand({ Bucket: 'tools', Key: 'junk/manifest.json', Body: 'not json' }));
  await assert.rejects(publishIn(store, 's3://tools/junk', content, key), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_OUT_INVALID' && error.message.includes('the manifest.json in s3://tools/junk/ is not a livemod manifest'));
  assert.deepEqual(await keys(client, 'tools', 'site/'), ['site/index.html']);
  assert.deepEqual(await keys(client, 'tools', 'junk/'), ['junk/manifest.json']);
});

test('a publish that fails on the way never leaves a manifest: no bucket, a store that dies mid-upload, an upload refused', BOUND, async (t) => {
  const store = await startS3rver(t, ['tools']);
  const client = storeClient(t, store);
  const env = isolated(t, store);
  const { file } = keyFile(t);
  const dir = tempDir(t);
  writeFiles(dir, PROGRAM);

  const absent = await publish(t, dir, 's3://absent/app', file, env, store.endpoint);
  assert.equal(absent.status, 1);
  assert.equal(absent.json.error && (absent.json.error as { code: string }).code, 'ERR_LIVEMOD_STORAGE');
  assert.match(absent.stderr.trim(), /^\[livemod publish\] bucket "absent" does not exist at http:\/\/127\.0\.0\.1:\d+; create it, or fix the bucket in --out \[ERR_LIVEMOD_STORAGE\]$/);
  await store.settled();
  assert.deepEqual(store.writes, []);

  // A store that dies after two blob uploads: the next request's connection is cut and the port closed.
  let puts = 0;
  const dying = await startProxy(t, store.endpoint, {
    drop: (req) => {
      if (req.method !== 'PUT' || ++puts <= 2) return false;
      void dying.close();
      return true;
    },
  });
  const died = await publish(t, dir, 's3://tools/app', file, env, dying.url.replace(/\/$/, ''));
  assert.equal(died.status, 1, died.stdout);
  assert.equal((died.json.error as { code: string }).code, 'ERR_LIVEMOD_STORAGE');
  assert.match(died.stderr.trim(), /^\[livemod publish\] cannot write blobs\/[0-9a-f]{64} to s3:\/\/tools\/app\/: http:\/\/127\.0\.0\.1:\d+ could not be reached or dropped the connection \((ECONNRESET|ECONNREFUSED|EPIPE)\); .* \[ERR_LIVEMOD_STORAGE\]$/);
  const left = await keys(client, 'tools', 'app/');
  assert.ok(!left.includes('app/manifest.json'), 'no manifest');
  assert.ok(left.every((name) => name.startsWith('app/blobs/')), left.join());
  assert.equal(left.length, 2, 'the two uploads that went through');

  // The next publish completes the snapshot, uploading only what is missing.
  const resumed = await publish(t, dir, 's3://tools/app', file, env, store.endpoint);
  assert.equal(resumed.status, 0, resumed.stderr);
  const total = new Set((await keys(client, 'tools', 'app/blobs/'))).size;
  assert.equal(resumed.json.blobsWritten, total - left.length);

  // An upload the store refuses (403), through the API: the old manifest stays.
  const before = await (await fetch(`${store.endpoint}/tools/app/manifest.json`)).arrayBuffer();
  let refusedPuts = 0;
  const denying = await startProxy(t, store.endpoint, {
    answer: (req) => (req.method === 'PUT' && ++refusedPuts > 1 ? { status: 403, headers: { 'content-type': 'application/xml' }, body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>' } : null),
  });
  const key = generatePublisherKey();
  await assert.rejects(publishIn(store, 's3://tools/denied', build(t), key, { endpoint: denying.url }), (error: NodeJS.ErrnoException & { details?: Record<string, unknown> }) => error.code === 'ERR_LIVEMOD_STORAGE' && error.details?.reason === 'access-denied' && /refused to write blobs\/[0-9a-f]{64} to s3:\/\/tools\/denied\/ \(AccessDenied\)/.test(error.message));
  assert.ok(!(await keys(client, 'tools', 'denied/')).includes('denied/manifest.json'), 'no manifest');
  assert.deepEqual(await (await fetch(`${store.endpoint}/tools/app/manifest.json`)).arrayBuffer(), before, 'other prefixes untouched');
});

test('bad --out URLs, a closed port, an unknown access key and misplaced flags: one line each with a stable code, nothing written', BOUND, async (t) => {
  const store = await startS3rver(t, ['tools']);
  const env = isolated(t, store);
  const { file } = keyFile(t);
  const dir = tempDir(t);
  writeFiles(dir, PROGRAM);
  const closed = await startProxy(t, store.endpoint);
  const closedEndpoint = closed.url.replace(/\/$/, '');
  await closed.close();

  const cases: Array<[string[], Record<string, string | undefined>, number, RegExp]> = [
    [['--out', 's3://'], {}, 1, /--out "s3:\/\/" names no bucket; write s3:\/\/BUCKET\/PREFIX .*\[ERR_LIVEMOD_OUT_INVALID\]$/],
    [['--out', 's3:///x'], {}, 1, /--out "s3:\/\/\/x" names no bucket.*\[ERR_LIVEMOD_OUT_INVALID\]$/],
    [['--out', 's3://Bad_Bucket!/'], {}, 1, /has an invalid bucket name "Bad_Bucket!": S3 bucket names are 3 to 63 lowercase letters.*\[ERR_LIVEMOD_OUT_INVALID\]$/],
    [['--out', 's3://tools/a/../b'], {}, 1, /has a prefix segment "\.\." .*\[ERR_LIVEMOD_OUT_INVALID\]$/],
    [['--out', 's3://tools/a?versionId=1'], {}, 1, /has a query or fragment.*\[ERR_LIVEMOD_OUT_INVALID\]$/],
    [['--out', 's3:tools'], {}, 1, /is not an s3:\/\/BUCKET\/PREFIX URL \[ERR_LIVEMOD_OUT_INVALID\]$/],
    [['--out', 's3://tools/app', '--s3-endpoint', closedEndpoint, '--s3-path-style'], {}, 1, /cannot read the manifest in s3:\/\/tools\/app\/: http:\/\/127\.0\.0\.1:\d+ could not be reached or dropped the connection \(ECONNREFUSED\); check --s3-endpoint .*\[ERR_LIVEMOD_STORAGE\]$/],
    [['--out', 's3://tools/app', '--s3-endpoint', store.endpoint, '--s3-path-style'], { AWS_ACCESS_KEY_ID: 'NOT-A-KEY' }, 1, /refused to read the manifest in s3:\/\/tools\/app\/ \(InvalidAccessKeyId\); check the credentials .*\[ERR_LIVEMOD_STORAGE\]$/],
    [['--out', 's3://tools/app', '--s3-endpoint', store.endpoint, '--s3-path-style'], { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined }, 1, /no S3 credentials to read the manifest in s3:\/\/tools\/app\/; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE \[ERR_LIVEMOD_STORAGE\]$/],
    [['--out', 's3://tools/app', '--s3-endpoint', 'ftp://127.0.0.1/'], {}, 2, /--s3-endpoint "ftp:\/\/127\.0\.0\.1\/" is not an http\(s\) URL.*\[ERR_LIVEMOD_USAGE\]$/],
    [['--out', 's3://tools/app'], { AWS_ENDPOINT_URL_S3: 'not a url' }, 2, /AWS_ENDPOINT_URL_S3 "not a url" is not an http\(s\) URL.*\[ERR_LIVEMOD_USAGE\]$/],
    [['--out', join(dir, 'out'), '--s3-path-style'], {}, 2, /--s3-endpoint, --s3-region and --s3-path-style are for an --out s3:\/\/BUCKET\/PREFIX \[ERR_LIVEMOD_USAGE\]$/],
  ];
  for (const [args, extra, status, message] of cases) {
    const result = await runAsync(['publish', dir, '--key', file, ...args], { env: { ...env, ...extra }, cwd: tempDir(t) });
    assert.equal(result.status, status, `${args.join(' ')}: ${result.stderr}`);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.match(result.stderr.trim(), message);
  }
  await store.settled();
  assert.deepEqual(store.writes, []);
});

// A manifest is bound to its app. One publisher key signs two apps; a host (or a mirror) that
// serves app B's snapshot at app A's URL must not make a client run B: warm (the store recorded
// A with its version floor), and cold when the client pins A. Real servers on 127.0.0.1:0, a
// real store in a temp dir, the real CLI in child processes.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { connect } from '../src/client/index.ts';
import { generatePublisherKey, sha256Hex, signSnapshot } from '../src/snapshot/index.ts';
import { SnapshotBuilder, publishSnapshot } from '../src/build/index.ts';
import { normaliseOrigin, openStore, originId } from '../src/store/index.ts';
import type { RequestEvent } from '../src/sync/index.ts';
import { rejectsWithCode } from './helpers/assert.ts';
import { cli, runAsync } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { startServer } from './helpers/server-fixtures.ts';
import { startHost } from './helpers/static-host.ts';

function app(name: string, says: string): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name, type: 'module', exports: './main.ts' }),
    'main.ts': `export const says: string = ${JSON.stringify(says)};\nconsole.log(${JSON.stringify(says)});\n`,
  };
}

function build(t: TestContext, files: Record<string, string>) {
  const dir = tempDir(t);
  writeFiles(dir, files);
  return new SnapshotBuilder(dir).build().content;
}

function requests(): { kinds: string[]; onRequest: (event: RequestEvent) => void } {
  const kinds: string[] = [];
  return { kinds, onRequest: (event) => kinds.push(event.kind) };
}

const quiet = { notice: () => {} };

test('app B served at app A\'s URL after a genuine run of A is refused (warm), before any blob is fetched', async (t) => {
  const running = await startServer(t);
  const a = signSnapshot(build(t, app('app-a', 'I am A')), running.key);
  running.server.publish(a);
  const cache = tempDir(t);
  const first = await connect(running.url, { publicKey: running.key.publicKeyString, cache, ...quiet });
  assert.equal(first.manifest.name, 'app-a');
  assert.equal((await first.import()).says, 'I am A');

  // The same key signs app B, with a higher version: it passes the rollback check.
  const b = signSnapshot(build(t, app('app-b', 'I am B')), running.key, { previousVersion: a.manifest.version });
  running.server.publish(b);
  const log = requests();
  await rejectsWithCode(connect(running.url, { publicKey: running.key.publicKeyString, cache, onRequest: log.onRequest, ...quiet }), 'ERR_LIVEMOD_WRONG_APP', /is the snapshot of app "app-b", not of app "app-a" expected there/);
  assert.deepEqual(log.kinds, ['manifest'], 'refused on the manifest: no blob of B was fetched');
  const stored = openStore({ dir: cache }).readOrigin(running.url);
  assert.equal(stored?.state.name, 'app-a');
  assert.equal(stored?.state.version, a.manifest.version, 'the store keeps A');
});

test('a cold client that pins its app (--app, connect app) refuses another app\'s static snapshot at the URL', async (t) => {
  const key = generatePublisherKey();
  const out = tempDir(t);
  await publishSnapshot(build(t, app('app-b', 'I am B')), key, out);
  const host = await startHost(t, out);
  const cache = tempDir(t);
  const log = requests();
  await rejectsWithCode(connect(host.url, { publicKey: key.publicKeyString, app: 'app-a', cache, onRequest: log.onRequest, ...quiet }), 'ERR_LIVEMOD_WRONG_APP', /app "app-b", not of app "app-a"/);
  assert.deepEqual(log.kinds, ['manifest']);
  assert.equal(openStore({ dir: cache }).readOrigin(host.url), null, 'nothing was recorded');

  const run = await runAsync(['run', host.url, '--key', key.publicKeyString, '--app', 'app-a', '--cache', cache]);
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /^\[livemod sync\] manifest from .* app "app-b", not of app "app-a" .*\[ERR_LIVEMOD_WRONG_APP\]\n$/);
  assert.doesNotMatch(run.stdout + run.stderr, /I am B/, 'B never ran');

  // The pin is what protects a first run: without one, a cold client trusts the first app it sees.
  const unpinned = await runAsync(['run', host.url, '--key', key.publicKeyString, '--cache', tempDir(t)]);
  assert.equal(unpinned.status, 0, unpinned.stderr);
  const pinned = await runAsync(['run', host.url, '--key', key.publicKeyString, '--app', 'app-b', '--cache', tempDir(t)]);
  assert.equal(pinned.status, 0, pinned.stderr);
  assert.match(pinned.stdout, /I am B/);
});

test('the config file pins the app per origin', async (t) => {
  const running = await startServer(t);
  running.server.publish(signSnapshot(build(t, app('app-b', 'I am B')), running.key));
  const config = join(tempDir(t), 'config.json');
  writeFileSync(config, JSON.stringify({ origins: { [`${running.url}/`]: { key: running.key.publicKeyString, app: 'app-a' } } }));
  const env = { LIVEMOD_CONFIG: config, LIVEMOD_KEY: undefined, LIVEMOD_TOKEN: undefined };
  const refused = await runAsync(['run', `${running.url}/`, '--cache', tempDir(t)], { env });
  assert.equal(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /\[ERR_LIVEMOD_WRONG_APP\]$/m);
  writeFileSync(config, JSON.stringify({ origins: { [`${running.url}/`]: { key: running.key.publicKeyString, app: 7 } } }));
  const malformed = await runAsync(['run', `${running.url}/`, '--cache', tempDir(t)], { env });
  assert.match(malformed.stderr, /"key", "token" and "app" must be strings.*\[ERR_LIVEMOD_CONFIG_INVALID\]$/m);
});

test('a pin that contradicts the app the cache accepted is refused before any request; cache forget clears the record', async (t) => {
  const running = await startServer(t);
  const a = signSnapshot(build(t, app('app-a', 'I am A')), running.key);
  running.server.publish(a);
  const cache = tempDir(t);
  await connect(running.url, { publicKey: running.key.publicKeyString, cache, ...quiet });
  running.server.publish(signSnapshot(build(t, app('app-b', 'I am B')), running.key, { previousVersion: a.manifest.version }));

  const log = requests();
  await rejectsWithCode(connect(running.url, { publicKey: running.key.publicKeyString, app: 'app-b', cache, onRequest: log.onRequest, ...quiet }), 'ERR_LIVEMOD_WRONG_APP', /--app pins "app-b" for .*, but the cache accepted app "app-a" from there; .*livemod cache forget/);
  assert.deepEqual(log.kinds, []);

  const forgot = cli(['cache', 'forget', `${running.url}/`, '--cache', cache, '--json']);
  assert.equal(forgot.status, 0, forgot.stderr);
  assert.equal(JSON.parse(forgot.stdout).forgotten, true);
  const moved = await connect(running.url, { publicKey: running.key.publicKeyString, app: 'app-b', cache, ...quiet });
  assert.equal((await moved.import()).says, 'I am B');
  assert.equal(JSON.parse(cli(['cache', 'forget', 'http://127.0.0.1:9/none/', '--cache', cache, '--json']).stdout).forgotten, false);
});

test('the app name: package.json "name", else the folder name, or --name; refused when it cannot be printed safely', (t) => {
  assert.equal(build(t, app('@scope/tools', 'x')).name, '@scope/tools');
  const bare = tempDir(t);
  writeFiles(bare, { 'main.ts': 'export default 1;' });
  assert.equal(new SnapshotBuilder(bare).build().content.name, basename(bare));
  assert.equal(new SnapshotBuilder(bare, { name: 'given' }).build().content.name, 'given');
  writeFiles(bare, { 'package.json': JSON.stringify({ name: 'evil\u001b[2K' }) });
  assert.throws(() => new SnapshotBuilder(bare).build(), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_BUILD_FAILED' && /pass another with --name/.test(error.message) && !error.message.includes('\u001b'));

  const key = join(tempDir(t), 'k.key');
  cli(['keygen', '--out', key]);
  const published = cli(['publish', bare, '--out', join(tempDir(t), 'out'), '--key', key, '--name', 'tools', '--json']);
  assert.equal(published.status, 0, published.stderr);
  assert.equal(JSON.parse(published.stdout).name, 'tools');
  assert.equal(cli(['publish', bare, '--out', join(tempDir(t), 'out'), '--key', key, '--name', 'a\nb']).status, 2);
});

test('a cache written before manifests named their app: the next sync records the app; offline it says to sync once', async (t) => {
  const running = await startServer(t);
  const current = signSnapshot(build(t, app('app-a', 'I am A')), running.key);
  running.server.publish(current);
  // A record as the previous livemod wrote it: a version-1 envelope and a state without "name".
  const cache = tempDir(t);
  const origin = normaliseOrigin(`${running.url}/`);
  const folder = join(cache, 'origins', originId(origin));
  const old = Buffer.from(`{"signatures":[{"keyId":"${running.key.keyId}","sig":"${'A'.repeat(86)}"}],"signed":{"schema":"livemod/manifest@1"}}`);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'manifest.json'), old);
  writeFileSync(join(folder, 'state.json'), JSON.stringify({ origin, version: 5, etag: null, keyId: running.key.keyId, manifestHash: sha256Hex(old), acceptedAt: 1, checkedAt: Date.now() }));

  await rejectsWithCode(connect(running.url, { publicKey: running.key.publicKeyString, cache, offline: true, ...quiet }), 'ERR_LIVEMOD_MANIFEST_INVALID', /is a version-1 manifest, which this livemod no longer reads/);
  const synced = await connect(running.url, { publicKey: running.key.publicKeyString, cache, ...quiet });
  assert.equal(synced.from, 'network');
  const state = openStore({ dir: cache }).readOrigin(running.url)?.state;
  assert.equal(state?.name, 'app-a');
  assert.equal(state?.version, current.manifest.version);
});

// Stale code has a bound by default. A warm client whose origin is down (a gateway answering 503)
// runs its cached version only if the origin confirmed it within 7 days, whether or not its
// signature has expired since; --max-stale changes the bound and --max-stale 0 never runs code
// the origin did not confirm in this sync. `serve` signs for a day, so a replayed old manifest
// fools a client with no version floor for a day at most. Real hosts, a real store, the real CLI.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { connect } from '../src/client/index.ts';
import { generatePublisherKey, manifestBlobs, openManifest, parsePublicKey, signSnapshot, type PublisherKey } from '../src/snapshot/index.ts';
import { SnapshotBuilder } from '../src/build/index.ts';
import { normaliseOrigin, openStore, originId } from '../src/store/index.ts';
import { rejectsWithCode } from './helpers/assert.ts';
import { runAsync, startCli } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { startProxy } from './helpers/hostile-proxy.ts';

const DAY = 24 * 3600 * 1000;
const quiet = { notice: () => {} };

/**
 * A cache holding a version of `origin` whose signature expired a day ago, last confirmed by
 * the origin `confirmedAgo` ms ago: what a client that ran long ago and then lost its origin has.
 */
function cachedExpired(t: TestContext, origin: string, confirmedAgo: number): { cache: string; key: PublisherKey; version: number } {
  const dir = tempDir(t);
  writeFiles(dir, { 'package.json': '{"name":"stale-app"}', 'main.ts': 'export const ran: string = "cached";\nconsole.log("cached code ran");\n' });
  const key = generatePublisherKey();
  const snapshot = signSnapshot(new SnapshotBuilder(dir).build().content, key, { now: Date.now() - 10 * DAY, ttlMs: 9 * DAY });
  const cache = tempDir(t);
  const store = openStore({ dir: cache });
  for (const ref of manifestBlobs(snapshot.manifest)) store.writeBlob(ref.hash, snapshot.blobs.get(ref.hash)!);
  store.commitManifest(origin, { bytes: snapshot.sealed.bytes, manifest: snapshot.manifest, etag: null });
  // The state file records when the origin last confirmed the version: set it back.
  const stateFile = join(cache, 'origins', originId(normaliseOrigin(origin)), 'state.json');
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { checkedAt: number };
  writeFileSync(stateFile, JSON.stringify({ ...state, checkedAt: Date.now() - confirmedAgo }));
  return { cache, key, version: snapshot.manifest.version };
}

/** An origin behind a gateway that answers 503 to everything: the origin is down. */
async function downOrigin(t: TestContext): Promise<string> {
  const proxy = await startProxy(t, 'http://127.0.0.1:9/', { answer: () => ({ status: 503, headers: { 'content-type': 'text/plain' }, body: 'upstream down' }) });
  return proxy.url;
}

test('an expired cached version behind a 503 runs only within 7 days of its last confirmation, by default', async (t) => {
  const url = await downOrigin(t);
  const old = cachedExpired(t, url, 8 * DAY);
  await rejectsWithCode(connect(url, { publicKey: old.key.publicKeyString, cache: old.cache, ...quiet }), 'ERR_LIVEMOD_TOO_STALE', /answered 503.*last confirmed 8 days ago, longer than the 7 days --max-stale allows; reconnect, or raise --max-stale/);

  const notices: string[] = [];
  const allowed = await connect(url, { publicKey: old.key.publicKeyString, cache: old.cache, maxStaleMs: 30 * DAY, notice: (line) => notices.push(line) });
  assert.equal(allowed.from, 'offline');
  assert.equal(allowed.version, old.version);
  assert.match(notices.join('\n'), /running cached version \d+ of .*, last confirmed 8 days ago \(its signature has expired since\)/);

  const recent = cachedExpired(t, url, 2 * DAY);
  assert.equal((await connect(url, { publicKey: recent.key.publicKeyString, cache: recent.cache, ...quiet })).from, 'offline');

  const refused = await runAsync(['run', url, '--key', old.key.publicKeyString, '--cache', old.cache]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /\[ERR_LIVEMOD_TOO_STALE\]\n$/);
  assert.doesNotMatch(refused.stdout, /cached code ran/);
  const ran = await runAsync(['run', url, '--key', old.key.publicKeyString, '--cache', old.cache, '--max-stale', '30d']);
  assert.equal(ran.status, 0, ran.stderr);
  assert.match(ran.stdout, /cached code ran/);
});

test('--max-stale 0 never runs code its origin did not confirm in this sync', async (t) => {
  const url = await downOrigin(t);
  const fresh = cachedExpired(t, url, 0);
  await rejectsWithCode(connect(url, { publicKey: fresh.key.publicKeyString, cache: fresh.cache, maxStaleMs: 0, ...quiet }), 'ERR_LIVEMOD_TOO_STALE', /--max-stale 0 never runs a version its origin has not just confirmed/);
  for (const extra of [[], ['--offline']]) {
    const run = await runAsync(['run', url, '--key', fresh.key.publicKeyString, '--cache', fresh.cache, '--max-stale', '0', ...extra]);
    assert.equal(run.status, 1, `${extra.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, /--max-stale 0 never runs .*\[ERR_LIVEMOD_TOO_STALE\]\n$/);
    assert.doesNotMatch(run.stdout, /cached code ran/);
  }
  assert.equal((await runAsync(['run', url, '--key', fresh.key.publicKeyString, '--max-stale', '-1d'])).status, 2);
});

test('serve signs for a day by default and says so; --expires still sets it', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'main.ts': 'export default 1;' });
  for (const [flags, ttl] of [[[], DAY], [['--expires', '2h'], 2 * 3600 * 1000]] as const) {
    const serve = startCli(['serve', dir, '--port', '0', ...flags]);
    t.after(() => serve.stop());
    const listening = await serve.next((event) => event.event === 'listening');
    const bytes = new Uint8Array(await (await fetch(`${listening.url as string}/manifest.json`)).arrayBuffer());
    const manifest = openManifest(bytes, parsePublicKey(listening.publicKey as string), 'test');
    assert.equal(Date.parse(manifest.expires) - Date.parse(manifest.created), ttl);
    assert.equal(listening.expires, manifest.expires);
    await serve.stop();
  }
});

// One deadline per sync. A host (here a hostile proxy in front of a real livemod server or a
// static host) that drips or stalls at any phase of a sync — manifest, batch, pack, single
// blobs — is cut at the one deadline of the whole sync, not one per request; then a client with
// a cached version runs it, as when the origin is unreachable. Deadlines are short (1–3 s) and
// every bound asserted is generous; what is asserted is which request was cut and what ran.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { connect } from '../src/client/index.ts';
import { generatePublisherKey, signSnapshot, type PublisherKey } from '../src/snapshot/index.ts';
import { SnapshotBuilder, publishSnapshot } from '../src/build/index.ts';
import type { RequestEvent } from '../src/sync/index.ts';
import { rejectsWithCode } from './helpers/assert.ts';
import { runAsync } from './helpers/cli.ts';
import { tempDir } from './helpers/fs.ts';
import { startProxy, type ProxyRules } from './helpers/hostile-proxy.ts';
import { startServer } from './helpers/server-fixtures.ts';
import { startHost } from './helpers/static-host.ts';
import { generateTree } from './helpers/tree.ts';

function content(t: TestContext, seed = 3) {
  const dir = tempDir(t);
  generateTree(dir, 20, { seed });
  return new SnapshotBuilder(dir, { name: 'deadline-test' }).build().content;
}

/** A livemod server (batch route) or a static host (pack, then single blobs), behind a proxy with these rules. */
async function origin(t: TestContext, kind: 'server' | 'static', rules: ProxyRules): Promise<{ url: string; key: PublisherKey; seen: string[] }> {
  if (kind === 'server') {
    const running = await startServer(t);
    running.server.publish(signSnapshot(content(t), running.key));
    const proxy = await startProxy(t, `${running.url}/`, rules);
    return { url: proxy.url, key: running.key, seen: proxy.seen };
  }
  const key = generatePublisherKey();
  const out = tempDir(t);
  await publishSnapshot(content(t), key, out);
  const host = await startHost(t, out);
  const proxy = await startProxy(t, host.url, rules);
  return { url: proxy.url, key, seen: proxy.seen };
}

const quiet = { notice: () => {} };
const path = (req: { url?: string | undefined }): string => req.url ?? '';

describe('a host that drips at each phase of a cold sync is cut at the deadline', () => {
  const phases: Array<{ phase: string; kind: 'server' | 'static'; rules: ProxyRules; cut: RegExp }> = [
    { phase: 'manifest headers never sent', kind: 'server', rules: { hold: (req) => path(req) === '/manifest.json' }, cut: /GET \S+\/manifest\.json did not finish within the 1000 ms limit of this sync/ },
    { phase: 'manifest body dripped', kind: 'server', rules: { drip: (req) => (path(req) === '/manifest.json' ? Infinity : null) }, cut: /GET \S+\/manifest\.json did not finish/ },
    { phase: 'batch dripped', kind: 'server', rules: { drip: (req) => (path(req) === '/batch' ? Infinity : null) }, cut: /POST \S+\/batch did not finish/ },
    { phase: 'pack dripped (static host)', kind: 'static', rules: { drip: (req) => (path(req).startsWith('/pack/') ? Infinity : null) }, cut: /GET \S+\/pack\/[0-9a-f]{64}\.pack did not finish/ },
    {
      phase: 'single blobs dripped (static host whose pack is gone)',
      kind: 'static',
      rules: { answer: (req) => (path(req).startsWith('/pack/') ? { status: 404 } : null), drip: (req) => (path(req).startsWith('/blobs/') ? Infinity : null) },
      cut: /GET \S+\/blobs\/[0-9a-f]{64} did not finish/,
    },
  ];
  for (const { phase, kind, rules, cut } of phases) {
    test(phase, async (t) => {
      const { url, key } = await origin(t, kind, rules);
      const started = performance.now();
      await rejectsWithCode(connect(url, { publicKey: key.publicKeyString, cache: tempDir(t), timeoutMs: 1000, ...quiet }), 'ERR_LIVEMOD_TIMEOUT', cut);
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 5000, `cut after ${elapsed.toFixed(0)} ms with a 1 s deadline`);
    });
  }
});

test('the deadline is shared: a manifest that takes most of it leaves the batch only the rest', async (t) => {
  // Per-request deadlines would end this at 1.8 s + 3 s; one deadline ends it at 3 s.
  const { url, key, seen } = await origin(t, 'server', { drip: (req) => (path(req) === '/manifest.json' ? 1800 : path(req) === '/batch' ? Infinity : null) });
  const started = performance.now();
  await rejectsWithCode(connect(url, { publicKey: key.publicKeyString, cache: tempDir(t), timeoutMs: 3000, ...quiet }), 'ERR_LIVEMOD_TIMEOUT', /POST \S+\/batch did not finish within the 3000 ms limit of this sync/);
  const elapsed = performance.now() - started;
  assert.deepEqual(seen, ['GET /manifest.json', 'POST /batch'], 'the manifest completed; the batch was cut');
  assert.ok(elapsed < 4500, `ended after ${elapsed.toFixed(0)} ms: the batch got a deadline of its own`);
});

test('warm: a host that stalls or drips runs the cached version once the deadline passes', async (t) => {
  let rules: ProxyRules = {};
  const running = await startServer(t);
  const v1 = signSnapshot(content(t), running.key);
  running.server.publish(v1);
  const proxy = await startProxy(t, `${running.url}/`, {
    hold: (req) => rules.hold?.(req) ?? false,
    drip: (req) => rules.drip?.(req) ?? null,
  });
  const cache = tempDir(t);
  const options = { publicKey: running.key.publicKeyString, cache, timeoutMs: 1000 };
  assert.equal((await connect(proxy.url, { ...options, ...quiet })).from, 'network');

  rules = { hold: (req) => path(req) === '/manifest.json' };
  const notices: string[] = [];
  const stalled = await connect(proxy.url, { ...options, notice: (line) => notices.push(line) });
  assert.equal(stalled.from, 'offline');
  assert.equal(stalled.version, v1.manifest.version);
  assert.match(notices.join('\n'), /is unreachable \(ERR_LIVEMOD_TIMEOUT\): running cached version \d+ of .*, last confirmed \d+ s ago/);

  // A new version whose blobs drip: cut mid-sync, the cached version runs, the new one is not committed.
  running.server.publish(signSnapshot(content(t, 4), running.key, { previousVersion: v1.manifest.version }));
  rules = { drip: (req) => (path(req) === '/batch' ? Infinity : null) };
  const events: RequestEvent[] = [];
  notices.length = 0;
  const cut = await connect(proxy.url, { ...options, onRequest: (event) => events.push(event), notice: (line) => notices.push(line) });
  assert.deepEqual(events.map((event) => event.kind), ['manifest', 'batch']);
  assert.equal(cut.from, 'offline');
  assert.equal(cut.version, v1.manifest.version);
  assert.match(notices.join('\n'), /stopped answering while version \d+ was fetched \(ERR_LIVEMOD_TIMEOUT\): running cached version/);
  await cut.import(cut.manifest.entry ?? Object.keys(cut.manifest.modules)[0]!);
});

test('`livemod run --timeout 2s` against a host that drips the manifest then the batch exits 1 with TIMEOUT at the deadline', async (t) => {
  const { url, key } = await origin(t, 'server', { drip: (req) => (path(req) === '/manifest.json' ? 1200 : path(req) === '/batch' ? Infinity : null) });
  const run = await runAsync(['run', url, '--key', key.publicKeyString, '--cache', join(tempDir(t), 'cache'), '--timeout', '2s']);
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /POST \S+\/batch did not finish within the 2000 ms limit of this sync .*\[ERR_LIVEMOD_TIMEOUT\]\n$/);
  assert.ok(run.ms < 15_000, `exited after ${run.ms.toFixed(0)} ms`);
});

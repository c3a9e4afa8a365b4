// Running apps follow new versions: a real livemod server publishes, the client hears it on the
// channel (or polls a static host, or watches its own folder), syncs, verifies, and swaps in place.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SnapshotBuilder } from '../src/build/index.ts';
import { connect, openFolder, type App } from '../src/client/index.ts';
import { signSnapshot, type Snapshot } from '../src/snapshot/index.ts';
import { Live, type SwapRecord } from '../src/client/live.ts';
import { registryFor } from './helpers/runtime.ts';
import { startServer, within, type Running } from './helpers/server-fixtures.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';

/** A folder served by a real server; `edit` writes files, rebuilds, signs and publishes the next version. */
async function publisher(t: TestContext, files: Record<string, string>): Promise<Running & { dir: string; current(): Snapshot; edit(files: Record<string, string>): Snapshot }> {
  const running = await startServer(t);
  const dir = tempDir(t);
  writeFiles(dir, { 'package.json': '{"name":"live-test","type":"module"}', ...files });
  const builder = new SnapshotBuilder(dir);
  let current = signSnapshot(builder.build().content, running.key);
  running.server.publish(current);
  return {
    ...running,
    dir,
    current: () => current,
    edit(changes) {
      writeFiles(dir, changes);
      builder.invalidate(Object.keys(changes));
      current = signSnapshot(builder.build().content, running.key, { previousVersion: current.manifest.version });
      running.server.publish(current);
      return current;
    },
  };
}

/** Resolves with the first swap record (from now on) that `match` accepts. */
function nextSwap(app: App, match: (record: SwapRecord) => boolean = () => true, ms = 10_000): Promise<SwapRecord> {
  return within(new Promise((resolve) => {
    const listener = (record: SwapRecord): void => {
      if (!match(record)) return;
      app.off('swap', listener);
      resolve(record);
    };
    app.on('swap', listener);
  }), ms, 'a swap');
}

test('a live client hears each publish on the channel and swaps in place; the server sees its version and last swap', async (t) => {
  const origin = await publisher(t, {
    'state.js': 'export const hits = import.meta.hot.data.hits ??= { count: 0 };',
    'main.js': 'import { hits } from "./state.js"; export function hello() { hits.count += 1; return "v1 " + hits.count; } import.meta.hot.accept();',
  });
  const app = await connect(`${origin.url}/`, { publicKey: origin.key.publicKeyString, cache: tempDir(t), live: true, notice: () => {} });
  t.after(() => app.close());
  const main = await app.import('main.js');
  assert.equal((main.hello as () => string)(), 'v1 1');
  const swapped = nextSwap(app);
  const published = origin.edit({ 'main.js': 'import { hits } from "./state.js"; export function hello() { hits.count += 1; return "v2 " + hits.count; } import.meta.hot.accept();' });
  const record = await swapped;
  assert.equal(record.status, 'applied');
  assert.equal(record.version, published.manifest.version);
  assert.deepEqual(record.modules.map((module) => module.path), ['main.js']);
  assert.equal(app.version, published.manifest.version);
  assert.equal((main.hello as () => string)(), 'v2 2', 'the namespace held shows the new code; the state module kept its count');
  // The server learns the client's version and last swap from its status report.
  const status = await within((async () => {
    for (;;) {
      const body = await (await fetch(`${origin.url}/status`)).json() as { clients: { version?: number; swap?: { status: string } }[] };
      if (body.clients[0]?.version === published.manifest.version) return body;
      await sleep(20);
    }
  })(), 5000, 'the server to see the new version');
  assert.equal(status.clients[0]!.swap!.status, 'applied');
});

test('100 saves 20 ms apart: updates coalesce and the client ends on the last version', { timeout: 60_000 }, async (t) => {
  const origin = await publisher(t, { 'value.js': 'export const value = 0; import.meta.hot.accept();' });
  const app = await connect(`${origin.url}/`, { publicKey: origin.key.publicKeyString, cache: tempDir(t), live: true, notice: () => {} });
  t.after(() => app.close());
  const ns = await app.import('value.js');
  let last!: Snapshot;
  for (let edit = 1; edit <= 100; edit += 1) {
    last = origin.edit({ 'value.js': `export const value = ${edit}; import.meta.hot.accept();` });
    await sleep(20);
  }
  if (app.version !== last.manifest.version) await nextSwap(app, (record) => record.version === last.manifest.version, 20_000);
  assert.equal(ns.value, 100);
  assert.ok(app.swaps().every((record) => record.status === 'applied'));
  assert.ok(app.swaps().length <= 100);
});

test('a version that fails to evaluate is rolled back and reported: a stderr line with its source location, a swap event', async (t) => {
  const origin = await publisher(t, { 'main.js': 'export const value = "good"; import.meta.hot.accept();' });
  const lines: string[] = [];
  const app = await connect(`${origin.url}/`, { publicKey: origin.key.publicKeyString, cache: tempDir(t), live: true, notice: (line) => lines.push(line) });
  t.after(() => app.close());
  const main = await app.import('main.js');
  const failed = nextSwap(app);
  const records: SwapRecord[] = [];
  app.on('swap', (swap) => records.push(swap));
  origin.edit({ 'main.js': 'globalThis.badRuns = (globalThis.badRuns ?? 0) + 1;\nthrow new RangeError("no good");\nimport.meta.hot.accept();' });
  const record = await failed;
  assert.equal(record.status, 'failed');
  // Not tried again: the first retry of a version the server did not have yet comes 500 ms later.
  await new Promise((resolve) => setTimeout(resolve, 1200));
  assert.equal((globalThis as { badRuns?: number }).badRuns, 1, 'the failing version ran once');
  assert.equal(records.filter((swap) => swap.status === 'failed').length, 1, records.map((swap) => swap.status).join());
  assert.match(record.error!, /RangeError: no good/);
  assert.match(record.error!, /main\.js\?v=[0-9a-f]{12}:2:\d+/, 'the failure names the original file and line');
  assert.equal(main.value, 'good');
  assert.ok(lines.some((line) => line.startsWith('[livemod swap]') && line.includes('failed, still running version')));
  const fixed = nextSwap(app);
  origin.edit({ 'main.js': 'export const value = "fixed"; import.meta.hot.accept();' });
  assert.equal((await fixed).status, 'applied');
  assert.equal(main.value, 'fixed');
});

test('app.update() syncs now; without live nothing is followed, and close() stops a live app', async (t) => {
  const origin = await publisher(t, { 'main.js': 'export const value = 1; import.meta.hot.accept();' });
  const app = await connect(`${origin.url}/`, { publicKey: origin.key.publicKeyString, cache: tempDir(t), notice: () => {} });
  const main = await app.import('main.js');
  origin.edit({ 'main.js': 'export const value = 2; import.meta.hot.accept();' });
  assert.equal(main.value, 1);
  const record = await app.update();
  assert.equal(record?.status, 'applied');
  assert.equal(main.value, 2);
  assert.equal(await app.update(), null, 'nothing newer: no swap');
  await app.close();
});

test('a local folder run with live: true swaps each save in place', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'main.js': 'export const value = "one"; import.meta.hot.accept();' });
  const app = await openFolder(join(dir, 'main.js'), { live: true, notice: () => {} });
  t.after(() => app.close());
  const main = await app.import();
  const swapped = nextSwap(app);
  writeFileSync(join(dir, 'main.js'), 'export const value = "two"; import.meta.hot.accept();');
  assert.equal((await swapped).status, 'applied');
  assert.equal(main.value, 'two');
  rmSync(join(dir, 'main.js'));
});

test('a pushed manifest is offered to the sync only while it is for the highest version announced', async (t) => {
  const { registry } = registryFor(t, { 'package.json': '{"name":"pushed-order"}', 'main.js': 'export const value = 1;' });
  const base = registry.source.manifest.version;
  /** A Live whose syncs never find anything newer (each hint-driven one is retried after a wait), and what each was offered. */
  const follower = (): { live: Live; offered: (string | undefined)[]; syncs: (count: number) => Promise<void> } => {
    const offered: (string | undefined)[] = [];
    const live = new Live({
      registry,
      resync: async (pushed) => {
        offered.push(pushed?.toString('utf8'));
        return null;
      },
      notice: () => {},
    });
    t.after(() => live.close());
    const syncs = (count: number): Promise<void> => within((async () => {
      while (offered.length < count) await sleep(10);
    })(), 5000, `sync ${count}`);
    return { live, offered, syncs };
  };
  // While the retry waits: a push for a higher version, then an announcement still higher without one (too big to push): the retry fetches.
  const later = follower();
  later.live.hint(base + 1, false, 'manifest-1');
  await later.syncs(1);
  later.live.hint(base + 2, false, 'manifest-2');
  later.live.hint(base + 3, false);
  await later.syncs(2);
  assert.deepEqual(later.offered, ['manifest-1', undefined]);
  // The other order: a push for a lower version than one announced already is not kept either.
  const earlier = follower();
  earlier.live.hint(base + 1, false);
  await earlier.syncs(1);
  earlier.live.hint(base + 3, false);
  earlier.live.hint(base + 2, false, 'manifest-2');
  await earlier.syncs(2);
  assert.deepEqual(earlier.offered, [undefined, undefined]);
  // Controls: the push for the highest version is offered to the retry, and a hello of that version keeps it.
  const kept = follower();
  kept.live.hint(base + 1, false);
  await kept.syncs(1);
  kept.live.hint(base + 2, false, 'manifest-2');
  kept.live.hint(base + 2, true);
  kept.live.hint(base + 1, true);
  await kept.syncs(2);
  assert.deepEqual(kept.offered, [undefined, 'manifest-2']);
});

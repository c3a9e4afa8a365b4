// Only what runs is fetched: the modules the start reaches statically in the first batch (with
// their maps), each import() graph in one batch when it is first needed, nothing never reached;
// offline, what was never fetched fails with a clear error.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SnapshotBuilder } from '../src/build/index.ts';
import { connect } from '../src/client/index.ts';
import { signSnapshot, type Manifest } from '../src/snapshot/index.ts';
import type { RequestEvent } from '../src/sync/index.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { startServer } from './helpers/server-fixtures.ts';

const FILES = {
  'package.json': '{"name":"partial"}',
  'main.ts': `import { a } from './a';\nexport const run = async () => a + (await import('./lazy/b')).b;\nexport const fail = () => import('./lazy/throws').then((m) => m.boom());\n`,
  'a.ts': `export const a = 'a';\n`,
  'lazy/b.ts': `import { c } from './c';\nexport const b = 'b' + c;\n`,
  'lazy/c.ts': `export const c = 'c';\n`,
  'lazy/throws.ts': `export function boom(): never {\n  throw new Error('boom');\n}\n`,
  'never.ts': `export const never = 'never reached';\n`,
};

function blobFile(cache: string, hash: string): string {
  return join(cache, 'blobs', hash.slice(0, 2), hash);
}

test('a cold start fetches what the entry reaches; import() fetches its graph in one batch on first use; unreached modules are never fetched', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, FILES);
  const running = await startServer(t);
  const snapshot = signSnapshot(new SnapshotBuilder(dir).build().content, running.key);
  running.server.publish(snapshot);
  const manifest: Manifest = snapshot.manifest;
  const cache = tempDir(t);
  const events: RequestEvent[] = [];
  const app = await connect(`${running.url}/main.ts`, { publicKey: running.key.publicKeyString, cache, onRequest: (event) => events.push(event), notice: () => {} });
  const stored = (path: string): boolean => existsSync(blobFile(cache, manifest.modules[path]!.blob.hash));
  assert.ok(stored('main.ts') && stored('a.ts'));
  assert.ok(existsSync(blobFile(cache, manifest.modules['a.ts']!.map!.hash)), 'a map travels with its code');
  for (const path of ['lazy/b.ts', 'lazy/c.ts', 'lazy/throws.ts', 'never.ts']) assert.ok(!stored(path), `${path} not fetched at start`);
  const main = (await app.import()) as unknown as { run(): Promise<string>; fail(): Promise<never> };
  const before = events.filter((event) => event.kind === 'batch').length;
  assert.equal(await main.run(), 'abc');
  assert.equal(events.filter((event) => event.kind === 'batch').length, before + 1, 'one batch for the import() graph');
  assert.ok(stored('lazy/b.ts') && stored('lazy/c.ts'));
  assert.ok(!stored('never.ts') && !stored('lazy/throws.ts'));
  // A throw in a module fetched on demand still maps to its source: its map came with it.
  const error = await main.fail().catch((failure: unknown) => failure as Error);
  assert.match(error.stack!, /lazy\/throws\.ts:2:9/);

  // Offline, a graph never fetched fails clearly; what was fetched runs.
  const offline = await connect(`${running.url}/main.ts`, { publicKey: running.key.publicKeyString, cache, offline: true, notice: () => {} });
  assert.ok(await offline.import());
  await assert.rejects(offline.import('never.ts'), (failure: NodeJS.ErrnoException) => {
    assert.equal(failure.code, 'ERR_LIVEMOD_NOT_CACHED');
    assert.match(failure.message, /running offline, but module "never\.ts" of cached version \d+ is not in the cache .*never fetched.*run once online/);
    return true;
  });
});

test('--revalidate background: the cached version starts without a request first, and a newer one found beside it is swapped in', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'package.json': '{"name":"background"}', 'main.ts': `export const word = 'first';\nimport.meta.hot?.accept();\n` });
  const running = await startServer(t);
  const builder = new SnapshotBuilder(dir);
  const first = signSnapshot(builder.build().content, running.key);
  running.server.publish(first);
  const cache = tempDir(t);
  const options = { publicKey: running.key.publicKeyString, cache, notice: () => {} };
  await connect(`${running.url}/main.ts`, options);
  writeFiles(dir, { 'main.ts': `export const word = 'second';\nimport.meta.hot?.accept();\n` });
  builder.invalidate(['main.ts']);
  running.server.publish(signSnapshot(builder.build().content, running.key, { previousVersion: first.manifest.version }));

  const events: RequestEvent[] = [];
  const app = await connect(`${running.url}/main.ts`, { ...options, live: true, revalidate: 'background', onRequest: (event) => events.push(event) });
  const swapped = new Promise<string>((resolve) => app.on('swap', (record) => resolve(record.status)));
  assert.equal(app.version, first.manifest.version, 'started from the cache');
  const main = (await app.import()) as unknown as { word: string };
  assert.equal(main.word, 'first');
  assert.equal(await swapped, 'applied');
  assert.equal(main.word, 'second', 'the newer version found beside it runs now');
  assert.ok(events.some((event) => event.kind === 'manifest' && event.status === 200));
  await app.close();
  await assert.rejects(connect(`${running.url}/main.ts`, { ...options, revalidate: 'sometimes' as 'start' }), /revalidate is "sometimes"; it must be "start" or "background"/);
});

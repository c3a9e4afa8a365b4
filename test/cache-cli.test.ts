// `livemod cache ls | verify | prune` on a real store filled by a real sync.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect } from '../src/client/index.ts';
import { sha256Hex, signSnapshot } from '../src/snapshot/index.ts';
import { SnapshotBuilder } from '../src/build/index.ts';
import { cli } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { startServer } from './helpers/server-fixtures.ts';

test('cache ls, verify and prune report and repair the store', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'main.ts': 'import { x } from "./x"; export const y = x;', 'x.ts': 'export const x = 1;' });
  const running = await startServer(t);
  running.server.publish(signSnapshot(new SnapshotBuilder(dir).build().content, running.key));
  const cache = tempDir(t);
  const app = await connect(running.url, { publicKey: running.key.publicKeyString, cache, notice: () => {} });

  const listed = cli(['cache', 'ls', '--cache', cache, '--json']);
  assert.equal(listed.status, 0, listed.stderr);
  const listing = JSON.parse(listed.stdout);
  assert.equal(listing.origins.length, 1);
  assert.equal(listing.origins[0].version, app.version);
  assert.equal(listing.origins[0].modules, 2);
  assert.match(cli(['cache', 'ls', '--cache', cache]).stdout, /version \d+, 2 modules/);

  const hash = app.manifest.modules['x.ts']!.blob.hash;
  const file = join(cache, 'blobs', hash.slice(0, 2), hash);
  writeFileSync(file, Buffer.concat([readFileSync(file), Buffer.from('tampered')]));
  const verified = cli(['cache', 'verify', '--cache', cache, '--json']);
  assert.equal(verified.status, 1, 'a corrupt entry makes verify fail');
  assert.deepEqual(JSON.parse(verified.stdout).corrupt.map((entry: string) => entry.split('/').pop()), [hash]);
  assert.equal(existsSync(file), false, 'the corrupt blob was removed');
  assert.equal(cli(['cache', 'verify', '--cache', cache]).status, 0, 'clean afterwards');

  // A blob no manifest needs, old enough that no sync in progress can be waiting for it.
  const stray = Buffer.from('stray blob');
  const strayHash = sha256Hex(stray);
  mkdirSync(join(cache, 'blobs', strayHash.slice(0, 2)), { recursive: true });
  const strayFile = join(cache, 'blobs', strayHash.slice(0, 2), strayHash);
  writeFileSync(strayFile, stray);
  const old = new Date(Date.now() - 24 * 3600 * 1000);
  utimesSync(strayFile, old, old);
  const dry = JSON.parse(cli(['cache', 'prune', '--cache', cache, '--dry-run', '--json']).stdout);
  assert.equal(dry.removed, 1);
  assert.equal(existsSync(strayFile), true);
  const pruned = JSON.parse(cli(['cache', 'prune', '--cache', cache, '--json']).stdout);
  assert.equal(pruned.removed, 1);
  assert.equal(existsSync(strayFile), false);
  const needed = app.manifest.modules['main.ts']!.blob.hash;
  assert.equal(existsSync(join(cache, 'blobs', needed.slice(0, 2), needed)), true, 'blobs the newest manifest needs stay');
  const unusable = cli(['cache', 'ls', '--cache', join(cache, 'blobs', needed.slice(0, 2), needed, 'nested'), '--json']);
  assert.equal(unusable.status, 1, 'an unusable cache folder is an error');
  assert.match(JSON.parse(unusable.stdout).error.code, /^ERR_LIVEMOD_STORE/);
});

// Source maps are fetched when a stack first needs one (issue 16): a start fetches code, not
// maps; the first stack that needs a map fetches the maps of every module fetched so far, in one
// batch, while it waits (a worker thread: src/client/fetch-sync.ts); `--maps start` takes them
// with the code. The client runs as `livemod run` in a child process: the server answers here.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SnapshotBuilder } from '../src/build/index.ts';
import { signSnapshot } from '../src/snapshot/index.ts';
import { openStore } from '../src/store/index.ts';
import { runAsync } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { startServer } from './helpers/server-fixtures.ts';

const FILES = {
  'package.json': '{"name":"maps-on-demand"}',
  // Type annotations and an interface the transform removes: columns move, so only a map gives the original position.
  'main.ts': [
    "import { boom } from './lib';",
    'interface Options { readonly loud: boolean }',
    "const options: Options = { loud: process.argv.includes('throw') };",
    "if (options.loud) boom('now');",
    "console.log('quiet');",
  ].join('\n'),
  'lib.ts': ['export function boom(word: string): never {', '  const message: string = `boom ${word}`;', '  throw new Error(message);', '}'].join('\n'),
};

test('source maps: not fetched by a start, fetched in one batch by the first stack that needs one; --maps start takes them with the code', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, FILES);
  const running = await startServer(t);
  const snapshot = signSnapshot(new SnapshotBuilder(dir).build().content, running.key);
  running.server.publish(snapshot);
  const { manifest } = snapshot;
  const maps = ['main.ts', 'lib.ts'].map((path) => manifest.modules[path]!.map!.hash);
  const run = (cache: string, ...args: string[]): ReturnType<typeof runAsync> => runAsync(['run', `${running.url}/main.ts`, '--once', '--key', running.key.publicKeyString, '--cache', cache, ...args]);
  const missing = (cache: string): number => openStore({ dir: cache }).missingBlobs(maps).length;

  const cache = tempDir(t);
  assert.equal((await run(cache)).stdout, 'quiet\n');
  assert.equal(missing(cache), 2, 'a run without a stack fetches no map');
  // Offline, a stack that needs a map it never fetched stays unmapped, and nothing waits.
  const offline = await run(cache, '--offline', 'throw');
  assert.notEqual(offline.status, 0);
  assert.match(offline.stderr, /Error: boom now/);
  assert.doesNotMatch(offline.stderr, /lib\.ts:3:9/, 'without its map, the compiled position');
  assert.equal(missing(cache), 2);

  const batches = (): number => running.logs.filter((line) => /\bbatch: /.test(line)).length;
  const before = batches();
  const thrown = await run(cache, 'throw');
  assert.notEqual(thrown.status, 0);
  assert.match(thrown.stderr, /Error: boom now/);
  assert.match(thrown.stderr, /lib\.ts:3:9/, `the original position, from the map: ${thrown.stderr}`);
  assert.match(thrown.stderr, /main\.ts:4:19/);
  assert.equal(missing(cache), 0, 'both maps fetched');
  assert.equal(batches() - before, 1, 'in one batch');
  // Kept: offline now maps too.
  assert.match((await run(cache, '--offline', 'throw')).stderr, /lib\.ts:3:9/);

  const eager = tempDir(t);
  assert.equal((await run(eager, '--maps', 'start')).stdout, 'quiet\n');
  assert.equal(missing(eager), 0, '--maps start: with the code');
  const bad = await run(eager, '--maps', 'sometimes');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--maps "sometimes" is not a mode; write --maps first-use .* or --maps start/);
});

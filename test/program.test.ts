// The whole program travels: files that are not modules, npm packages with their nested layout,
// and identity (import.meta.url/dirname/filename/main, argv[1]) that Node's idioms work with —
// run from an empty folder with an empty store, beside Node running the same folder from disk.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { SnapshotBuilder, publishSnapshot } from '../src/build/index.ts';
import { generatePublisherKey, signSnapshot, type Manifest } from '../src/snapshot/index.ts';
import { runAsync } from './helpers/cli.ts';
import { tempDir } from './helpers/fs.ts';
import { EXPECTED, writeProgram } from './helpers/program-fixture.ts';
import { startServer } from './helpers/server-fixtures.ts';
import { startHost } from './helpers/static-host.ts';

const PROGRAM_BUILD = { program: { externals: 'bundle', external: [] } } as const;

function lastJson(stdout: string): unknown {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!);
}

async function served(t: TestContext, dir: string): Promise<{ url: string; key: string; manifest: Manifest }> {
  const running = await startServer(t);
  const snapshot = signSnapshot(new SnapshotBuilder(dir, PROGRAM_BUILD).build().content, running.key);
  running.server.publish(snapshot);
  return { url: running.url, key: running.key.publicKeyString, manifest: snapshot.manifest };
}

test('Node from disk runs the fixture as the test expects it', (t) => {
  const dir = tempDir(t);
  writeProgram(dir);
  const node = spawnSync(process.execPath, ['main.ts'], { cwd: dir, encoding: 'utf8' });
  assert.equal(node.status, 0, node.stderr);
  assert.deepEqual(lastJson(node.stdout), EXPECTED);
});

test('the manifest lists every file and each package version reached, and nothing else', (t) => {
  const dir = tempDir(t);
  writeProgram(dir);
  const { content } = new SnapshotBuilder(dir, PROGRAM_BUILD).build();
  const files = Object.keys(content.files!).sort();
  for (const path of ['main.ts', 'lib/helper.cjs', 'data/hello.txt', 'data/more.sql', 'add.wasm', 'package.json']) assert.ok(files.includes(path), path);
  for (const path of ['.env', '.gitignore', 'scratch/notes.txt', 'debug.log']) assert.ok(!files.includes(path), `${path} must not travel`);
  assert.ok(!files.some((path) => path.startsWith('node_modules/')));
  const keys = Object.keys(content.packages!).sort();
  assert.deepEqual(keys.filter((key) => !key.startsWith('commander@')), ['cjs-a@1.2.0', 'dep-b@1.0.0', 'dep-b@2.0.0', 'esm-c@1.0.0']);
  assert.equal(content.packages!['cjs-a@1.2.0']!.dependencies['dep-b'], 'dep-b@1.0.0', 'the nested copy keeps its layout');
  assert.equal(content.dependencies!['dep-b'], 'dep-b@2.0.0');
  assert.ok(!keys.some((key) => key.startsWith('unused@')));
});

for (const via of ['server', 'static host'] as const) {
  test(`a program with npm packages and files runs through a ${via} from an empty folder, as Node runs it from disk; then offline`, async (t) => {
    const dir = tempDir(t);
    writeProgram(dir);
    let url: string;
    let key: string;
    if (via === 'server') {
      ({ url, key } = await served(t, dir));
    } else {
      const out = tempDir(t);
      const publisher = generatePublisherKey();
      publishSnapshot(new SnapshotBuilder(dir, PROGRAM_BUILD).build().content, publisher, out);
      url = (await startHost(t, out)).url;
      key = publisher.publicKeyString;
    }
    const cache = tempDir(t);
    const cwd = tempDir(t);
    const run = await runAsync(['run', url, '--key', key, '--cache', cache], { cwd });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(lastJson(run.stdout), EXPECTED);
    assert.deepEqual(readdirSync(cwd), [], 'nothing is written to the working folder');
    const offline = await runAsync(['run', url, '--key', key, '--cache', cache, '--offline'], { cwd });
    assert.equal(offline.status, 0, offline.stderr);
    assert.deepEqual(lastJson(offline.stdout), EXPECTED);
    // A store whose laid-out folders were removed lays them out again from its blobs, offline.
    rmSync(join(cache, 'trees'), { recursive: true });
    rmSync(join(cache, 'packages'), { recursive: true });
    const again = await runAsync(['run', url, '--key', key, '--cache', cache, '--offline'], { cwd });
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(lastJson(again.stdout), EXPECTED);
  });
}

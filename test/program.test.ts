// The whole program travels: files that are not modules, npm packages with their nested layout,
// and identity (import.meta.url/dirname/filename/main, argv[1]) that Node's idioms work with —
// run from an empty folder with an empty store, beside Node running the same folder from disk.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test, type TestContext } from 'node:test';
import { SnapshotBuilder, publishSnapshot } from '../src/build/index.ts';
import { connect } from '../src/client/index.ts';
import { generatePublisherKey, signSnapshot, type Manifest } from '../src/snapshot/index.ts';
import { openStore } from '../src/store/index.ts';
import { cli, runAsync } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
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
  assert.equal(content.layout!['node_modules/cjs-a/node_modules/dep-b'], 'dep-b@1.0.0', 'the nested copy keeps its place');
  assert.equal(content.layout!['node_modules/dep-b'], 'dep-b@2.0.0');
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
      await publishSnapshot(new SnapshotBuilder(dir, PROGRAM_BUILD).build().content, publisher, out);
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

test('publish: a package with a native addon or an install script is refused by name; --external keeps it out, and the client names what to install', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'native-app', type: 'module', dependencies: { 'native-x': '^1.0.0', 'script-y': '~2.1.0' } }),
    'main.js': `import x from 'native-x';\nimport y from 'script-y';\nconsole.log(x, y);\n`,
    'node_modules/native-x/package.json': JSON.stringify({ name: 'native-x', version: '1.0.0', main: 'index.js' }),
    'node_modules/native-x/index.js': `module.exports = require('./build/Release/x.node');\n`,
    'node_modules/native-x/build/Release/x.node': Buffer.from([0x7f, 0x45, 0x4c, 0x46]),
    'node_modules/script-y/package.json': JSON.stringify({ name: 'script-y', version: '2.1.3', scripts: { postinstall: 'node setup.js' } }),
    'node_modules/script-y/index.js': `module.exports = 'y';\n`,
  });
  const keyFile = join(tempDir(t), 'publisher.key');
  assert.equal(cli(['keygen', '--out', keyFile]).status, 0);
  const out = join(tempDir(t), 'out');
  const refused = cli(['publish', dir, '--out', out, '--key', keyFile]);
  assert.equal(refused.status, 1);
  assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
  assert.match(refused.stderr, /native-x@1\.0\.0 \(native addon build\/Release\/x\.node\).*script-y@2\.1\.3 \(postinstall script\).*--external NAME.*ERR_LIVEMOD_NATIVE_PACKAGE/);
  assert.ok(!existsSync(out), 'nothing written');
  assert.equal(cli(['publish', dir, '--out', out, '--key', keyFile, '--external', 'bad name']).status, 2);
  assert.equal(cli(['publish', dir, '--out', out, '--key', keyFile, '--externals', 'sometimes']).status, 2);
  const kept = cli(['publish', dir, '--out', out, '--key', keyFile, '--external', 'native-x', '--external', 'script-y', '--json']);
  assert.equal(kept.status, 0, kept.stderr);
  const manifest = (JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { signed: Manifest }).signed;
  assert.deepEqual(manifest.externals, { 'native-x': '^1.0.0', 'script-y': '~2.1.0' });
  assert.deepEqual(manifest.packages, {});
  assert.deepEqual(manifest.layout, {});
  const host = await startHost(t, out);
  const key = /ed25519:[\w-]{43}/.exec(kept.stdout)![0];
  const run = await runAsync(['run', host.url, '--key', key, '--cache', tempDir(t)], { cwd: tempDir(t) });
  assert.equal(run.status, 1);
  assert.match(run.stderr, /native-x does not travel in the snapshot \(the publisher's package\.json asks for \^1\.0\.0\); install it in .*: npm install native-x@'\^1\.0\.0'/);
  // Installed in the client's own folder (a build for its machine), the packages kept out load from there.
  const cwd = tempDir(t);
  writeFiles(cwd, {
    'node_modules/native-x/package.json': JSON.stringify({ name: 'native-x', version: '1.0.5', main: 'index.js' }),
    'node_modules/native-x/index.js': "module.exports = 'x built here';\n",
    'node_modules/script-y/package.json': JSON.stringify({ name: 'script-y', version: '2.1.4', main: 'index.js' }),
    'node_modules/script-y/index.js': "module.exports = 'y';\n",
  });
  const installedHere = await runAsync(['run', host.url, '--key', key, '--cache', tempDir(t)], { cwd });
  assert.equal(installedHere.status, 0, installedHere.stderr);
  assert.equal(installedHere.stdout.trim(), 'x built here y');
  // A program done at once is not told how to follow a static host's new versions (said a second in).
  assert.doesNotMatch(installedHere.stderr, /has no channel/);
  // --externals installed: nothing travels, as before packages did.
  const installed = cli(['publish', dir, '--out', join(tempDir(t), 'out2'), '--key', keyFile, '--externals', 'installed', '--json']);
  assert.equal(installed.status, 0, installed.stderr);
});

test('an optional dependency with a native addon is left out with a notice, and what wants it runs without it, as under Node; a required one is still refused', async (t) => {
  const dir = tempDir(t);
  const pkg = (name: string, extra: Record<string, unknown> = {}): string => JSON.stringify({ name, version: '1.0.0', main: 'index.js', ...extra });
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'optional-native-app', type: 'module', dependencies: { pool: '1.0.0' } }),
    'main.js': "import pool from 'pool';\nconsole.log(pool);\n",
    // As piscina reaches @napi-rs/nice and its platform build: optional at each step, loaded in a try.
    'node_modules/pool/package.json': pkg('pool', { optionalDependencies: { accel: '1.0.0' } }),
    'node_modules/pool/index.js': "let accel = null;\ntry { accel = require('accel'); } catch {}\nmodule.exports = 'pool ' + (accel ? 'fast' : 'plain');\n",
    'node_modules/accel/package.json': pkg('accel', { optionalDependencies: { 'accel-linux': '1.0.0' } }),
    'node_modules/accel/index.js': "module.exports = require('accel-linux');\n",
    'node_modules/accel-linux/package.json': pkg('accel-linux'),
    'node_modules/accel-linux/index.js': "module.exports = require('./accel.node');\n",
    'node_modules/accel-linux/accel.node': Buffer.from([0x7f, 0x45, 0x4c, 0x46]),
  });
  const node = spawnSync(process.execPath, ['main.js'], { cwd: dir, encoding: 'utf8' });
  assert.equal(node.stdout.trim(), 'pool plain', node.stderr);
  const keyFile = join(tempDir(t), 'publisher.key');
  assert.equal(cli(['keygen', '--out', keyFile]).status, 0);
  const out = join(tempDir(t), 'out');
  const published = cli(['publish', dir, '--out', out, '--key', keyFile, '--json']);
  assert.equal(published.status, 0, published.stderr);
  assert.match(published.stderr, /skipped node_modules\/accel-linux: accel-linux@1\.0\.0: reached only through optional dependencies, and has a native addon accel\.node: left out/);
  const manifest = (JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { signed: Manifest }).signed;
  assert.deepEqual(Object.keys(manifest.packages!).sort(), ['accel@1.0.0', 'pool@1.0.0']);
  const host = await startHost(t, out);
  const key = /ed25519:[\w-]{43}/.exec(published.stdout)![0];
  const run = await runAsync(['run', host.url, '--key', key, '--cache', tempDir(t)], { cwd: tempDir(t) });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), 'pool plain');
  // --external keeps out an optional dependency of the program's own too.
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'optional-native-app', type: 'module', dependencies: { pool: '1.0.0' }, optionalDependencies: { accel: '1.0.0' } }));
  const out3 = join(tempDir(t), 'out3');
  const keptOut = cli(['publish', dir, '--out', out3, '--key', keyFile, '--external', 'accel', '--json']);
  assert.equal(keptOut.status, 0, keptOut.stderr);
  const keptManifest = (JSON.parse(readFileSync(join(out3, 'manifest.json'), 'utf8')) as { signed: Manifest }).signed;
  assert.deepEqual(keptManifest.externals, { accel: '1.0.0' });
  assert.deepEqual(Object.keys(keptManifest.packages!), ['pool@1.0.0']);
  assert.equal(keptManifest.layout!['node_modules/accel'], undefined);
  // The same package as a plain dependency of the program is needed, so it is refused.
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'optional-native-app', type: 'module', dependencies: { pool: '1.0.0', 'accel-linux': '1.0.0' } }));
  const refused = cli(['publish', dir, '--out', join(tempDir(t), 'out2'), '--key', keyFile]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /accel-linux@1\.0\.0 \(native addon accel\.node\).*ERR_LIVEMOD_NATIVE_PACKAGE/);
});

test('a workspace package of TypeScript sources runs on clients as from disk: laid out out of node_modules, where Node strips its types, and linked in', async (t) => {
  const root = tempDir(t);
  writeFiles(root, {
    'package.json': JSON.stringify({ name: 'ws-root', private: true, workspaces: ['packages/*'] }),
    'packages/tlib/package.json': JSON.stringify({ name: '@ws/tlib', version: '1.0.0', type: 'module', exports: './index.ts', dependencies: { 'dep-b': '2.0.0' } }),
    'packages/tlib/index.ts': "import b from 'dep-b';\nexport const tmsg: string = 'tlib ' + b.version;\n",
    'packages/jlib/package.json': JSON.stringify({ name: '@ws/jlib', version: '1.0.0', type: 'module', exports: './index.js' }),
    'packages/jlib/index.js': "export const jmsg = 'jlib';\n",
    'packages/app/package.json': JSON.stringify({ name: '@ws/app', version: '1.0.0', type: 'module', dependencies: { '@ws/tlib': '*', '@ws/jlib': '*' } }),
    'packages/app/main.ts': "import { tmsg } from '@ws/tlib';\nimport { jmsg } from '@ws/jlib';\nconsole.log(tmsg, jmsg);\n",
    'node_modules/dep-b/package.json': JSON.stringify({ name: 'dep-b', version: '2.0.0', main: 'index.js' }),
    'node_modules/dep-b/index.js': "exports.version = '2.0.0';\n",
  });
  mkdirSync(join(root, 'node_modules/@ws'), { recursive: true });
  symlinkSync('../../packages/tlib', join(root, 'node_modules/@ws/tlib'));
  symlinkSync('../../packages/jlib', join(root, 'node_modules/@ws/jlib'));
  const node = spawnSync(process.execPath, ['main.ts'], { cwd: join(root, 'packages/app'), encoding: 'utf8', timeout: 30_000 });
  assert.equal(node.stdout, 'tlib 2.0.0 jlib\n', node.stderr);
  const keyFile = join(tempDir(t), 'publisher.key');
  const made = cli(['keygen', '--out', keyFile]);
  assert.equal(made.status, 0);
  const key = /ed25519:[\w-]{43}/.exec(made.stdout + made.stderr)![0];
  const out = join(tempDir(t), 'out');
  const published = cli(['publish', join(root, 'packages/app'), '--out', out, '--key', keyFile, '--entry', 'main.ts']);
  assert.equal(published.status, 0, published.stderr);
  assert.doesNotMatch(published.stderr, /warning/);
  const manifest = (JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { signed: Manifest }).signed;
  assert.deepEqual(manifest.links, { 'node_modules/@ws/jlib': 'workspaces/@ws/jlib', 'node_modules/@ws/tlib': 'workspaces/@ws/tlib' });
  const host = await startHost(t, out);
  const run = await runAsync(['run', host.url, '--key', key, '--cache', tempDir(t)], { cwd: tempDir(t) });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, node.stdout);
});

test('a tampered package file is refused, and a second app sharing a package version fetches nothing for it', async (t) => {
  const first = tempDir(t);
  writeProgram(first);
  const second = tempDir(t);
  writeProgram(second, { name: 'second-app', main: `import b from 'dep-b';\nconsole.log(JSON.stringify({ b: b.version, second: true }));\n` });
  const publisher = generatePublisherKey();
  const out1 = tempDir(t);
  const out2 = tempDir(t);
  await publishSnapshot(new SnapshotBuilder(first, PROGRAM_BUILD).build().content, publisher, out1);
  const snapshot2 = (await publishSnapshot(new SnapshotBuilder(second, PROGRAM_BUILD).build().content, publisher, out2)).snapshot;
  const depB = snapshot2.manifest.packages!['dep-b@2.0.0']!.files['index.js']!.hash;
  const key = publisher.publicKeyString;

  const tampered = await startHost(t, out1, { ranges: 'refuse', tamper: (_path, bytes) => (bytes.includes("exports.version = '2.0.0'") ? Buffer.from(bytes.toString('latin1').replace("'2.0.0'", "'6.6.6'"), 'latin1') : bytes) });
  const refused = await runAsync(['run', tampered.url, '--key', key, '--cache', tempDir(t)], { cwd: tempDir(t) });
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /package dep-b@2\.0\.0: index\.js.*failed its hash check.*ERR_LIVEMOD_HASH_MISMATCH/);

  const cache = tempDir(t);
  const host1 = await startHost(t, out1, { ranges: 'refuse' });
  assert.equal((await runAsync(['run', host1.url, '--key', key, '--cache', cache], { cwd: tempDir(t) })).status, 0);
  const packagesBefore = readdirSync(join(cache, 'packages')).length;
  const host2 = await startHost(t, out2, { ranges: 'refuse' });
  const run2 = await runAsync(['run', host2.url, '--key', key, '--cache', cache], { cwd: tempDir(t) });
  assert.equal(run2.status, 0, run2.stderr);
  assert.deepEqual(lastJson(run2.stdout), { b: '2.0.0', second: true });
  const asked = host2.seen.map((entry) => entry.path).join('\n');
  assert.ok(!asked.includes(depB), 'the shared package version was not fetched again');
  assert.ok(host2.seen.some((entry) => entry.path.includes('blobs/')), 'the host answered blob requests');
  assert.equal(readdirSync(join(cache, 'packages')).length, packagesBefore, 'its folder was shared, not laid out again');
});

test('a swap re-points the program view: unchanged modules read the new files, and a rolled-back swap shows the old ones again', async (t) => {
  const dir = tempDir(t);
  const out = tempDir(t);
  writeFiles(dir, {
    'package.json': '{"name":"viewed"}',
    'main.js': `import { readFileSync } from 'node:fs';\nexport const read = () => readFileSync(new URL('./data/msg.txt', import.meta.url), 'utf8');\nexport const where = import.meta.dirname;\nimport.meta.hot.accept();\n`,
    'data/msg.txt': 'first',
  });
  const key = generatePublisherKey();
  const builder = new SnapshotBuilder(dir, PROGRAM_BUILD);
  let version = (await publishSnapshot(builder.build().content, key, out)).snapshot.manifest.version;
  const host = await startHost(t, out);
  const cache = tempDir(t);
  // Maps with the code: the failing version's stack would otherwise wait 10 s on a fetch from the host this very thread serves.
  const app = await connect(host.url, { publicKey: key.publicKeyString, cache, live: true, maps: 'start', notice: () => {} });
  t.after(() => app.close());
  const main = (await app.import('main.js')) as unknown as { read(): string; where: string };
  assert.equal(main.read(), 'first');
  assert.ok(main.where.startsWith(join(cache, 'run')), main.where);
  assert.equal(app.base, new URL(host.url).href, 'the API still names the origin');

  const publish = async (files: Record<string, string>): Promise<void> => {
    writeFiles(dir, files);
    builder.invalidate(Object.keys(files));
    version = (await publishSnapshot(builder.build().content, key, out, { previousVersion: version })).snapshot.manifest.version;
  };
  await publish({ 'data/msg.txt': 'second' });
  const unchanged = await app.update();
  assert.equal(unchanged?.status, 'unchanged');
  assert.equal(main.read(), 'second', 'the file changed though no module did');

  await publish({ 'data/msg.txt': 'third', 'main.js': `throw new Error('broken on purpose');\nimport.meta.hot.accept();\n` });
  const failed = await app.update();
  assert.equal(failed?.status, 'failed');
  assert.equal(main.read(), 'second', 'the rollback shows the running version its own files again');
});

test('a version that changes the program\'s npm packages is not swapped into a running process: it fails with why (the old code runs on), or asks for the restart', async (t) => {
  const dir = tempDir(t);
  const out = tempDir(t);
  const pkg = (name: string, version: string): Record<string, string> => ({
    [`node_modules/${name}/package.json`]: JSON.stringify({ name, version, main: 'index.js' }),
    [`node_modules/${name}/index.js`]: `module.exports = '${name}@${version}';\n`,
  });
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'swapped-packages', type: 'module', dependencies: { 'dep-x': '1.0.0' } }),
    'main.js': "import x from 'dep-x';\nexport const value = x;\nimport.meta.hot.accept();\n",
    ...pkg('dep-x', '1.0.0'),
  });
  const key = generatePublisherKey();
  const builder = new SnapshotBuilder(dir, PROGRAM_BUILD);
  let version = (await publishSnapshot(builder.build().content, key, out)).snapshot.manifest.version;
  const host = await startHost(t, out);
  const publish = async (files: Record<string, string>): Promise<void> => {
    writeFiles(dir, files);
    builder.invalidate(Object.keys(files));
    version = (await publishSnapshot(builder.build().content, key, out, { previousVersion: version })).snapshot.manifest.version;
  };
  const app = await connect(host.url, { publicKey: key.publicKeyString, cache: tempDir(t), live: true, maps: 'start', notice: () => {} });
  t.after(() => app.close());
  const main = (await app.import('main.js')) as unknown as { value: string };
  assert.equal(main.value, 'dep-x@1.0.0');

  // A module change with the same packages swaps as ever.
  await publish({ 'main.js': "import x from 'dep-x';\nexport const value = 'v2 ' + x;\nimport.meta.hot.accept();\n" });
  const same = await app.update();
  assert.equal(same?.status, 'applied', same?.error);
  assert.equal(main.value, 'v2 dep-x@1.0.0');

  // A new package and an upgraded one: refused, and said why; the running code is untouched.
  await publish({
    'package.json': JSON.stringify({ name: 'swapped-packages', type: 'module', dependencies: { 'dep-x': '2.0.0', 'dep-y': '1.0.0' } }),
    'main.js': "import x from 'dep-x';\nimport y from 'dep-y';\nexport const value = x + ' ' + y;\nimport.meta.hot.accept();\n",
    ...pkg('dep-x', '2.0.0'),
    ...pkg('dep-y', '1.0.0'),
  });
  const refused = await app.update();
  assert.equal(refused?.status, 'failed');
  assert.match(refused!.error!, /changes the program's npm packages \(dep-x@1\.0\.0 → dep-x@2\.0\.0, \+dep-y@1\.0\.0\), which a running process cannot take in place; restart it .* \[ERR_LIVEMOD_SWAP_PACKAGES\]$/);
  assert.equal(main.value, 'v2 dep-x@1.0.0');

  // A process started on it runs it, and with restartOnUnaccepted a running one is told to restart.
  const fresh = await connect(host.url, { publicKey: key.publicKeyString, cache: tempDir(t), live: true, maps: 'start', notice: () => {} });
  t.after(() => fresh.close());
  assert.equal(((await fresh.import('main.js')) as unknown as { value: string }).value, 'dep-x@2.0.0 dep-y@1.0.0');
  const restarting = await connect(host.url, { publicKey: key.publicKeyString, cache: tempDir(t), live: true, maps: 'start', restartOnUnaccepted: true, notice: () => {} });
  t.after(() => restarting.close());
  await restarting.import('main.js');
  await publish({ ...pkg('dep-y', '1.0.1') });
  assert.equal((await restarting.update())?.status, 'unaccepted');
});

const WORKERS = {
  'package.json': JSON.stringify({ name: 'workers-app', type: 'module' }),
  'main.ts': `import { Worker } from 'node:worker_threads';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
const worker = new Worker(new URL('./worker.ts', import.meta.url), { workerData: 20 });
const [fromWorker] = await once(worker, 'message');
const child = fork(fileURLToPath(new URL('./job.ts', import.meta.url)), ['x', '--y'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const [fromChild] = await once(child, 'message');
await once(child, 'exit');
console.log(JSON.stringify({ fromWorker, fromChild }));
`,
  // Extensionless TypeScript imports: Node alone cannot run these files, livemod can.
  'worker.ts': `import { parentPort, workerData } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { double } from './lib/double';
parentPort!.postMessage({ value: double(workerData as number), text: readFileSync(new URL('./data/hello.txt', import.meta.url), 'utf8'), main: import.meta.main });
`,
  'job.ts': `import { double } from './lib/double';
process.send!({ value: double(21), args: process.argv.slice(2), argv1: process.argv[1] === import.meta.filename, main: import.meta.main, taskGone: process.env.LIVEMOD_CHILD === undefined });
`,
  'lib/double.ts': `export const double = (n: number): number => n * 2;\n`,
  'data/hello.txt': 'hi from a file',
};
const WORKERS_EXPECTED = { fromWorker: { value: 40, text: 'hi from a file', main: true }, fromChild: { value: 42, args: ['x', '--y'], argv1: true, main: true, taskGone: true } };

test('a worker and a forked child of a module of the tree run it as live code: local folder, then from a server', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, WORKERS);
  const local = await runAsync(['run', join(dir, 'main.ts'), '--cache', tempDir(t)], { cwd: tempDir(t), env: { LIVEMOD_CACHE: tempDir(t) } });
  assert.equal(local.status, 0, local.stderr);
  assert.deepEqual(lastJson(local.stdout), WORKERS_EXPECTED);
  const { url, key } = await served(t, dir);
  const remote = await runAsync(['run', url, '--key', key, '--cache', tempDir(t)], { cwd: tempDir(t) });
  assert.equal(remote.status, 0, remote.stderr);
  assert.deepEqual(lastJson(remote.stdout), WORKERS_EXPECTED);
});

test('workers and forks reached through process.getBuiltinModule and require run live too (the patch waits for first use)', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    ...WORKERS,
    // No import of either module: one is taken from process.getBuiltinModule, the other required.
    'main.ts': `import { once } from 'node:events';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
const { Worker } = process.getBuiltinModule('node:worker_threads');
const worker = new Worker(new URL('./worker.ts', import.meta.url), { workerData: 20 });
const [fromWorker] = await once(worker, 'message');
const { fork } = createRequire(import.meta.url)('child_process');
const child = fork(fileURLToPath(new URL('./job.ts', import.meta.url)), ['x', '--y'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const [fromChild] = await once(child, 'message');
await once(child, 'exit');
console.log(JSON.stringify({ fromWorker, fromChild }));
`,
  });
  const local = await runAsync(['run', join(dir, 'main.ts'), '--cache', tempDir(t)], { cwd: tempDir(t), env: { LIVEMOD_CACHE: tempDir(t) } });
  assert.equal(local.status, 0, local.stderr);
  assert.deepEqual(lastJson(local.stdout), WORKERS_EXPECTED);
  // Required only, with nothing asked for before: the resolve hook is what patches.
  writeFiles(dir, {
    'main.ts': `import { once } from 'node:events';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
const { fork } = createRequire(import.meta.url)('child_process');
const child = fork(fileURLToPath(new URL('./job.ts', import.meta.url)), ['x', '--y'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const [fromChild] = await once(child, 'message');
await once(child, 'exit');
console.log(JSON.stringify({ fromChild }));
`,
  });
  const required = await runAsync(['run', join(dir, 'main.ts'), '--cache', tempDir(t)], { cwd: tempDir(t), env: { LIVEMOD_CACHE: tempDir(t) } });
  assert.equal(required.status, 0, required.stderr);
  assert.deepEqual(lastJson(required.stdout), { fromChild: WORKERS_EXPECTED.fromChild });
});

test('a worker of a URL run maps its stacks: its start fetches the maps of its graph the parent never fetched', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'worker-maps', type: 'module' }),
    'main.ts': "import { Worker } from 'node:worker_threads';\nimport { once } from 'node:events';\nimport { trace } from './lib/trace';\nvoid trace;\nconst worker = new Worker(new URL('./worker.ts', import.meta.url));\nconst [stack] = await once(worker, 'message');\nconsole.log(JSON.stringify({ stack }));\n",
    'worker.ts': "import { parentPort } from 'node:worker_threads';\nimport { trace } from './lib/trace';\nparentPort!.postMessage(trace('from the worker'));\n",
    // The parent fetched this module's code (it imports it too), not its map. Types the transform
    // removes: only the map gives the original column.
    'lib/trace.ts': "interface Note { readonly text: string }\nexport function trace(text: string): string {\n  const note: Note = { text };\n  return new Error(note.text).stack!;\n}\n",
  });
  const { url, key } = await served(t, dir);
  const run = await runAsync(['run', url, '--key', key, '--cache', tempDir(t)], { cwd: tempDir(t) });
  assert.equal(run.status, 0, run.stderr);
  const { stack } = lastJson(run.stdout) as { stack: string };
  assert.match(stack, /Error: from the worker/);
  assert.match(stack, /lib\/trace\.ts:4:10/, stack);
});

test('first contact: a link error is one line (the stack only with LIVEMOD_DEBUG=1); a program throw shows its source line and caret and no livemod frames', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'errors-app', type: 'module' }),
    'main.ts': `if (process.argv.includes('--missing')) await import('./lib/missing');\nelse (await import('./lib/fail')).fail();\n`,
    'lib/fail.ts': "type Reason = string;\nexport function fail(): never {\n  const reason: Reason = 'on purpose';\n  throw new Error(`failed ${reason}`);\n}\n",
    'lib/missing.ts': `import { nope } from './fail';\nconsole.log(nope);\n`,
  });
  const { url, key } = await served(t, dir);
  const cache = tempDir(t);
  const thrown = await runAsync(['run', url, '--key', key, '--cache', cache], { cwd: tempDir(t) });
  assert.equal(thrown.status, 1);
  assert.ok(thrown.stderr.startsWith(`${url}/lib/fail.ts:4\n  throw new Error(\`failed \${reason}\`);\n        ^\n\nError: failed on purpose\n`), thrown.stderr);
  assert.ok(thrown.stderr.includes(`at Module.fail (${url}/lib/fail.ts:4:9)`), thrown.stderr);
  assert.doesNotMatch(thrown.stderr, /\/(?:src|dist)\/(?:runtime|client|cli)\//, 'no frames of livemod itself');

  const link = await runAsync(['run', url, '--key', key, '--cache', cache, '--', '--missing'], { cwd: tempDir(t) });
  assert.equal(link.status, 1);
  assert.equal(link.stderr.trim().split('\n').length, 1, link.stderr);
  assert.match(link.stderr, /^\[livemod run\] SyntaxError: The requested module '\.\/fail' does not provide an export named 'nope'/);
  // Where: the import's line and column, under the origin's URL (as stack frames name it), not the store's copy.
  assert.ok(link.stderr.includes(`(imported by ${url}/lib/missing.ts:1:22)`), link.stderr);
  const debug = await runAsync(['run', url, '--key', key, '--cache', cache, '--', '--missing'], { cwd: tempDir(t), env: { LIVEMOD_DEBUG: '1' } });
  assert.equal(debug.status, 1);
  assert.match(debug.stderr, /SyntaxError: The requested module[^\n]*\n\s+at /);
});

test('an uncaught error thrown after the module ran (a timer) is headed by its own line and caret, as Node heads it from disk', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'late-throw', type: 'module' }),
    'main.js': "const before = 1;\nsetTimeout(() => { throw new Error('late ' + before); }, 1);\n",
  });
  const node = spawnSync(process.execPath, ['main.js'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  const live = cli(['run', './main.js'], { cwd: dir, env: { LIVEMOD_CACHE: join(dir, '.cache') } });
  assert.equal(node.status, 1);
  assert.equal(live.status, 1);
  const head = (stderr: string): string => stderr.split('\n').slice(0, 5).join('\n');
  assert.equal(head(live.stderr), head(node.stderr));
  assert.ok(live.stderr.startsWith(`${pathToFileURL(join(dir, 'main.js')).href}:2\n`), live.stderr);
});

test('a binding read in its TDZ across a cycle is reported where it is read, as Node reports it, with no frame of the registry\'s export getters', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'tdz-cycle', type: 'module' }),
    'main.js': "import { b } from './b.js';\nexport const a = 1;\nconsole.log(b);\n",
    'b.js': "import { a } from './main.js';\nexport const b = 2;\nconsole.log(a);\n",
  });
  const node = spawnSync(process.execPath, ['main.js'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  const live = cli(['run', './main.js'], { cwd: dir, env: { LIVEMOD_CACHE: join(dir, '.cache') } });
  assert.equal(live.status, 1);
  const head = (stderr: string): string => stderr.split('\n').slice(0, 6).join('\n');
  assert.equal(head(live.stderr), head(node.stderr));
  assert.doesNotMatch(live.stderr, /at \S+ \(file:[^)]*\.js\)$/m, 'a frame without a position');
});

test('CommonJS in an ES module fails as in Node and says what to do; a .cjs file imported, run or required loads as Node loads it, remote too', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'cjs-in-esm', type: 'module' }),
    'main.js': "import { createRequire } from 'node:module';\nif (process.argv.includes('--require')) require('./legacy.cjs');\nconsole.log(createRequire(import.meta.url)('./legacy.cjs').hour);\n",
    'legacy.cjs': "exports.hour = 60 * 60 * 1000;\nif (require.main === module) console.log('main', exports.hour);\n",
  });
  const local = cli(['run', './main.js', '--', '--require'], { cwd: dir, env: { LIVEMOD_CACHE: join(dir, '.cache') } });
  assert.equal(local.status, 1);
  assert.match(local.stderr, /^ReferenceError: require is not defined in ES module scope, you can use import instead; this file is an ES module \(it has import or export syntax, or its package\.json says "type": "module"\), as Node takes it: write import, or load a CommonJS file with createRequire\(import\.meta\.url\)$/m);
  // After a top-level await the module rejects rather than throws: explained all the same.
  writeFileSync(join(dir, 'late.js'), "await null;\nconst legacy = require('./legacy.cjs');\n");
  const late = cli(['run', './late.js'], { cwd: dir, env: { LIVEMOD_CACHE: join(dir, '.cache') } });
  assert.equal(late.status, 1);
  assert.match(late.stderr, /^ReferenceError: require is not defined in ES module scope, you can use import instead; this file is an ES module/m);
  // A .cjs file imported (its names as Node's lexer finds them), or run as the main module, does what it does under Node.
  writeFileSync(join(dir, 'imports.js'), "import { hour } from './legacy.cjs';\nimport legacy from './legacy.cjs';\nconsole.log(hour, legacy.hour === hour);\n");
  for (const start of ['imports.js', 'legacy.cjs']) {
    const node = spawnSync(process.execPath, [start], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    const live = cli(['run', `./${start}`], { cwd: dir, env: { LIVEMOD_CACHE: join(dir, '.cache') } });
    assert.equal(live.status, 0, live.stderr);
    assert.equal(live.stdout, node.stdout);
  }
  assert.equal(cli(['run', './imports.js'], { cwd: dir, env: { LIVEMOD_CACHE: join(dir, '.cache') } }).stdout, '3600000 true\n');
  // A name the lexer does not find is a link error, as in Node.
  writeFileSync(join(dir, 'missing.js'), "import { minute } from './legacy.cjs';\nconsole.log(minute);\n");
  const missing = cli(['run', './missing.js'], { cwd: dir, env: { LIVEMOD_CACHE: join(dir, '.cache') } });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /does not provide an export named 'minute'/);
  const { url, key } = await served(t, dir);
  for (const [start, expected] of [['main.js', '3600000\n'], ['imports.js', '3600000 true\n'], ['legacy.cjs', 'main 3600000\n']] as const) {
    const remote = await runAsync(['run', `${url}/${start}`, '--key', key, '--cache', tempDir(t)], { cwd: tempDir(t) });
    assert.equal(remote.status, 0, remote.stderr);
    assert.equal(remote.stdout, expected);
  }
});

test('cache prune removes versions and packages no manifest or running program needs, and keeps what the current one links', async (t) => {
  const dir = tempDir(t);
  writeProgram(dir);
  const out = tempDir(t);
  const publisher = generatePublisherKey();
  const builder = new SnapshotBuilder(dir, PROGRAM_BUILD);
  const first = (await publishSnapshot(builder.build().content, publisher, out)).snapshot.manifest.version;
  const host = await startHost(t, out);
  const cache = tempDir(t);
  const key = publisher.publicKeyString;
  assert.equal((await runAsync(['run', host.url, '--key', key, '--cache', cache], { cwd: tempDir(t) })).status, 0);
  writeFiles(dir, { 'data/hello.txt': 'hello, file\n' + 'again\n', 'package.json': JSON.stringify({ name: 'program-app', type: 'module', dependencies: { 'cjs-a': '^1.0.0', 'dep-b': '^2.0.0', 'esm-c': '^1.0.0' } }), 'main.ts': `import b from 'dep-b';\nconsole.log(JSON.stringify({ b: b.version }));\n` });
  builder.invalidate(['data/hello.txt', 'package.json', 'main.ts']);
  await publishSnapshot(builder.build().content, publisher, out, { previousVersion: first });
  const second = await runAsync(['run', host.url, '--key', key, '--cache', cache], { cwd: tempDir(t) });
  assert.equal(second.status, 0, second.stderr);
  assert.equal(readdirSync(join(cache, 'trees')).length, 2);
  const packagesBefore = readdirSync(join(cache, 'packages')).length;
  const report = openStore({ dir: cache }).prune({ graceMs: 0 });
  assert.equal(readdirSync(join(cache, 'trees')).length, 1, 'the old version folder went');
  assert.ok(report.folders.removed >= 2, JSON.stringify(report.folders));
  assert.ok(readdirSync(join(cache, 'packages')).length < packagesBefore, 'commander is no longer linked: it went');
  const offline = await runAsync(['run', host.url, '--key', key, '--cache', cache, '--offline'], { cwd: tempDir(t) });
  assert.equal(offline.status, 0, offline.stderr);
  assert.deepEqual(lastJson(offline.stdout), { b: '2.0.0' });
});

test('two processes laying out the same version at once both run it; a damaged stored blob is refetched before it is laid out', async (t) => {
  const dir = tempDir(t);
  writeProgram(dir);
  const { url, key, manifest } = await served(t, dir);
  const cache = tempDir(t);
  const [a, b] = await Promise.all([runAsync(['run', url, '--key', key, '--cache', cache], { cwd: tempDir(t) }), runAsync(['run', url, '--key', key, '--cache', cache], { cwd: tempDir(t) })]);
  for (const run of [a, b]) {
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(lastJson(run.stdout), EXPECTED);
  }
  assert.equal(readdirSync(join(cache, 'trees')).length, 1);
  const hash = manifest.packages!['dep-b@2.0.0']!.files['index.js']!.hash;
  const blob = join(cache, 'blobs', hash.slice(0, 2), hash);
  rmSync(join(cache, 'trees'), { recursive: true });
  rmSync(join(cache, 'packages'), { recursive: true });
  rmSync(blob);
  writeFileSync(blob, "exports.version = '6.6.6';\n");
  const again = await runAsync(['run', url, '--key', key, '--cache', cache], { cwd: tempDir(t) });
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(lastJson(again.stdout), EXPECTED);
  assert.match(again.stderr, /refetching/);
});

test('a layout counts a blob this sync wrote and another process removed since as missing, and lays out the rest', (t) => {
  const dir = tempDir(t);
  writeProgram(dir);
  const content = new SnapshotBuilder(dir, PROGRAM_BUILD).build().content;
  const { manifest } = signSnapshot(content, generatePublisherKey());
  const store = openStore({ dir: tempDir(t) });
  // Program files are blob files (packs hold module code): as a sync writes them.
  for (const [hash, bytes] of content.blobs) store.writeBlob(hash, bytes, { absent: true });
  const fresh = new Set(content.blobs.keys());
  const gone = manifest.packages!['dep-b@2.0.0']!.files['index.js']!.hash;
  // Gone between this sync's write and its layout (a concurrent prune): linked from nowhere.
  rmSync(join(store.dir, 'blobs', gone.slice(0, 2), gone));
  assert.throws(
    () => store.layoutProgram(manifest, fresh),
    (error: Error & { code?: string; details?: { missing?: string[] } }) => error.code === 'ERR_LIVEMOD_STORE_INCOMPLETE' && error.details?.missing?.length === 1 && error.details.missing[0] === gone,
  );
  store.writeBlob(gone, content.blobs.get(gone)!, { absent: true });
  const tree = store.layoutProgram(manifest, fresh);
  assert.ok(existsSync(join(tree, 'node_modules')), 'laid out once the blob is back');
});

test('the store records a version\'s folder ids with its manifest; a start of the stored version lays out by them, and a malformed record is repaired', async (t) => {
  const dir = tempDir(t);
  writeProgram(dir);
  const { url, key } = await served(t, dir);
  const cache = tempDir(t);
  assert.equal((await runAsync(['run', url, '--key', key, '--cache', cache], { cwd: tempDir(t) })).status, 0);
  const [origin] = readdirSync(join(cache, 'origins'));
  const statePath = join(cache, 'origins', origin!, 'state.json');
  const state = JSON.parse(readFileSync(statePath, 'utf8')) as { layout?: { tree: string; modules: string | null } };
  assert.deepEqual(state.layout, { tree: readdirSync(join(cache, 'trees'))[0], modules: readdirSync(join(cache, 'packages'))[0] });
  // The recorded ids are what a warm start (304) and an offline one use: a tree moved to the id
  // the record names is run from there, and none is laid out under the id the manifest hashes to.
  const moved = 'f'.repeat(32);
  renameSync(join(cache, 'trees', state.layout!.tree), join(cache, 'trees', moved));
  writeFileSync(statePath, JSON.stringify({ ...state, layout: { ...state.layout, tree: moved } }));
  for (const flags of [[], ['--offline']]) {
    const run = await runAsync(['run', url, '--key', key, '--cache', cache, ...flags], { cwd: tempDir(t) });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(lastJson(run.stdout), EXPECTED);
    assert.deepEqual(readdirSync(join(cache, 'trees')), [moved]);
  }
  // A record whose ids are not ids is no record of ours: repaired from the manifest, ids recomputed.
  writeFileSync(statePath, JSON.stringify({ ...state, layout: { tree: '../../elsewhere', modules: null } }));
  const repaired = await runAsync(['run', url, '--key', key, '--cache', cache], { cwd: tempDir(t) });
  assert.equal(repaired.status, 0, repaired.stderr);
  assert.deepEqual(lastJson(repaired.stdout), EXPECTED);
  assert.deepEqual((JSON.parse(readFileSync(statePath, 'utf8')) as typeof state).layout, state.layout);
  assert.deepEqual(readdirSync(join(cache, 'trees')).sort(), [state.layout!.tree, moved].sort());
});

test('cache verify: a laid-out file changed in place (and so its blob) takes its folders with it; the next run lays them out again', async (t) => {
  const dir = tempDir(t);
  writeProgram(dir);
  const { url, key } = await served(t, dir);
  const cache = tempDir(t);
  assert.equal((await runAsync(['run', url, '--key', key, '--cache', cache], { cwd: tempDir(t) })).status, 0);
  const [tree] = readdirSync(join(cache, 'trees'));
  writeFileSync(join(cache, 'trees', tree!, 'data', 'hello.txt'), 'changed in place\n');
  const report = openStore({ dir: cache }).verify();
  assert.ok(report.corrupt.includes(`trees/${tree}`), JSON.stringify(report.corrupt));
  assert.ok(!existsSync(join(cache, 'trees', tree!)));
  const again = await runAsync(['run', url, '--key', key, '--cache', cache], { cwd: tempDir(t) });
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(lastJson(again.stdout), EXPECTED);
});

test('a rebuild reports a changed file that is not a module, so serve --watch publishes it', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'package.json': '{"name":"assets"}', 'main.js': 'export const x = 1;', 'views/page.html': '<p>one</p>' });
  const builder = new SnapshotBuilder(dir, PROGRAM_BUILD);
  const first = builder.build();
  assert.ok(first.content.files!['views/page.html']);
  writeFiles(dir, { 'views/page.html': '<p>two</p>' });
  builder.invalidate(['views/page.html']);
  const second = builder.build();
  assert.deepEqual(second.changed, ['views/page.html']);
  assert.notEqual(second.content.files!['views/page.html']!.hash, first.content.files!['views/page.html']!.hash);
  assert.deepEqual(builder.build().changed, [], 'nothing changed: no new version');
});

test('packages run as installed: an undeclared dependency npm hoisted, a shipped executable, a pnpm layout of links, npm\'s .bin commands — as under Node from disk', async (t) => {
  const dir = tempDir(t);
  const pkg = (name: string, version: string, extra: Record<string, unknown> = {}): string => JSON.stringify({ name, version, main: 'index.js', ...extra });
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'installed-app', type: 'module', dependencies: { 'uses-hoisted': '1.0.0', helper: '1.0.0', 'has-tool': '1.0.0', pn: '1.0.0' } }),
    'main.js': `import { execFileSync } from 'node:child_process';
import tool from 'has-tool';
import pn from 'pn';
let hoisted;
try { hoisted = (await import('uses-hoisted')).default; } catch (error) { hoisted = error.code; }
let ran;
try { ran = execFileSync(tool, { encoding: 'utf8' }).trim(); } catch (error) { ran = error.code; }
let own;
try { own = execFileSync(import.meta.dirname + '/bin/own.sh', { encoding: 'utf8' }).trim(); } catch (error) { own = error.code; }
let bin;
try { bin = execFileSync(import.meta.dirname + '/node_modules/.bin/tool', { encoding: 'utf8' }).trim(); } catch (error) { bin = error.code; }
console.log(JSON.stringify({ hoisted, ran, pn, own, bin }));
`,
    'bin/own.sh': '#!/bin/sh\necho own tool ran\n',
    // Requires helper without declaring it: npm hoisted helper beside it, so Node finds it.
    'node_modules/uses-hoisted/package.json': pkg('uses-hoisted', '1.0.0'),
    'node_modules/uses-hoisted/index.js': "module.exports = 'found ' + require('helper');\n",
    'node_modules/helper/package.json': pkg('helper', '1.0.0'),
    'node_modules/helper/index.js': "module.exports = 'helper';\n",
    'node_modules/has-tool/package.json': pkg('has-tool', '1.0.0'),
    'node_modules/has-tool/bin/tool.sh': '#!/bin/sh\necho tool ran\n',
    'node_modules/has-tool/index.js': "module.exports = require('path').join(__dirname, 'bin', 'tool.sh');\n",
    'node_modules/.pnpm/pn@1.0.0/node_modules/pn/package.json': pkg('pn', '1.0.0', { dependencies: { pdep: '2.0.0' } }),
    'node_modules/.pnpm/pn@1.0.0/node_modules/pn/index.js': "module.exports = 'pn with pdep ' + require('pdep');\n",
    'node_modules/.pnpm/pdep@2.0.0/node_modules/pdep/package.json': pkg('pdep', '2.0.0'),
    'node_modules/.pnpm/pdep@2.0.0/node_modules/pdep/index.js': "module.exports = '2.0.0';\n",
  });
  chmodSync(join(dir, 'node_modules/has-tool/bin/tool.sh'), 0o755);
  chmodSync(join(dir, 'bin/own.sh'), 0o755);
  symlinkSync('.pnpm/pn@1.0.0/node_modules/pn', join(dir, 'node_modules/pn'));
  symlinkSync('../../pdep@2.0.0/node_modules/pdep', join(dir, 'node_modules/.pnpm/pn@1.0.0/node_modules/pdep'));
  // The commands npm links: one to a package's file travels; one to a file out of every package does not.
  mkdirSync(join(dir, 'node_modules/.bin'));
  symlinkSync('../has-tool/bin/tool.sh', join(dir, 'node_modules/.bin/tool'));
  symlinkSync('../../bin/own.sh', join(dir, 'node_modules/.bin/stray'));
  const expected = { hoisted: 'found helper', ran: 'tool ran', pn: 'pn with pdep 2.0.0', own: 'own tool ran', bin: 'tool ran' };
  const node = spawnSync(process.execPath, ['main.js'], { cwd: dir, encoding: 'utf8' });
  assert.deepEqual(lastJson(node.stdout), expected, node.stderr);
  const { url, key, manifest } = await served(t, dir);
  assert.equal(manifest.links!['node_modules/pn'], 'node_modules/.pnpm/pn@1.0.0/node_modules/pn');
  assert.equal(manifest.links!['node_modules/.bin/tool'], 'node_modules/has-tool/bin/tool.sh');
  assert.equal(manifest.links!['node_modules/.bin/stray'], undefined);
  assert.equal(manifest.packages!['has-tool@1.0.0']!.files['bin/tool.sh']!.executable, true);
  const run = await runAsync(['run', url, '--key', key, '--cache', tempDir(t)], { cwd: tempDir(t) });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(lastJson(run.stdout), expected);
});

test('a package holding a link back to itself travels once, not until the path is too long', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'looped-app', type: 'module', dependencies: { looped: '1.0.0' } }),
    'main.js': `import looped from 'looped';\nconsole.log(looped);\n`,
    'node_modules/looped/package.json': JSON.stringify({ name: 'looped', version: '1.0.0', main: 'index.js' }),
    'node_modules/looped/index.js': "module.exports = 'looped';\n",
  });
  symlinkSync('..', join(dir, 'node_modules/looped/self'));
  const { content } = new SnapshotBuilder(dir, PROGRAM_BUILD).build();
  assert.deepEqual(Object.keys(content.packages!['looped@1.0.0']!.files).sort(), ['index.js', 'package.json']);
});

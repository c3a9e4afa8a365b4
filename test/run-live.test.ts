// The live triggers as users start them: --poll on a static host, `livemod run ./dir --watch`,
// and the two answers to a change nothing accepts (re-run the entry in place, or restart).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { SnapshotBuilder, publishSnapshot } from '../src/build/index.ts';
import { connect } from '../src/client/index.ts';
import { generatePublisherKey, signSnapshot } from '../src/snapshot/index.ts';
import { lineProcess } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { startHost } from './helpers/static-host.ts';
import { startServer, within } from './helpers/server-fixtures.ts';

const live = (t: TestContext, args: string[]) => lineProcess(t, args);

test('--poll follows a static host, which has no channel', async (t) => {
  const dir = tempDir(t);
  const out = tempDir(t);
  writeFiles(dir, { 'package.json': '{"name":"polled"}', 'main.js': 'export const value = 1; import.meta.hot.accept();' });
  const key = generatePublisherKey();
  const builder = new SnapshotBuilder(dir);
  const first = await publishSnapshot(builder.build().content, key, out);
  const host = await startHost(t, out);
  // Maps with the code: the failing version's stack would otherwise wait on a fetch from the host this very thread serves.
  const app = await connect(host.url, { publicKey: key.publicKeyString, cache: tempDir(t), live: true, pollMs: 100, maps: 'start', notice: () => {} });
  t.after(() => app.close());
  const main = await app.import('main.js');
  writeFiles(dir, { 'main.js': 'export const value = 2; import.meta.hot.accept();' });
  builder.invalidate(['main.js']);
  const swapped = within(new Promise<{ status: string }>((resolve) => app.on('swap', resolve)), 10_000, 'a poll to find the new version');
  const second = await publishSnapshot(builder.build().content, key, out, { previousVersion: first.snapshot.manifest.version });
  assert.equal((await swapped).status, 'applied');
  assert.equal(main.value, 2);

  // A version whose code fails runs once: later polls pass over it, the next version is taken, and app.update() asks again.
  const records: string[] = [];
  app.on('swap', (record: { status: string }) => records.push(record.status));
  writeFiles(dir, { 'main.js': 'globalThis.pollBadRuns = (globalThis.pollBadRuns ?? 0) + 1;\nthrow new Error("bad on purpose");\nimport.meta.hot.accept();' });
  builder.invalidate(['main.js']);
  const failed = within(new Promise<{ status: string }>((resolve) => app.on('swap', resolve)), 10_000, 'a poll to find the failing version');
  const third = await publishSnapshot(builder.build().content, key, out, { previousVersion: second.snapshot.manifest.version });
  assert.equal((await failed).status, 'failed');
  await new Promise((resolve) => setTimeout(resolve, 600));
  assert.equal((globalThis as { pollBadRuns?: number }).pollBadRuns, 1, 'six polls later, the failing version ran once');
  assert.deepEqual(records, ['failed']);
  assert.equal((await app.update())?.status, 'failed', 'asked for, it is tried again');
  assert.equal((globalThis as { pollBadRuns?: number }).pollBadRuns, 2);
  writeFiles(dir, { 'main.js': 'export const value = 4; import.meta.hot.accept();' });
  builder.invalidate(['main.js']);
  const fixed = within(new Promise<{ status: string }>((resolve) => app.on('swap', (record: { status: string }) => record.status === 'applied' && resolve(record))), 10_000, 'the next version');
  await publishSnapshot(builder.build().content, key, out, { previousVersion: third.snapshot.manifest.version });
  assert.equal((await fixed).status, 'applied');
  assert.equal(main.value, 4);
  assert.equal((globalThis as { pollBadRuns?: number }).pollBadRuns, 2, 'the polls after the retry passed over it again');
});

test('livemod run ./dir --watch swaps saves into the running process', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'lib.js': 'export const word = "first"; import.meta.hot.accept();',
    'main.js': `import { word } from './lib.js';
      const timer = setInterval(() => console.log(process.pid + ' ' + word), 50);
      import.meta.hot.dispose(() => clearInterval(timer));`,
  });
  const run = live(t, ['run', join(dir, 'main.js'), '--watch', '--log-swaps']);
  const pid = (await run.line(/ first$/)).split(' ')[0];
  writeFiles(dir, { 'lib.js': 'export const word = "second"; import.meta.hot.accept();' });
  assert.equal((await run.line(/ second$/)).split(' ')[0], pid, 'the same process runs the new code');
  assert.match(run.stderr(), /\[livemod swap\] version \d+ applied in [\d.]+ ms: lib\.js/);
});

for (const restart of [false, true]) {
  test(restart ? 'with --restart-on-unaccepted, a change nothing accepts restarts the program in a fresh process' : 'a change nothing accepts re-runs the entry in place: same process, untouched modules keep their state', async (t) => {
    const running = await startServer(t);
    const dir = tempDir(t);
    const main = (word: string): string => `import { started } from './clock.js';
      console.log(process.pid + ' ${word} ' + started);
      const timer = setInterval(() => {}, 1000);
      import.meta.hot.dispose(() => clearInterval(timer));`;
    writeFiles(dir, { 'package.json': '{"name":"unaccepted"}', 'clock.js': 'export const started = Date.now();', 'main.js': main('one') });
    const builder = new SnapshotBuilder(dir);
    let current = signSnapshot(builder.build().content, running.key);
    running.server.publish(current);
    const run = live(t, ['run', `${running.url}/main.js`, '--key', running.key.publicKeyString, '--cache', tempDir(t), ...(restart ? ['--restart-on-unaccepted'] : [])]);
    const [pid, , started] = (await run.line(/ one /)).split(' ');
    writeFiles(dir, { 'main.js': main('two') });
    builder.invalidate(['main.js']);
    current = signSnapshot(builder.build().content, running.key, { previousVersion: current.manifest.version });
    running.server.publish(current);
    const [pid2, , started2] = (await run.line(/ two /)).split(' ');
    if (restart) {
      assert.notEqual(pid2, pid, 'a fresh process');
      assert.match(run.stderr(), /a new version needs a restart \(a change no module accepts, or changed npm packages\): restarting on it/);
    } else {
      assert.equal(pid2, pid, 'the same process');
      assert.equal(started2, started, 'clock.js was not re-run');
    }
    run.child.kill('SIGTERM');
    await within(new Promise((resolve) => run.child.once('exit', resolve)), 10_000, 'the run to stop on SIGTERM');
  });
}

test('livemod run --watch --quiet still says when an edit does not build: the old code runs on', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': '{"name":"quiet-watch","type":"module"}',
    'main.js': "import { word } from './lib.js';\nsetInterval(() => console.log(word), 50);\n",
    'lib.js': "export const word = 'first';\nimport.meta.hot.accept();\n",
  });
  const run = live(t, ['run', join(dir, 'main.js'), '--watch', '--quiet']);
  await run.line(/^first$/);
  writeFiles(dir, { 'lib.js': "export const word = ;\n" });
  const deadline = Date.now() + 15_000;
  while (!/^\[livemod watch\] lib\.js:1:\d+: .*still running version \d+$/m.test(run.stderr()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.match(run.stderr(), /^\[livemod watch\] lib\.js:1:\d+: Unexpected token; still serving the last version until it parses again — still running version \d+$/m);
  await run.line(/^first$/);
  await run.stop();
});

// `livemod run` as users run it: real child processes against a real server over loopback.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { request, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { generatePublisherKey, signSnapshot } from '../src/snapshot/index.ts';
import { SnapshotBuilder } from '../src/build/index.ts';
import { openStore } from '../src/store/index.ts';
import { BIN, cli, runAsync } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { startServer } from './helpers/server-fixtures.ts';
import { generateTree } from './helpers/tree.ts';

const PROGRAM = {
  'main.ts': `import { describe } from './lib/describe';
console.log(describe(process.argv.slice(2)));
if (process.argv.includes('--fail')) (await import('./lib/fail')).fail();
if (process.argv.includes('--exit-3')) process.exitCode = 3;
if (process.argv.includes('--eval')) console.log(typeof new Function('return 1'));`,
  'lib/describe.ts': `export const describe = (args: string[]): string => \`args=\${JSON.stringify(args)}\`;`,
  'lib/fail.ts': `type Reason = string;\nexport function fail(): never {\n  const reason: Reason = 'on purpose';\n  throw new Error(\`failed \${reason}\`);\n}\n`,
};

async function serve(t: TestContext, files: Record<string, string>): Promise<{ url: string; key: string }> {
  const dir = tempDir(t);
  writeFiles(dir, files);
  const running = await startServer(t);
  running.server.publish(signSnapshot(new SnapshotBuilder(dir).build().content, running.key));
  return { url: running.url, key: running.key.publicKeyString };
}

/** Like cli() but asynchronous, so several can run at once against the in-process server. */

test('run: arguments after --, the program exit code, and a throw exiting 1 with a source-mapped stack', async (t) => {
  const { url, key } = await serve(t, PROGRAM);
  const cache = tempDir(t);
  const ok = await runAsync(['run', `${url}/main.ts`, '--key', key, '--cache', cache, '--', 'a', '--b']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), 'args=["a","--b"]');
  assert.equal(ok.stderr, '', 'nothing on stderr when it is not a terminal');
  assert.equal((await runAsync(['run', url, '--key', key, '--cache', cache, '--', '--exit-3'])).status, 3);
  const failed = await runAsync(['run', url, '--key', key, '--cache', cache, '--', '--fail']);
  assert.equal(failed.status, 1);
  assert.match(failed.stderr, /Error: failed on purpose/);
  assert.ok(failed.stderr.includes(`${url}/lib/fail.ts:4:9`), failed.stderr);
});

test('run: usage errors exit 2, verification failures exit 1 with their code', async (t) => {
  const { url } = await serve(t, PROGRAM);
  assert.equal(cli(['run', 'ftp://example.com/x.ts', '--key', 'ed25519:x']).status, 2);
  assert.equal(cli(['run', 'http://user:pw@127.0.0.1/x.ts', '--key', 'ed25519:x']).status, 2);
  for (const [target, message] of [
    [`${url}//main.js`, /has an empty folder \(\/\/\) in its path; remove the doubled slash/],
    [`${url}/%zz/main.js`, /has a malformed %-escape in its path/],
  ] as const) {
    const refused = cli(['run', target, '--key', generatePublisherKey().publicKeyString, '--cache', tempDir(t)]);
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, message);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
  }
  const badKey = cli(['run', url, '--key', 'not-a-key', '--cache', tempDir(t)]);
  assert.equal(badKey.status, 1);
  assert.match(badKey.stderr, /ed25519:<43 base64url characters>/);
  assert.equal(cli(['run', url, '--key', 'ed25519:x', '--max-stale', 'soon']).status, 2);
});

test('run works under --disallow-code-generation-from-strings, which really is in force', async (t) => {
  const { url, key } = await serve(t, PROGRAM);
  const result = await runAsync(['run', url, '--key', key, '--cache', tempDir(t), '--', '--eval'], { node: ['--disallow-code-generation-from-strings'] });
  assert.equal(result.status, 1, 'new Function is refused');
  assert.match(result.stdout, /^args=\["--eval"\]/);
  assert.match(result.stderr, /EvalError: Code generation from strings disallowed/);
});

test('8 processes cold-starting against one empty cache at once all succeed', async (t) => {
  const dir = tempDir(t);
  const tree = generateTree(dir, 300, { seed: 7 });
  writeFiles(dir, { 'run.ts': `import { main } from './main'; console.log('result', main());` });
  const running = await startServer(t);
  running.server.publish(signSnapshot(new SnapshotBuilder(dir).build().content, running.key));
  const cache = tempDir(t);
  const results = await Promise.all(Array.from({ length: 8 }, () => runAsync(['run', `${running.url}/run.ts`, '--key', running.key.publicKeyString, '--cache', cache])));
  for (const result of results) {
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), `result ${tree.expected}`);
  }
  const report = openStore({ dir: cache }).verify();
  assert.deepEqual(report.corrupt, []);
});

test('a process killed with SIGKILL in the middle of a sync leaves a store the next run accepts', async (t) => {
  const dir = tempDir(t);
  generateTree(dir, 400, { seed: 3 });
  writeFiles(dir, { 'run.ts': `import { main } from './main'; console.log('result', main());` });
  const running = await startServer(t);
  running.server.publish(signSnapshot(new SnapshotBuilder(dir).build().content, running.key));
  const upstream = new URL(running.url);

  // A proxy that passes the manifest on, then sends half of the batch response and stalls.
  let halfSent!: () => void;
  const stalled = new Promise<void>((resolve) => (halfSent = resolve));
  const proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
    const forward = request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      if (req.url !== '/batch') {
        answer.pipe(res);
        return;
      }
      const length = Number(answer.headers['content-length']);
      let sent = 0;
      answer.on('data', (chunk: Buffer) => {
        if (sent >= length / 2) return;
        res.write(chunk);
        sent += chunk.length;
        if (sent >= length / 2) halfSent();
      });
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    proxy.closeAllConnections();
    proxy.close();
  });
  const cache = tempDir(t);
  const child = spawn(process.execPath, [BIN, 'run', `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/run.ts`, '--key', running.key.publicKeyString, '--cache', cache, '--timeout', '60s'], { stdio: 'ignore' });
  const exited = new Promise<string | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  await stalled;
  // Kill it once it has stored part of what arrived: mid-sync, with more to come.
  const deadline = Date.now() + 20_000;
  while (openStore({ dir: cache }).list().blobs === 0) {
    assert.ok(Date.now() < deadline, 'the child stored blobs from the half batch');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');

  const store = openStore({ dir: cache });
  assert.ok(store.list().blobs > 0, 'the blobs that arrived before the kill were stored');
  assert.equal(store.readOrigin(running.url), null, 'no manifest was committed');
  const next = await runAsync(['run', `${running.url}/run.ts`, '--key', running.key.publicKeyString, '--cache', cache]);
  assert.equal(next.status, 0, next.stderr);
  assert.match(next.stdout, /^result \d+/);
  assert.deepEqual(openStore({ dir: cache }).verify().corrupt, []);
});

test('isolation: NODE_PATH does not leak into live modules', async (t) => {
  const global = tempDir(t);
  writeFiles(global, { 'leaky/package.json': JSON.stringify({ name: 'leaky', main: 'index.js' }), 'leaky/index.js': 'module.exports = "leaked";' });
  const { url, key } = await serve(t, { 'main.ts': `import leaky from 'leaky'; console.log(leaky);` });
  const result = await runAsync(['run', url, '--key', key, '--cache', tempDir(t)], { env: { NODE_PATH: global } });
  assert.equal(result.status, 1);
  assert.match(result.stderr, /Cannot find (module|package) 'leaky'/);
  assert.doesNotMatch(result.stdout, /leaked/);
});

test('a cold sync on a terminal shows a progress bar', async (t) => {
  const probe = spawnSync('script', ['--version'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    t.skip('util-linux `script` is not installed: apt-get install -y bsdutils');
    return;
  }
  const dir = tempDir(t);
  generateTree(dir, 200, { seed: 5 });
  const running = await startServer(t);
  running.server.publish(signSnapshot(new SnapshotBuilder(dir).build().content, running.key));
  const command = [process.execPath, BIN, 'run', `${running.url}/main.ts`, '--key', running.key.publicKeyString, '--cache', tempDir(t)].map((part) => `'${part}'`).join(' ');
  const result = await new Promise<string>((resolve) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.on('close', () => resolve(out));
  });
  assert.match(result, /\[livemod sync\] .*\d+\/\d+ blobs \| /);
});

test('run a local folder or module file, built in-process', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { ...PROGRAM, 'package.json': JSON.stringify({ name: 'local-app', type: 'module', exports: './main.ts' }) });
  const file = cli(['run', `${dir}/main.ts`, '--', 'x']);
  assert.equal(file.status, 0, file.stderr);
  assert.equal(file.stdout.trim(), 'args=["x"]');
  const folder = cli(['run', dir]);
  assert.equal(folder.status, 0, folder.stderr);
  assert.equal(folder.stdout.trim(), 'args=[]', 'the package entry runs');
  const missing = cli(['run', `${dir}/nope.ts`]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /does not exist/);
});

test('run ./dir --cache keeps the local build cache in that store, not the default one', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, PROGRAM);
  const cache = tempDir(t);
  const home = tempDir(t);
  const run = await runAsync(['run', `${dir}/main.ts`, '--cache', cache, '--', 'x'], { env: { LIVEMOD_CACHE: home } });
  assert.equal(run.status, 0, run.stderr);
  assert.ok(readdirSync(join(cache, 'builds')).length > 0, 'transforms kept under --cache');
  assert.deepEqual(readdirSync(home), [], 'the default store is untouched');
});

test('run ./dir, second start: the build comes from its record and the code cache from one run pack; an edit is still seen', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, PROGRAM);
  const cache = tempDir(t);
  const start = (): Promise<{ status: number | null; stdout: string; stderr: string }> => runAsync(['run', `${dir}/main.ts`, '--cache', cache, '--', 'x']);
  const first = await start();
  assert.equal(first.status, 0, first.stderr);
  const records = readdirSync(join(cache, 'builds', 'records'));
  assert.equal(records.length, 1, 'the build record is written at exit');
  const record = join(cache, 'builds', 'records', records[0]!);
  // The files were written just now: the next start verifies them by content and writes the
  // record again; past that window a start takes the record as it is.
  await new Promise((resolve) => setTimeout(resolve, 2100));
  assert.equal((await start()).status, 0);
  const written = statSync(record).mtimeMs;
  const second = await start();
  assert.equal(second.stdout.trim(), 'args=["x"]', second.stderr);
  assert.equal(statSync(record).mtimeMs, written, 'a restored start rewrites no record');
  assert.equal(readdirSync(join(cache, 'runs')).filter((name) => name.endsWith('.pack')).length, 1, "the start's code cache is one run pack");
  writeFiles(dir, { 'lib/describe.ts': `export const describe = (args: string[]): string => \`edited=\${args.length}\`;` });
  const third = await start();
  assert.equal(third.stdout.trim(), 'edited=1', third.stderr);
  assert.notEqual(statSync(record).mtimeMs, written, 'the edit made a new record');
});

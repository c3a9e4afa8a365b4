// `lazy(() => import('pkg'))` from 'livemod': a package's namespace loaded at its first read, as
// that import would load it, in plain Node code and in live modules.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { types } from 'node:util';
import { lazy } from '../src/index.ts';
import { cli, runAsync } from './helpers/cli.ts';
import { startServer } from './helpers/server-fixtures.ts';
import { SnapshotBuilder } from '../src/build/index.ts';
import { signSnapshot } from '../src/snapshot/index.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';

test('lazy(() => import(…)) in plain code: loaded at the first read, the same namespace import() gives, typed', async () => {
  const fs = lazy(() => import('node:fs'));
  assert.equal(typeof fs.readFileSync, 'function');
  const ws = lazy(() => import('ws'));
  assert.equal(ws.WebSocket, (await import('ws')).WebSocket, 'the same instance');
  assert.ok('WebSocketServer' in ws);
  const names: string[] = [];
  for (const name in ws) names.push(name);
  assert.ok(names.includes('WebSocket'), 'for…in lists the package\'s names');
  assert.equal(Object.prototype.toString.call(ws), '[object Module]');
  assert.throws(() => Object.assign(ws, { extra: 1 }), TypeError, 'not writable, as a namespace');
  assert.throws(() => Object.defineProperty(ws, 'extra', { value: 1 }), TypeError, 'not extensible once loaded');
  // No Proxy on the read path once loaded: reads go to Node's namespace, as an import's do.
  assert.equal(types.isProxy(ws), false);
  assert.equal(Object.getPrototypeOf(ws), await import('ws'));
  const unread = lazy(() => import('node:zlib'));
  assert.ok([...(function* () { for (const name in unread) yield name; })()].includes('gzipSync'), 'for…in loads the package');
});

test('lazy(): `then` and symbol keys do not load the package, so the object can be awaited', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': '{"type":"module"}',
    'node_modules/noisy/package.json': JSON.stringify({ name: 'noisy', type: 'module', exports: './index.js' }),
    'node_modules/noisy/index.js': "(globalThis.noisyLoads ??= []).push('loaded'); export const value = 7;",
    'main.js': "import { lazy } from 'livemod';\nconst noisy = lazy(() => import('noisy'));\nconst same = await (async () => noisy)();\nconsole.log(same === noisy, noisy[Symbol.iterator], JSON.stringify(globalThis.noisyLoads ?? []));\nconsole.log(noisy.value, JSON.stringify(globalThis.noisyLoads));",
  });
  const run = cli(['run', './main.js'], { cwd: dir });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), 'true undefined []\n7 ["loaded"]');
});

test('lazy(): a missing package fails at the first read with ERR_LIVEMOD_LAZY_LOAD; a relative specifier or a function without a literal import is refused at once', () => {
  const absent = lazy(() => import('no-such-package-anywhere' as string)) as Record<string, unknown>;
  assert.throws(() => absent.x, (error: Error & { code?: string; cause?: { code?: string } }) => error.code === 'ERR_LIVEMOD_LAZY_LOAD' && error.cause?.code === 'ERR_MODULE_NOT_FOUND' && /no-such-package-anywhere/.test(error.message));
  assert.throws(() => lazy(() => import('./helpers/fs.ts')), /loads packages and builtins; load a module of the program lazily with `import defer/);
  const name = 'ws';
  assert.throws(() => lazy(() => import(name)), /one literal import/);
});

test('lazy(() => import(…)) in a live module resolves from that module and loads at the first read', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': '{"type":"module"}',
    'node_modules/counter/package.json': JSON.stringify({ name: 'counter', type: 'module', exports: './index.js' }),
    'node_modules/counter/index.js': "(globalThis.pkgLog ??= []).push('counter'); export let count = 0; export function inc() { count += 1; }",
    'main.ts': "import { lazy } from 'livemod';\nconst counter = lazy(() => import('counter'));\nconsole.log('start', JSON.stringify((globalThis as { pkgLog?: string[] }).pkgLog ?? []));\ncounter.inc();\nconsole.log('count', counter.count, JSON.stringify((globalThis as { pkgLog?: string[] }).pkgLog));",
  });
  const run = cli(['run', './main.ts'], { cwd: dir });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), 'start []\ncount 1 ["counter"]');
});

test('lazy(() => import(…)) in a module served over HTTP resolves the package as that run resolves its imports (from the working folder)', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'main.ts': "import { lazy } from 'livemod';\nconst counter = lazy(() => import('counter'));\ncounter.inc();\nconsole.log('count', counter.count);" });
  const running = await startServer(t);
  // Modules only: their URLs are the server's, and packages resolve from the working folder.
  running.server.publish(signSnapshot(new SnapshotBuilder(dir).build().content, running.key));
  const work = tempDir(t);
  writeFiles(work, {
    'node_modules/counter/package.json': JSON.stringify({ name: 'counter', type: 'module', exports: './index.js' }),
    'node_modules/counter/index.js': 'export let count = 0; export function inc() { count += 1; }',
  });
  const run = await runAsync(['run', `${running.url}/main.ts`, '--key', running.key.publicKeyString, '--cache', tempDir(t), '--once'], { cwd: work });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), 'count 1');
});

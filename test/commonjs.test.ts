// A program written in CommonJS, as Node runs it from disk: a `.js` file of a package without
// `"type": "module"` that uses require, and `.cjs` files, are left to Node's own loader — locally,
// through a server and through a static host, with its packages and files — and a change to one
// of them reaches the running program.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SnapshotBuilder, publishSnapshot } from '../src/build/index.ts';
import { generatePublisherKey, signSnapshot } from '../src/snapshot/index.ts';
import { cli, lineProcess, runAsync } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { startServer } from './helpers/server-fixtures.ts';
import { startHost } from './helpers/static-host.ts';

const PROGRAM_BUILD = { program: { externals: 'bundle', external: [] } } as const;

/** A CommonJS program: its entry requires its own files (one by a folder's index), a package with a nested older copy of another, JSON, and reads a file beside it. */
function writeCommonJsProgram(dir: string): void {
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'cjs-program', version: '1.0.0', main: 'index.js', dependencies: { 'pad-a': '1.0.0', 'word-b': '2.0.0' } }),
    'index.js': [
      "const { readFileSync } = require('node:fs');",
      "const path = require('node:path');",
      "const lib = require('./lib');",
      "const { shout } = require('./lib/shout.cjs');",
      "const config = require('./config.json');",
      "const padA = require('pad-a');",
      "const wordB = require('word-b');",
      "const text = readFileSync(path.join(__dirname, 'data', 'hello.txt'), 'utf8').trim();",
      'console.log(JSON.stringify({ main: require.main === module, sum: lib.add(2, 3), shout: shout(text), config: config.level, padA: padA(), wordB, sloppy: (function () { return this === undefined; })(), file: path.basename(__filename) }));',
      '',
    ].join('\n'),
    'lib/index.js': 'exports.add = (a, b) => a + b;\n',
    'lib/shout.cjs': 'module.exports.shout = (text) => text.toUpperCase() + "!";\n',
    'config.json': '{ "level": 3 }\n',
    'data/hello.txt': 'hello\n',
    'node_modules/pad-a/package.json': JSON.stringify({ name: 'pad-a', version: '1.0.0', main: 'index.js', dependencies: { 'word-b': '1.0.0' } }),
    'node_modules/pad-a/index.js': "const word = require('word-b');\nmodule.exports = () => `[${word}]`;\n",
    'node_modules/pad-a/node_modules/word-b/package.json': JSON.stringify({ name: 'word-b', version: '1.0.0', main: 'index.js' }),
    'node_modules/pad-a/node_modules/word-b/index.js': "module.exports = 'old';\n",
    'node_modules/word-b/package.json': JSON.stringify({ name: 'word-b', version: '2.0.0', main: 'index.js' }),
    'node_modules/word-b/index.js': "module.exports = 'new';\n",
  });
}

const EXPECTED = { main: true, sum: 5, shout: 'HELLO!', config: 3, padA: '[old]', wordB: 'new', sloppy: false, file: 'index.js' };

test('which files run as CommonJS: what Node takes as CommonJS, and that names its globals', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'kinds' }),
    'required.js': "const x = require('./x.cjs');\nmodule.exports = x;\n",
    'x.cjs': 'exports.a = 1;\nexports.b = 2;\n',
    'script.js': "console.log('a script of statements');\n",
    'esm.js': "import x from './x.cjs';\nconst fs = typeof require;\nexport default x;\n",
    'meta.js': 'const here = import.meta.url;\nconst r = typeof require;\n',
    'broken.js': 'with (Math) { exports.pi = PI; }\n',
    'typed.ts': "const a: number = require('./x.cjs').a;\nexports.a = a;\n",
    'esm/package.json': JSON.stringify({ type: 'module' }),
    'esm/inner.js': "const fs = typeof require;\nconsole.log(fs);\n",
    'esm/old/package.json': JSON.stringify({ type: 'commonjs' }),
    'esm/old/inner.js': 'module.exports = 1;\n',
  });
  const { content } = new SnapshotBuilder(dir).build();
  const commonjs = Object.keys(content.modules).filter((path) => content.modules[path]!.commonjs === true).sort();
  assert.deepEqual(commonjs, ['broken.js', 'esm/old/inner.js', 'required.js', 'typed.ts', 'x.cjs']);
  assert.deepEqual(content.modules['x.cjs']!.exports, ['a', 'b', 'default', 'module.exports']);
  assert.equal(content.modules['x.cjs']!.map, null);
  assert.deepEqual(content.modules['x.cjs']!.imports, []);
  assert.equal(content.blobs.get(content.modules['x.cjs']!.blob.hash)!.toString(), 'exports.a = 1;\nexports.b = 2;\n', 'the blob is the file as written');
});

test('a CommonJS program runs as Node runs it from disk: locally, through a server and a static host from an empty folder, then offline', async (t) => {
  const dir = tempDir(t);
  writeCommonJsProgram(dir);
  const node = spawnSync(process.execPath, ['index.js'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  assert.equal(node.status, 0, node.stderr);
  assert.deepEqual(JSON.parse(node.stdout), EXPECTED);
  const local = cli(['run', dir], { env: { LIVEMOD_CACHE: tempDir(t) } });
  assert.equal(local.status, 0, local.stderr);
  assert.equal(local.stdout, node.stdout);

  const running = await startServer(t);
  running.server.publish(signSnapshot(new SnapshotBuilder(dir, PROGRAM_BUILD).build().content, running.key));
  const out = tempDir(t);
  const publisher = generatePublisherKey();
  await publishSnapshot(new SnapshotBuilder(dir, PROGRAM_BUILD).build().content, publisher, out);
  const host = await startHost(t, out);
  for (const [url, key] of [[running.url, running.key.publicKeyString], [host.url, publisher.publicKeyString]] as const) {
    const cache = tempDir(t);
    const cwd = tempDir(t);
    const remote = await runAsync(['run', url, '--key', key, '--cache', cache], { cwd });
    assert.equal(remote.status, 0, remote.stderr);
    assert.equal(remote.stdout, node.stdout);
    assert.deepEqual(readdirSync(cwd), [], 'nothing is written to the working folder');
    const offline = await runAsync(['run', url, '--key', key, '--cache', cache, '--offline'], { cwd });
    assert.equal(offline.status, 0, offline.stderr);
    assert.equal(offline.stdout, node.stdout);
  }
});

test('a CommonJS error is Node\'s: the program\'s own stack, exit code 1', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'package.json': JSON.stringify({ name: 'cjs-throws' }), 'main.js': "require('./boom.js');\n", 'boom.js': "module.exports = 1;\nthrow new Error('boom in CommonJS');\n" });
  const node = spawnSync(process.execPath, ['main.js'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  const live = cli(['run', join(dir, 'main.js')], { env: { LIVEMOD_CACHE: tempDir(t) } });
  assert.equal(live.status, node.status);
  assert.match(live.stderr, /Error: boom in CommonJS\n\s+at Object\.<anonymous> \(\S*boom\.js:2:7\)/);
});

test('livemod run --watch: a change to a CommonJS file the entry requires re-runs the entry on the new code, in the same process', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'cjs-watch' }),
    'lib/index.js': 'exports.word = "first";\n',
    'main.js': "const lib = require('./lib');\nconsole.log(process.pid + ' ' + lib.word);\nglobalThis.keep ??= setInterval(() => {}, 1000);\n",
  });
  const run = lineProcess(t, ['run', join(dir, 'main.js'), '--watch', '--log-swaps', '--cache', tempDir(t)]);
  const pid = (await run.line(/ first$/)).split(' ')[0];
  writeFiles(dir, { 'lib/index.js': 'exports.word = "second";\n' });
  assert.equal((await run.line(/ second$/)).split(' ')[0], pid, 'the same process runs the new code');
  await run.stop();
});

test('an ES module accepts a new version of a CommonJS file it imports; the rest of the program keeps running', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'cjs-accept' }),
    'legacy.cjs': 'exports.word = "first";\n',
    'main.mjs': [
      "import { word } from './legacy.cjs';",
      'globalThis.starts = (globalThis.starts ?? 0) + 1;',
      "console.log(process.pid + ' start ' + word);",
      "import.meta.hot.accept('./legacy.cjs', (next) => console.log(process.pid + ' accepted ' + next.word + ' ' + word + ' ' + globalThis.starts));",
      'globalThis.keep ??= setInterval(() => {}, 1000);',
      '',
    ].join('\n'),
  });
  const run = lineProcess(t, ['run', join(dir, 'main.mjs'), '--watch', '--log-swaps', '--cache', tempDir(t)]);
  const pid = (await run.line(/ start first$/)).split(' ')[0];
  writeFiles(dir, { 'legacy.cjs': 'exports.word = "second";\n' });
  assert.equal(await run.line(/ accepted /), `${pid} accepted second second 1`, 'the callback gets the new exports, the binding reads them, and main.mjs did not run again');
  await run.stop();
});

// A program written in CommonJS, as Node runs it from disk: a `.js` file of a package without
// `"type": "module"` that uses require, and `.cjs` files, are left to Node's own loader — locally,
// through a server and through a static host, with its packages and files — and a change to one
// of them reaches the running program.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SnapshotBuilder, publishSnapshot } from '../src/build/index.ts';
import { generatePublisherKey, MANIFEST_SCHEMA, MODULE_FORMAT, signSnapshot, validateManifest } from '../src/snapshot/index.ts';
import { cli, lineProcess, runAsync } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { publishedFolder } from './helpers/published-folder.ts';
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

test('which files run as CommonJS: what Node takes as CommonJS, by name, by package scope and syntax', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'kinds' }),
    'required.js': "const x = require('./x.cjs');\nmodule.exports = x;\n",
    'x.cjs': 'exports.a = 1;\nexports.b = 2;\n',
    'script.js': "undeclared = 'a script of statements, sloppy as Node runs it';\n",
    'esm.js': "import x from './x.cjs';\nconst fs = typeof require;\nexport default x;\n",
    'meta.js': 'const here = import.meta.url;\nconst r = typeof require;\n',
    'broken.js': 'with (Math) { exports.pi = PI; }\n',
    'typed.ts': "import type { A } from './types.ts';\nconst a: number = require('./x.cjs').a;\nexports.a = a;\n",
    'types.ts': 'export interface A { a: number }\n',
    'usage.ts': "import { A } from './types.ts';\nexport interface B extends A { b: number }\n",
    'typed.cts': "import type { A } from './types.ts';\nexports.c = 3;\n",
    'index.js': "module.exports = require('./impl.js');\n",
    'impl.js': 'exports.hello = () => "hello";\n',
    'esm/package.json': JSON.stringify({ type: 'module' }),
    'esm/inner.js': "const fs = typeof require;\nconsole.log(fs);\n",
    'esm/old/package.json': JSON.stringify({ type: 'commonjs' }),
    'esm/old/inner.js': 'module.exports = 1;\n',
  });
  const { content } = new SnapshotBuilder(dir, PROGRAM_BUILD).build();
  const commonjs = Object.keys(content.modules).filter((path) => content.modules[path]!.commonjs === true).sort();
  // types.ts exports types only: stripped, it has no ES module syntax, so Node too takes it as CommonJS.
  // usage.ts imports a name it uses as a type only: the transformer drops that import, Node's stripping keeps it (an ES module).
  assert.deepEqual(commonjs, ['broken.js', 'esm/old/inner.js', 'impl.js', 'index.js', 'required.js', 'script.js', 'typed.cts', 'typed.ts', 'types.ts', 'x.cjs']);
  assert.deepEqual(content.modules['x.cjs']!.exports, ['a', 'b', 'default', 'module.exports']);
  assert.deepEqual(content.modules['typed.cts']!.exports, ['c', 'default', 'module.exports'], 'type-only imports are stripped before the lexer reads it');
  assert.deepEqual(content.modules['index.js']!.exports, ['default', 'hello', 'module.exports'], 'a re-export of a file of the folder brings its names, as Node follows it');
  assert.equal(content.modules['x.cjs']!.map, null);
  assert.deepEqual(content.modules['x.cjs']!.imports, []);
  assert.equal(content.blobs.get(content.modules['x.cjs']!.blob.hash)!.toString(), 'exports.a = 1;\nexports.b = 2;\n', 'the blob is the file as written');
  // With commonjs off (the test262 runner), every .js/.ts file is an ES module; .cjs stays CommonJS.
  const modules = new SnapshotBuilder(dir, { ...PROGRAM_BUILD, commonjs: false }).build().content.modules;
  assert.deepEqual(Object.keys(modules).filter((path) => modules[path]!.commonjs === true).sort(), ['typed.cts', 'x.cjs']);
  // A snapshot of modules only (no files for Node to load them from) keeps scripts live, as does a folder of ES modules.
  const bare = new SnapshotBuilder(dir).build().content.modules;
  assert.deepEqual(Object.keys(bare).filter((path) => bare[path]!.commonjs === true).sort(), ['typed.cts', 'x.cjs']);
});

test('an ES module imports a CommonJS index that re-exports a file, and a TypeScript file with a type-only import, as Node does', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'reexports' }),
    'lib/index.js': "module.exports = require('./impl.js');\n",
    'lib/impl.js': 'exports.hello = (name) => "hello " + name;\n',
    'types.ts': 'export interface Named { name: string }\n',
    'typed.ts': "import type { Named } from './types.ts';\nconst path = require('node:path');\nconst who: Named = { name: path.basename('/x/world') };\nconsole.log('typed', who.name);\n",
    'main.mjs': "import { hello } from './lib/index.js';\nimport './typed.ts';\nconsole.log(hello('you'));\n",
  });
  const node = spawnSync(process.execPath, ['main.mjs'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  assert.equal(node.status, 0, node.stderr);
  const live = cli(['run', join(dir, 'main.mjs')], { env: { LIVEMOD_CACHE: tempDir(t) } });
  assert.equal(live.status, 0, live.stderr);
  assert.equal(live.stdout, node.stdout);
  assert.equal(live.stdout, 'typed world\nhello you\n');
});

test('a package.json whose "type" changes makes its files change kind at the next start, as in Node', (t) => {
  const dir = tempDir(t);
  const cache = tempDir(t);
  writeFiles(dir, { 'package.json': JSON.stringify({ name: 'flip', type: 'module' }), 'main.js': "console.log(typeof require === 'function' ? 'commonjs' : 'module');\n" });
  const run = (): string => {
    const result = cli(['run', join(dir, 'main.js')], { env: { LIVEMOD_CACHE: cache } });
    assert.equal(result.status, 0, result.stderr);
    return result.stdout.trim();
  };
  assert.equal(run(), 'module');
  writeFiles(dir, { 'package.json': JSON.stringify({ name: 'flip' }) });
  assert.equal(run(), 'commonjs');
  writeFiles(dir, { 'package.json': JSON.stringify({ name: 'flip', type: 'module' }) });
  assert.equal(run(), 'module');
});

test('a hostile manifest cannot make a CommonJS record load a file out of the version\'s folder', () => {
  const base = { blob: { hash: 'a'.repeat(64), size: 1 }, map: null, imports: [], exports: ['default'], star: [], tla: false, commonjs: true };
  const manifest = (path: string, files?: Record<string, unknown>): unknown => ({ schema: MANIFEST_SCHEMA, format: MODULE_FORMAT, version: 1, name: 'hostile', created: '2026-01-01T00:00:00.000Z', expires: '2027-01-01T00:00:00.000Z', keyId: '0123456789abcdef', entry: path, modules: { [path]: base }, ...(files ? { files } : {}) });
  for (const path of ['../evil.cjs', '/tmp/evil.cjs', 'a/../../evil.cjs']) assert.throws(() => validateManifest(manifest(path), 'test'), { code: 'ERR_LIVEMOD_MANIFEST_INVALID' }, path);
  assert.throws(() => validateManifest(manifest('evil.node'), 'test'), /only on a \.js, \.ts, \.cjs or \.cts file, or one without an extension/);
  assert.throws(() => validateManifest(manifest('x.cjs', { 'x.cjs': { hash: 'b'.repeat(64), size: 1 } }), 'test'), /only on a file of manifest\.files with the same hash/);
  assert.throws(() => validateManifest(manifest('x.cjs', {}), 'test'), /only on a file of manifest\.files/);
  validateManifest(manifest('x.cjs', { 'x.cjs': { hash: 'a'.repeat(64), size: 1 } }), 'test');
  // Names a URL would read as a way out are file names here: %2e%2e and file: stay inside.
  for (const path of ['%2e%2e/%2e%2e/evil.cjs', 'file:/tmp/evil.cjs']) validateManifest(manifest(path, { [path]: { hash: 'a'.repeat(64), size: 1 } }), 'test');
});

test('CommonJS files with names a URL would read otherwise (#, %) load as the files they are', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'package.json': JSON.stringify({ name: 'odd-names' }), 'a#b.cjs': "console.log('hash');\n", '50%.cjs': "console.log('percent');\n", '%41.cjs': "console.log('percent-41');\n", 'A.cjs': "console.log('A');\n" });
  for (const [file, expected] of [['a#b.cjs', 'hash'], ['50%.cjs', 'percent'], ['%41.cjs', 'percent-41']] as const) {
    const live = cli(['run', join(dir, file)], { env: { LIVEMOD_CACHE: tempDir(t) } });
    assert.equal(live.status, 0, live.stderr);
    assert.equal(live.stdout.trim(), expected);
  }
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
  assert.match(live.stderr, /^\S*boom\.js:2\nthrow new Error\('boom in CommonJS'\);\n {6}\^\n/, 'headed by its source line and a caret, as Node heads it');
});

test('a throw of a live module that a CommonJS file imports, left unhandled, prints the program\'s frames as Node does, livemod\'s with --verbose', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'cjs-rejects' }),
    'main.cjs': "import('./esm.mjs').then((ns) => console.log(ns.x));\n",
    'esm.mjs': "function boom() { throw new Error('from esm'); }\nboom();\nexport const x = 1;\n",
  });
  // Deep stacks on both sides, so that no frame of livemod's hides below Node's ten.
  const node = spawnSync(process.execPath, ['--stack-trace-limit=100', 'main.cjs'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  const live = cli(['run', join(dir, 'main.cjs')], { env: { LIVEMOD_CACHE: tempDir(t), NODE_OPTIONS: '--stack-trace-limit=100' } });
  assert.equal(live.status, node.status);
  const frames = (stderr: string): string[] => stderr.split('\n').filter((line) => /^\s+at /.test(line) && !line.includes('node:internal'));
  assert.deepEqual(frames(live.stderr), frames(node.stderr));
  assert.equal(frames(live.stderr).length, 2, live.stderr);
  assert.ok(!live.stderr.includes('livemod-evaluate:'), live.stderr);
  const verbose = cli(['--verbose', 'run', join(dir, 'main.cjs')], { env: { LIVEMOD_CACHE: tempDir(t) } });
  assert.ok(frames(verbose.stderr).length > 2 && /at Generator\.next/.test(verbose.stderr), verbose.stderr);
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

test('livemod run --watch: a required file that becomes a folder (lib.js → lib/index.js) is found again, as a fresh Node would find it', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'cjs-moved' }),
    'lib.js': 'exports.word = "file";\n',
    'main.js': "const lib = require('./lib');\nconsole.log(process.pid + ' ' + lib.word);\nglobalThis.keep ??= setInterval(() => {}, 1000);\n",
  });
  const run = lineProcess(t, ['run', join(dir, 'main.js'), '--watch', '--cache', tempDir(t)]);
  const pid = (await run.line(/ file$/)).split(' ')[0];
  rmSync(join(dir, 'lib.js'));
  writeFiles(dir, { 'lib/index.js': 'exports.word = "folder";\n' });
  assert.equal((await run.line(/ folder$/)).split(' ')[0], pid);
  await run.stop();
});

test('a CommonJS file requires packages from where the client keeps them when they do not travel (--externals installed), and runs under a store whose parent says "type": "module"', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'main.js': "const word = require('word');\nconsole.log(require.main === module, word);\n",
    'node_modules/word/package.json': JSON.stringify({ name: 'word', version: '1.0.0', main: 'index.js' }),
    'node_modules/word/index.js': "module.exports = 'from the publisher';\n",
  });
  const running = await startServer(t);
  const first = signSnapshot(new SnapshotBuilder(dir, { entry: 'main.js', program: { externals: 'installed', external: [] } }).build().content, running.key);
  running.server.publish(first);
  const cwd = tempDir(t);
  writeFiles(cwd, {
    'package.json': JSON.stringify({ name: 'client-folder' }),
    'node_modules/word/package.json': JSON.stringify({ name: 'word', version: '1.0.0', main: 'index.js' }),
    'node_modules/word/index.js': "module.exports = 'from the client';\n",
  });
  // The store is elsewhere: the package is found in the working folder, not by Node's search upward from the store.
  const parent = tempDir(t);
  writeFiles(parent, { 'package.json': JSON.stringify({ name: 'store-parent', type: 'module' }) });
  const run = await runAsync(['run', running.url, '--key', running.key.publicKeyString, '--cache', join(parent, 'store')], { cwd });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, 'true from the client\n');
  // One package kept out by name (--external) while the rest travel: the same.
  writeFiles(dir, { 'package.json': JSON.stringify({ name: 'kept-out', dependencies: { word: '1.0.0' } }) });
  running.server.publish(signSnapshot(new SnapshotBuilder(dir, { entry: 'main.js', program: { externals: 'bundle', external: ['word'] } }).build().content, running.key, { previousVersion: first.manifest.version }));
  const kept = await runAsync(['run', running.url, '--key', running.key.publicKeyString, '--cache', join(parent, 'store2')], { cwd });
  assert.equal(kept.status, 0, kept.stderr);
  assert.equal(kept.stdout, 'true from the client\n');
});

test('a remote CommonJS program takes a new version: the entry re-runs on the new version\'s files, in the same process', async (t) => {
  const running = await publishedFolder(t, {
    'package.json': JSON.stringify({ name: 'cjs-remote', main: 'main.js' }),
    'lib/word.js': 'module.exports = "one";\n',
    'main.js': "const word = require('./lib/word.js');\nconst note = require('node:fs').readFileSync(__dirname + '/note.txt', 'utf8').trim();\nconsole.log(process.pid + ' ' + word + ' ' + note + ' ' + (process.argv[1] === __filename));\nglobalThis.keep ??= setInterval(() => {}, 1000);\n",
    'note.txt': 'a\n',
  }, PROGRAM_BUILD);
  const run = lineProcess(t, ['run', running.url, '--key', running.key.publicKeyString, '--cache', tempDir(t)]);
  const [pid, , , main] = (await run.line(/ one a /)).split(' ');
  assert.equal(main, 'true', 'process.argv[1] is the entry\'s __filename, as under Node');
  running.publish({ 'lib/word.js': 'module.exports = "two";\n' });
  assert.equal((await run.line(/ two a /)).split(' ')[0], pid, 'the same process');
  // A version that changes only a file the CommonJS code reads through __dirname runs it again too.
  running.publish({ 'note.txt': 'b\n' });
  assert.equal((await run.line(/ two b /)).split(' ')[0], pid);
  await run.stop();
});

test('a package only CommonJS code requires travels, declared or not', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'cjs-undeclared', main: 'main.js', devDependencies: { shade: '1.0.0' } }),
    'main.js': "console.log(require('shade')('x'));\n",
    'node_modules/shade/package.json': JSON.stringify({ name: 'shade', version: '1.0.0', main: 'index.js' }),
    'node_modules/shade/index.js': "module.exports = (text) => '~' + text + '~';\n",
  });
  const running = await startServer(t);
  running.server.publish(signSnapshot(new SnapshotBuilder(dir, PROGRAM_BUILD).build().content, running.key));
  const run = await runAsync(['run', running.url, '--key', running.key.publicKeyString, '--cache', tempDir(t)], { cwd: tempDir(t) });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, '~x~\n');
});

test('a throw while the program starts ends it, as in Node, whatever it started; a program that handles uncaught exceptions gets it and runs on', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'start-throws' }),
    'server.js': "require('node:http').createServer().listen(0, '127.0.0.1');\nsetInterval(() => console.log('tick'), 50);\nrequire('./missing');\n",
    'server.mjs': "import { createServer } from 'node:http';\ncreateServer().listen(0, '127.0.0.1');\nsetInterval(() => console.log('tick'), 50);\nthrow new Error('at start');\n",
    'handled.js': "process.on('uncaughtException', (error, origin) => { console.log('handled', error.message, origin); });\nsetTimeout(() => console.log('ran on'), 50);\nthrow new Error('at start');\n",
    'handled.mjs': "process.on('uncaughtException', (error, origin) => { console.log('handled', error.message, origin); });\nsetTimeout(() => console.log('ran on'), 50);\nthrow new Error('at start');\n",
  });
  for (const file of ['server.js', 'server.mjs', 'handled.js', 'handled.mjs']) {
    const node = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    const live = cli(['run', join(dir, file)], { env: { LIVEMOD_CACHE: tempDir(t) } });
    assert.equal(live.status, node.status, `${file}: ${live.stderr}`);
    assert.equal(live.stdout, node.stdout, file);
  }
});

test('a command file without an extension (bin/tool, #!/usr/bin/env node) runs when named, locally, as a served entry or named in package.json bin, as Node runs it', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'a-tool', bin: { tool: 'bin/tool' } }),
    'bin/tool': "#!/usr/bin/env node\nconst { greet } = require('../lib/greet.js');\nconsole.log(greet(process.argv[2]), require.main === module);\n",
    'lib/greet.js': 'exports.greet = (name) => `hi ${name}`;\n',
  });
  const node = spawnSync(process.execPath, ['bin/tool', 'ann'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  assert.equal(node.stdout, 'hi ann true\n', node.stderr);
  const local = cli(['run', join(dir, 'bin/tool'), '--', 'ann'], { env: { LIVEMOD_CACHE: tempDir(t) } });
  assert.equal(local.status, 0, local.stderr);
  assert.equal(local.stdout, node.stdout);
  const running = await startServer(t);
  running.server.publish(signSnapshot(new SnapshotBuilder(dir, { ...PROGRAM_BUILD, entry: 'bin/tool' }).build().content, running.key));
  const remote = await runAsync(['run', running.url, '--key', running.key.publicKeyString, '--cache', tempDir(t), '--', 'ann'], { cwd: tempDir(t) });
  assert.equal(remote.status, 0, remote.stderr);
  assert.equal(remote.stdout, node.stdout);
  // A command package.json names in bin is in the snapshot of the whole folder: a URL can name it.
  const whole = await startServer(t);
  whole.server.publish(signSnapshot(new SnapshotBuilder(dir, PROGRAM_BUILD).build().content, whole.key));
  const named = await runAsync(['run', `${whole.url}/bin/tool`, '--key', whole.key.publicKeyString, '--cache', tempDir(t), '--', 'ann'], { cwd: tempDir(t) });
  assert.equal(named.status, 0, named.stderr);
  assert.equal(named.stdout, node.stdout);
});

test('a package.json of a subfolder whose "type" changes makes its files change kind at the next start, though the build record held', (t) => {
  const dir = tempDir(t);
  const cache = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'flip-below', type: 'module' }),
    'main.js': "import './lib/kind.js';\n",
    'lib/package.json': JSON.stringify({ type: 'module' }),
    'lib/kind.js': "console.log(typeof require === 'function' ? 'commonjs' : 'module');\n",
  });
  const run = (): string => {
    const result = cli(['run', join(dir, 'main.js')], { env: { LIVEMOD_CACHE: cache } });
    assert.equal(result.status, 0, result.stderr);
    return result.stdout.trim();
  };
  assert.equal(run(), 'module');
  writeFiles(dir, { 'lib/package.json': JSON.stringify({ type: 'commonjs' }) });
  assert.equal(run(), 'commonjs');
  assert.equal(spawnSync(process.execPath, ['main.js'], { cwd: dir, encoding: 'utf8' }).stdout.trim(), 'commonjs', 'as Node runs it');
});

test('editing a live module of a program that also loads CommonJS swaps that module only: the CommonJS modules do not run again', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'mixed', type: 'module' }),
    'util.cjs': 'globalThis.utilRuns = (globalThis.utilRuns ?? 0) + 1;\nexports.runs = () => globalThis.utilRuns;\n',
    'view.js': "export const word = 'first';\nimport.meta.hot.accept();\n",
    'main.js': "import { runs } from './util.cjs';\nimport { word } from './view.js';\nconsole.log('start', word, runs());\nsetInterval(() => console.log('now', word, runs()), 50);\n",
  });
  const run = lineProcess(t, ['run', join(dir, 'main.js'), '--watch', '--cache', tempDir(t)]);
  await run.line(/^start first 1$/);
  writeFiles(dir, { 'view.js': "export const word = 'second';\nimport.meta.hot.accept();\n" });
  assert.equal(await run.line(/^now second /), 'now second 1', 'util.cjs ran once');
  await run.stop();
});

test('a cached version that throws at start under --revalidate background ends, and the fixed version the origin has is stored for the next start; LIVEMOD_DEBUG=1 still ends a failed start', async (t) => {
  const running = await publishedFolder(t, { 'package.json': JSON.stringify({ name: 'fixed-later', type: 'module' }), 'main.js': "setInterval(() => {}, 1000);\nthrow new Error('version one is broken');\n" }, PROGRAM_BUILD);
  const cache = tempDir(t);
  const args = ['run', running.url, '--key', running.key.publicKeyString, '--cache', cache];
  const broken = await runAsync(args, { cwd: tempDir(t), timeoutMs: 30_000 });
  assert.equal(broken.status, 1);
  assert.match(broken.stderr, /version one is broken/);
  const debug = await runAsync(args, { cwd: tempDir(t), env: { LIVEMOD_DEBUG: '1' }, timeoutMs: 30_000 });
  assert.equal(debug.status, 1, 'ended, not left running its interval');
  running.publish({ 'main.js': "console.log('version two');\n" });
  const failed = await runAsync([...args, '--revalidate', 'background'], { cwd: tempDir(t), timeoutMs: 30_000 });
  assert.equal(failed.status, 1, 'the cached version ran, and failed');
  assert.match(failed.stderr, /the origin has version \d+, newer than the cached version \d+ that failed: it is stored, and the next start runs it/);
  const fixed = await runAsync([...args, '--revalidate', 'background', '--offline'], { cwd: tempDir(t), timeoutMs: 30_000 });
  assert.equal(fixed.status, 0, fixed.stderr);
  assert.equal(fixed.stdout, 'version two\n', 'the next start runs the fixed version, from the store');
});

test('a CommonJS file that requires an ES module of the program gets the program\'s one instance of it, as under Node: locally and from a server, as an import or as the entry, and so does a live module\'s createRequire', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'one-instance', version: '1.0.0', type: 'module' }),
    'shared.js': "console.log('shared evaluates');\nexport let count = 0;\nexport function increment() { count += 1; }\nexport class Thing {}\nexport default 'shared default';\n",
    'legacy.cjs': "const shared = require('./shared.js');\nexports.same = (Thing) => shared.Thing === Thing;\nexports.count = () => shared.count;\nexports.inc = () => shared.increment();\nexports.def = shared.default;\n",
    'main.js': "import legacy from './legacy.cjs';\nimport { Thing, increment } from './shared.js';\nincrement();\nlegacy.inc();\nconsole.log(JSON.stringify({ same: legacy.same(Thing), cjsCount: legacy.count(), esmCount: (await import('./shared.js')).count, def: legacy.def }));\n",
    // A CommonJS entry whose require is the first to reach the module: it evaluates then, synchronously.
    'entry.cjs': "console.log('entry starts');\nconst shared = require('./shared.js');\nshared.increment();\nconsole.log('entry', shared.count, typeof shared.Thing, shared.default);\n",
    // A live module's own createRequire of another.
    'creq.js': "import { createRequire } from 'node:module';\nimport { increment, count } from './shared.js';\nconst required = createRequire(import.meta.url)('./shared.js');\nincrement();\nconsole.log('same', required.increment === increment, required.count, count);\n",
  });
  const expected = ['shared evaluates', JSON.stringify({ same: true, cjsCount: 2, esmCount: 2, def: 'shared default' }), ''].join('\n');
  const expectedEntry = ['entry starts', 'shared evaluates', 'entry 1 function shared default', ''].join('\n');
  const expectedCreq = ['shared evaluates', 'same true 1 1', ''].join('\n');
  for (const [file, want] of [['main.js', expected], ['entry.cjs', expectedEntry], ['creq.js', expectedCreq]] as const) {
    const node = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    assert.equal(node.status, 0, node.stderr);
    assert.equal(node.stdout, want, `Node from disk: ${file}`);
    const local = cli(['run', join(dir, file)], { env: { LIVEMOD_CACHE: tempDir(t) } });
    assert.equal(local.status, 0, local.stderr);
    assert.equal(local.stdout, want, `livemod run ${file}`);
  }
  const running = await startServer(t);
  running.server.publish(signSnapshot(new SnapshotBuilder(dir, PROGRAM_BUILD).build().content, running.key));
  for (const [path, want] of [['', expected], ['entry.cjs', expectedEntry], ['creq.js', expectedCreq]] as const) {
    const remote = await runAsync(['run', `${running.url}/${path}`, '--key', running.key.publicKeyString, '--cache', tempDir(t)], { cwd: tempDir(t) });
    assert.equal(remote.status, 0, remote.stderr);
    assert.equal(remote.stdout, want, `livemod run URL/${path}`);
  }
});

test('a CommonJS file\'s require of an ES module fails as Node\'s does: top-level await in its graph (run already or not), a module still evaluating (a cycle), a throw while it evaluates', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'require-esm-errors', type: 'module' }),
    'tla.js': 'await Promise.resolve();\nexport const x = 1;\n',
    'tla-req.cjs': "require('./tla.js');\n",
    'after-tla.js': "import './tla.js';\nimport './tla-req.cjs';\n",
    'cycle.js': "import './cycle-req.cjs';\nexport const y = 2;\n",
    'cycle-req.cjs': "require('./cycle.js');\n",
    'throws.js': "throw new RangeError('thrown while it evaluates');\n",
    'throws-req.cjs': "try { require('./throws.js'); } catch (error) { console.log('first', error.name, error.message); }\ntry { require('./throws.js'); } catch (error) { console.log('again', error.name, error.message); }\n",
  });
  for (const [file, code] of [['tla-req.cjs', 'ERR_REQUIRE_ASYNC_MODULE'], ['after-tla.js', 'ERR_REQUIRE_ASYNC_MODULE'], ['cycle.js', 'ERR_REQUIRE_CYCLE_MODULE']] as const) {
    const node = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    const live = cli(['run', join(dir, file)], { env: { LIVEMOD_CACHE: tempDir(t) } });
    const heading = (stderr: string): string | undefined => stderr.split('\n').find((line) => line.startsWith(`Error [${code}]: `));
    assert.equal(node.status, 1);
    assert.equal(live.status, 1, live.stderr);
    assert.ok(heading(node.stderr), node.stderr);
    assert.equal(heading(live.stderr)!.replaceAll(dir, '<dir>'), heading(node.stderr)!.replaceAll(dir, '<dir>'), `${file}: ${live.stderr}`);
  }
  const node = spawnSync(process.execPath, ['throws-req.cjs'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  assert.equal(node.stdout, 'first RangeError thrown while it evaluates\nagain RangeError thrown while it evaluates\n');
  const live = cli(['run', join(dir, 'throws-req.cjs')], { env: { LIVEMOD_CACHE: tempDir(t) } });
  assert.equal(live.status, 0, live.stderr);
  assert.equal(live.stdout, node.stdout);
});

test('livemod run --watch: a new version of an ES module a CommonJS file required reaches that file too (one instance, swapped in place)', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'required-swap', type: 'module' }),
    'shared.js': "export const word = 'first';\nimport.meta.hot.accept();\n",
    'legacy.cjs': "const shared = require('./shared.js');\nexports.word = () => shared.word;\n",
    'main.js': "import legacy from './legacy.cjs';\nimport { word } from './shared.js';\nconsole.log('start', word, legacy.word());\nsetInterval(() => console.log('now', word, legacy.word()), 50);\n",
  });
  const run = lineProcess(t, ['run', join(dir, 'main.js'), '--watch', '--cache', tempDir(t)]);
  await run.line(/^start first first$/);
  writeFiles(dir, { 'shared.js': "export const word = 'second';\nimport.meta.hot.accept();\n" });
  assert.equal(await run.line(/^now second /), 'now second second');
  await run.stop();
});

test('require.resolve of an ES module of the program only resolves it; a required one loads its graph first (packages, missing modules, attributes) and is keyed by its own path, as under Node', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'required-graph', type: 'module', dependencies: { 'side-pkg': '1.0.0', 'tla-pkg': '1.0.0' } }),
    'shared.js': "import 'side-pkg';\nimport { word } from './word.js';\nconsole.log('shared evaluates', word);\nexport const x = 1;\n",
    'word.js': "console.log('word evaluates');\nexport const word = 'w';\n",
    'resolve.cjs': [
      "const where = require.resolve('./shared.js');",
      "console.log('resolved', where === require('path').join(__dirname, 'shared.js'));",
      "const shared = require('./shared.js');",
      "console.log('cache', Object.keys(require.cache).filter((key) => key.endsWith('shared.js')).map((key) => require('path').basename(key)).join(','), module.children.map((child) => require('path').basename(child.id)).join(','), shared.x);",
      '',
    ].join('\n'),
    'missing.js': "import './not-there.js';\nexport const y = 1;\n",
    'missing.cjs': "try { require('./missing.js'); } catch (error) { console.log(error.code); }\n",
    'data.js': "import data from './data.json';\nexport default data;\n",
    'data.json': '{ "a": 1 }\n',
    'data.cjs': "try { require('./data.js'); } catch (error) { console.log(error.code); }\n",
    'uses-tla.js': "import 'tla-pkg';\nconsole.log('uses-tla evaluates');\n",
    'tla.cjs': "try { require('./uses-tla.js'); } catch (error) { console.log(error.code); }\n",
    'node_modules/side-pkg/package.json': JSON.stringify({ name: 'side-pkg', version: '1.0.0', main: 'index.js' }),
    'node_modules/side-pkg/index.js': "console.log('side-pkg evaluates');\n",
    'node_modules/tla-pkg/package.json': JSON.stringify({ name: 'tla-pkg', version: '1.0.0', type: 'module', exports: './index.js' }),
    'node_modules/tla-pkg/index.js': "await Promise.resolve();\nconsole.log('tla-pkg evaluates');\n",
  });
  const running = await startServer(t);
  running.server.publish(signSnapshot(new SnapshotBuilder(dir, PROGRAM_BUILD).build().content, running.key));
  for (const file of ['resolve.cjs', 'missing.cjs', 'data.cjs', 'tla.cjs']) {
    const node = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    assert.equal(node.status, 0, node.stderr);
    const local = cli(['run', join(dir, file)], { env: { LIVEMOD_CACHE: tempDir(t) } });
    assert.equal(local.status, 0, local.stderr);
    assert.equal(local.stdout, node.stdout, `livemod run ${file}`);
    const remote = await runAsync(['run', `${running.url}/${file}`, '--key', running.key.publicKeyString, '--cache', tempDir(t)], { cwd: tempDir(t) });
    assert.equal(remote.status, 0, remote.stderr);
    assert.equal(remote.stdout, node.stdout, `livemod run URL/${file}`);
  }
});

test('swaps reach what a CommonJS file required: a version changing both sees the new module from the new file, and a change nothing accepts re-runs the CommonJS entry that required it', async (t) => {
  const running = await publishedFolder(t, {
    'package.json': JSON.stringify({ name: 'required-remote', type: 'module' }),
    'shared.js': "export const word = 'v1';\n",
    'entry.cjs': "const shared = require('./shared.js');\nconsole.log(process.pid + ' entry one reads ' + shared.word);\nglobalThis.keep ??= setInterval(() => {}, 1000);\n",
  }, PROGRAM_BUILD);
  const run = lineProcess(t, ['run', `${running.url}/entry.cjs`, '--key', running.key.publicKeyString, '--cache', tempDir(t)]);
  const pid = (await run.line(/ entry one reads v1$/)).split(' ')[0];
  // Only the module changes, and nothing accepts it: the CommonJS file that required it runs again.
  running.publish({ 'shared.js': "export const word = 'v2';\n" });
  assert.equal(await run.line(/ entry one reads v2$/), `${pid} entry one reads v2`);
  // Both change in one version: the new CommonJS file reads the new module.
  running.publish({ 'shared.js': "export const word = 'v3';\n", 'entry.cjs': "const shared = require('./shared.js');\nconsole.log(process.pid + ' entry two reads ' + shared.word);\nglobalThis.keep ??= setInterval(() => {}, 1000);\n" });
  assert.equal(await run.line(/ entry two reads /), `${pid} entry two reads v3`);
  await run.stop();
});

test('a CommonJS file\'s import() of an ES module of the program gets the one instance too, evaluated when the import runs (top-level await included), as under Node', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'imported-once', type: 'module' }),
    'shared.js': "console.log('shared evaluates');\nexport let n = 0;\nexport function inc() { n += 1; }\nexport default 'dflt';\n",
    'tla.js': "console.log('tla evaluates');\nawait Promise.resolve();\nexport const t = 'tla';\n",
    'entry.cjs': [
      "const pending = import('./shared.js');",
      "console.log('after import() call');",
      'pending.then(async (ns) => {',
      '  ns.inc();',
      "  const required = require('./shared.js');",
      "  const again = await import('./shared.js');",
      "  console.log('n', ns.n, required.n, again === ns, required.inc === ns.inc, ns.default);",
      "  console.log((await import('./tla.js')).t);",
      "  try { require('./tla.js'); } catch (error) { console.log(error.code); }",
      '});',
      '',
    ].join('\n'),
  });
  const node = spawnSync(process.execPath, ['entry.cjs'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  assert.equal(node.status, 0, node.stderr);
  assert.equal(node.stdout, ['after import() call', 'shared evaluates', 'n 1 1 true true dflt', 'tla evaluates', 'tla', 'ERR_REQUIRE_ASYNC_MODULE', ''].join('\n'));
  const local = cli(['run', join(dir, 'entry.cjs')], { env: { LIVEMOD_CACHE: tempDir(t) } });
  assert.equal(local.status, 0, local.stderr);
  assert.equal(local.stdout, node.stdout);
  const running = await startServer(t);
  running.server.publish(signSnapshot(new SnapshotBuilder(dir, PROGRAM_BUILD).build().content, running.key));
  const remote = await runAsync(['run', `${running.url}/entry.cjs`, '--key', running.key.publicKeyString, '--cache', tempDir(t)], { cwd: tempDir(t) });
  assert.equal(remote.status, 0, remote.stderr);
  assert.equal(remote.stdout, node.stdout);
});

test('livemod run --watch: an ES module a CommonJS file reaches only through import() is live too, and takes a new version in place', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'imported-live', type: 'module' }),
    'v.js': "export const v = 1;\nimport.meta.hot.accept();\n",
    'entry.cjs': "setInterval(async () => console.log('v ' + (await import('./v.js')).v), 50);\n",
  });
  const run = lineProcess(t, ['run', join(dir, 'entry.cjs'), '--watch', '--cache', tempDir(t)]);
  await run.line(/^v 1$/);
  writeFiles(dir, { 'v.js': "export const v = 2;\nimport.meta.hot.accept();\n" });
  await run.line(/^v 2$/);
  await run.stop();
});

test('a change nothing accepts to an ES module a CommonJS file reaches only through import() re-runs that file, as for a require; --report names it as the importer', async (t) => {
  const running = await publishedFolder(t, {
    'package.json': JSON.stringify({ name: 'imported-unaccepted' }),
    'dyn.mjs': 'export const y = 1;\n',
    'main.cjs': "import('./dyn.mjs').then((ns) => console.log(process.pid + ' value ' + ns.y));\nglobalThis.keep ??= setInterval(() => {}, 1000);\n",
  }, PROGRAM_BUILD);
  const run = lineProcess(t, ['run', `${running.url}/main.cjs`, '--key', running.key.publicKeyString, '--cache', tempDir(t)]);
  const pid = (await run.line(/ value 1$/)).split(' ')[0];
  running.publish({ 'dyn.mjs': 'export const y = 2;\n' });
  assert.equal(await run.line(/ value 2$/), `${pid} value 2`, 'the same process re-ran the file on the new module');
  await run.stop();

  const { dir } = running;
  writeFiles(dir, { 'main.cjs': "const lib = require('./lib.mjs');\nimport('./dyn.mjs').then((ns) => console.log(lib.x + ns.y));\n", 'lib.mjs': 'export const x = 40;\n' });
  const report = cli(['run', join(dir, 'main.cjs'), '--report'], { env: { LIVEMOD_CACHE: tempDir(t) } });
  assert.equal(report.status, 0, report.stderr);
  assert.equal(report.stdout.trim(), '42');
  assert.match(report.stderr, /dyn\.mjs \(dynamic, imported by main\.cjs\)/);
  assert.match(report.stderr, /lib\.mjs \(eager, imported by main\.cjs\) first read at \S*main\.cjs:1:13/);
  assert.ok(!report.stderr.includes('livemod-evaluate:'), report.stderr);
});

// Resolutions replayed: what Node answered when packages resolved from inside their laid-out
// folder is kept beside it, and a later start answers from that record — exactly as Node would
// answer, which is what every test here holds it to, beside Node running the same folder from disk.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { SnapshotBuilder } from '../src/build/index.ts';
import { signSnapshot } from '../src/snapshot/index.ts';
import { runAsync } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { startServer } from './helpers/server-fixtures.ts';

const pkg = (name: string, extra: Record<string, unknown> = {}): string => JSON.stringify({ name, version: '1.0.0', ...extra });

/**
 * A program whose packages resolve every way a record could get wrong: a relative require with
 * extension probing, a bare require, require.resolve with `paths` (the same question as a
 * require, another answer), a package's exports by condition, ESM relative imports, and a
 * Module._resolveFilename a package replaces (ALIAS=1) after the first start.
 */
function writeFixture(dir: string): void {
  writeFiles(dir, {
    'package.json': pkg('replay-app', { type: 'module', dependencies: { 'pkg-a': '1.0.0', 'pkg-f': '1.0.0' } }),
    'main.js': "import a from 'pkg-a';\nimport f from 'pkg-f';\nconsole.log(JSON.stringify({ a, f }));\n",
    'node_modules/pkg-a/package.json': pkg('pkg-a', { main: 'index.js', dependencies: { 'pkg-b': '1.0.0', 'pkg-c': '1.0.0', 'pkg-d': '1.0.0', 'pkg-e': '1.0.0' } }),
    'node_modules/pkg-a/index.js': [
      // Node's CommonJS resolver reads what a package may change: its module's paths, and hooks registered later.
      "if (process.env.PATHS === '1') module.paths.unshift(require('path').join(process.cwd(), 'node_modules'));",
      "if (process.env.REGISTER === '1') require('module').register('data:text/javascript,export async function resolve(s, c, n) { return n(s === \"pkg-e\" ? \"pkg-g\" : s, c); }');",
      'if (process.env.ALIAS === "1") {',
      "  const Module = require('module');",
      '  const node = Module._resolveFilename;',
      "  Module._resolveFilename = function (request, ...rest) { return node.call(this, request === 'pkg-d' ? 'pkg-b' : request, ...rest); };",
      '}',
      "const lib = require('./lib');",
      "const b = require('pkg-b');",
      'let c;',
      "try { c = require.resolve('pkg-c', { paths: [process.cwd()] }); } catch { c = require.resolve('pkg-c'); }",
      "module.exports = { lib, b, c: c.startsWith(process.cwd()) ? 'from the working folder' : 'carried', d: require('pkg-d'), e: require('pkg-e').which, load: require('module')._load.name };",
    ].join('\n'),
    'node_modules/pkg-a/lib.js': "module.exports = 'lib';\n",
    'node_modules/pkg-a/other.js': "module.exports = 'other';\n",
    'node_modules/pkg-b/package.json': pkg('pkg-b'),
    'node_modules/pkg-b/index.js': "module.exports = 'b';\n",
    'node_modules/pkg-c/package.json': pkg('pkg-c'),
    'node_modules/pkg-c/index.js': "module.exports = 'c';\n",
    'node_modules/pkg-d/package.json': pkg('pkg-d'),
    'node_modules/pkg-d/index.js': "module.exports = 'd';\n",
    'node_modules/pkg-e/package.json': pkg('pkg-e', { exports: { '.': { custom: './custom.cjs', import: './import.mjs', require: './require.cjs' } } }),
    'node_modules/pkg-e/custom.cjs': "exports.which = 'custom';\n",
    'node_modules/pkg-e/import.mjs': "export const which = 'import';\n",
    'node_modules/pkg-e/require.cjs': "exports.which = 'require';\n",
    'node_modules/pkg-f/package.json': pkg('pkg-f', { type: 'module', exports: './index.js', dependencies: { 'pkg-e': '1.0.0', 'pkg-g': '1.0.0' } }),
    'node_modules/pkg-g/package.json': pkg('pkg-g'),
    'node_modules/pkg-g/index.js': "exports.which = 'registered';\n",
    // Asked as it runs (a static import is resolved before any package runs, so before pkg-a could register a hook).
    'node_modules/pkg-f/index.js': "import helper from './helper.js';\nconst { which } = await import('pkg-e');\nexport default { e: which, helper };\n",
    'node_modules/pkg-f/helper.js': "export default 'helper';\n",
  });
}

interface Fixture {
  readonly dir: string;
  readonly url: string;
  readonly key: string;
  readonly cache: string;
}

async function serveFixture(t: TestContext): Promise<Fixture> {
  const dir = tempDir(t);
  writeFixture(dir);
  const running = await startServer(t);
  running.server.publish(signSnapshot(new SnapshotBuilder(dir, { program: { externals: 'bundle', external: [] } }).build().content, running.key));
  return { dir, url: running.url, key: running.key.publicKeyString, cache: tempDir(t) };
}

/** The signature of a record made by this Node without resolving flags. */
const PLAIN = /^v\d+\.\d+\.\d+ \[\]$/;

/** The records of the fixture's one package folder, one per signature. */
function recordPaths(cache: string): string[] {
  const folders = readdirSync(join(cache, 'packages'));
  assert.equal(folders.length, 1);
  const folder = join(cache, 'packages', folders[0]!);
  return readdirSync(folder).filter((name) => /^resolutions-[0-9a-f]{16}\.json$/.test(name)).sort().map((name) => join(folder, name));
}

/** The record whose signature matches `signature` (by default, this Node's without flags). */
function recordPath(cache: string, signature: RegExp = PLAIN): string {
  const found = recordPaths(cache).filter((path) => {
    try {
      return signature.test((JSON.parse(readFileSync(path, 'utf8')) as { signature?: string }).signature ?? '');
    } catch {
      return false;
    }
  });
  assert.equal(found.length, 1, `one record with the signature ${signature}: ${recordPaths(cache).join(', ')}`);
  return found[0]!;
}

interface ResolutionsFile {
  kind: string;
  signature: string;
  entries: { [question: string]: string };
}

function readRecord(cache: string, signature?: RegExp): ResolutionsFile {
  return JSON.parse(readFileSync(recordPath(cache, signature), 'utf8')) as ResolutionsFile;
}

/** The question a record keeps for `specifier` asked from `parent` (relative to the folder). */
function question(record: ResolutionsFile, parent: string, specifier: string): string {
  const found = Object.keys(record.entries).find((key) => key.startsWith(`${parent}\n${specifier}\n`));
  assert.ok(found !== undefined, `the record has ${parent} asking for ${specifier}: ${Object.keys(record.entries).join(' | ')}`);
  return found;
}

/** `livemod run` of the fixture and `node main.js` of its folder, from `cwd`, with `env` and Node flags: both outputs. */
async function both(fixture: Fixture, cwd: string, env: { [name: string]: string } = {}, flags: string[] = []): Promise<{ live: unknown; node: unknown }> {
  const run = await runAsync(['run', fixture.url, '--key', fixture.key, '--cache', fixture.cache], { cwd, env, node: flags });
  assert.equal(run.status, 0, run.stderr);
  const node = spawnSync(process.execPath, [...flags, join(fixture.dir, 'main.js')], { cwd, env: { ...process.env, ...env }, encoding: 'utf8' });
  assert.equal(node.status, 0, node.stderr);
  return { live: JSON.parse(run.stdout.trim().split('\n').at(-1)!), node: JSON.parse(node.stdout) };
}

const CARRIED = { a: { lib: 'lib', b: 'b', c: 'carried', d: 'd', e: 'require', load: '' }, f: { e: 'import', helper: 'helper' } };

test('a start records what Node answered inside the package folder; the next starts answer from it, and still as Node does where the question is not the same', async (t) => {
  const fixture = await serveFixture(t);
  const first = await both(fixture, tempDir(t));
  assert.deepEqual(first.live, CARRIED);
  assert.deepEqual(first.live, first.node);

  const record = readRecord(fixture.cache);
  assert.equal(record.kind, 'livemod-resolutions');
  assert.match(record.signature, PLAIN);
  assert.equal(recordPaths(fixture.cache).length, 1);
  assert.equal(record.entries[question(record, 'node_modules/pkg-a/index.js', './lib')], 'node_modules/pkg-a/lib.js\n');
  assert.match(record.entries[question(record, 'node_modules/pkg-f/index.js', 'pkg-e')]!, /^node_modules\/pkg-e\/import\.mjs\nmodule$/);
  assert.match(question(record, 'node_modules/pkg-a/index.js', 'pkg-e'), /\nrequire,/);
  assert.ok(!Object.keys(record.entries).some((key) => key.includes('\npkg-c\n')), 'require.resolve is asked of Node, never recorded');

  // Answered from the record: an answer moved to another file of the folder is what runs.
  const moved = { ...record, entries: { ...record.entries, [question(record, 'node_modules/pkg-a/index.js', './lib')]: 'node_modules/pkg-a/other.js\n' } };
  writeFileSync(recordPath(fixture.cache), JSON.stringify(moved));
  const replayed = await runAsync(['run', fixture.url, '--key', fixture.key, '--cache', fixture.cache], { cwd: tempDir(t) });
  assert.equal(replayed.status, 0, replayed.stderr);
  assert.equal((JSON.parse(replayed.stdout.trim().split('\n').at(-1)!) as typeof CARRIED).a.lib, 'other');
  writeFileSync(recordPath(fixture.cache), JSON.stringify(record));

  // require.resolve with paths, and a Module._resolveFilename the program replaced: Node's answers, not the record's.
  const working = tempDir(t);
  writeFiles(working, { 'node_modules/pkg-c/package.json': pkg('pkg-c'), 'node_modules/pkg-c/index.js': "module.exports = 'local c';\n" });
  const second = await both(fixture, working, { ALIAS: '1' });
  assert.deepEqual(second.live, { ...CARRIED, a: { ...CARRIED.a, c: 'from the working folder', d: 'b' } });
  assert.deepEqual(second.live, second.node);

  // A package that puts a folder before its own in module.paths, and one that registers module.register() hooks: Node's answers.
  const withB = tempDir(t);
  writeFiles(withB, { 'node_modules/pkg-b/package.json': pkg('pkg-b'), 'node_modules/pkg-b/index.js': "module.exports = 'local b';\n" });
  const paths = await both(fixture, withB, { PATHS: '1' });
  assert.deepEqual(paths.live, { ...CARRIED, a: { ...CARRIED.a, b: 'local b' } });
  assert.deepEqual(paths.live, paths.node);
  const registered = await both(fixture, tempDir(t), { REGISTER: '1' });
  assert.deepEqual(registered.live, { ...CARRIED, f: { ...CARRIED.f, e: 'registered' } });
  assert.deepEqual(registered.live, registered.node);

  // Other conditions: another signature, so the record is not replayed; Node's answers again,
  // kept in a record of their own beside the first, which stays as it was (two Nodes, or two
  // sets of flags, sharing a store do not write over each other's record at every start).
  const plainBefore = readFileSync(recordPath(fixture.cache), 'utf8');
  const custom = await both(fixture, tempDir(t), {}, ['--conditions=custom']);
  assert.deepEqual(custom.live, { ...CARRIED, a: { ...CARRIED.a, e: 'custom' }, f: { ...CARRIED.f, e: 'custom' } });
  assert.deepEqual(custom.live, custom.node);
  assert.equal(recordPaths(fixture.cache).length, 2);
  assert.ok(Object.keys(readRecord(fixture.cache, /\["--conditions=custom"\]$/).entries).length > 0);
  assert.equal(readFileSync(recordPath(fixture.cache), 'utf8'), plainBefore);
  // Flags that change no answer (a profiler, memory sizes) keep the signature: the first record is replayed.
  writeFileSync(recordPath(fixture.cache), JSON.stringify(moved));
  const plain = await both(fixture, tempDir(t), {}, ['--max-old-space-size=512']);
  assert.deepEqual(plain.live, { ...CARRIED, a: { ...CARRIED.a, lib: 'other' } });
  writeFileSync(recordPath(fixture.cache), plainBefore);
  // Code preloaded before livemod (--require) may hook or patch the resolver first: nothing is replayed, or recorded.
  const preload = join(tempDir(t), 'preload.cjs');
  writeFileSync(preload, 'globalThis.preloaded = true;\n');
  const before = readFileSync(recordPath(fixture.cache), 'utf8');
  writeFileSync(recordPath(fixture.cache), JSON.stringify(moved));
  const preloaded = await both(fixture, tempDir(t), {}, ['--require', preload]);
  assert.deepEqual(preloaded.live, CARRIED, 'the moved answer was not replayed');
  assert.equal(readFileSync(recordPath(fixture.cache), 'utf8'), JSON.stringify(moved), 'nor the record written');
  writeFileSync(recordPath(fixture.cache), before);
});

test('a damaged or hostile record is never followed out of its folder: answers that leave it are dropped, one that does not parse is read as empty, and it is written again', async (t) => {
  const fixture = await serveFixture(t);
  assert.deepEqual((await both(fixture, tempDir(t))).live, CARRIED);
  const record = readRecord(fixture.cache);
  const lib = question(record, 'node_modules/pkg-a/index.js', './lib');
  const pkgB = question(record, 'node_modules/pkg-a/index.js', 'pkg-b');
  const outside = tempDir(t);
  writeFiles(outside, { 'evil.js': "module.exports = 'evil';\n" });
  const depth = '../'.repeat(12);
  const hostile = {
    ...record,
    entries: {
      ...record.entries,
      [lib]: `${depth}${outside.slice(1)}/evil.js\n`,
      [pkgB]: `node_modules/pkg-b/%2e%2e/%2E%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/${outside.slice(1)}/evil.js\n`,
      [question(record, 'node_modules/pkg-a/index.js', 'pkg-d')]: 'node_modules/pkg-d/index.js\nwasm\n',
      // Never asked, so only the read drops it (the record written again is what the read kept): dot segments, not encoded.
      [`${lib}-unencoded`]: `node_modules/pkg-b/${depth}${outside.slice(1)}/evil.js\n`,
      // The URL parser drops tabs and line breaks: `.\t.` would read as `..`.
      [question(record, 'node_modules/pkg-f/index.js', './helper.js')]: `node_modules/${'.\t./'.repeat(12)}${outside.slice(1)}/evil.js\nmodule`,
      [question(record, 'node_modules/pkg-f/index.js', 'pkg-e')]: `node_modules/${'.\r./'.repeat(12)}${outside.slice(1)}/evil.js\nmodule`,
      'not a question': 42,
    },
  };
  writeFileSync(recordPath(fixture.cache), JSON.stringify(hostile));
  const after = await both(fixture, tempDir(t));
  assert.deepEqual(after.live, CARRIED);
  const rewritten = readFileSync(recordPath(fixture.cache), 'utf8');
  assert.ok(!rewritten.includes('evil'), 'the answers that left the folder were dropped and the record written again');
  assert.equal(readRecord(fixture.cache).entries[lib], 'node_modules/pkg-a/lib.js\n');

  for (const damaged of ['{"kind":"livemod-resolutions","signature":', '[]', 'null', JSON.stringify({ ...record, kind: 'other' })]) {
    writeFileSync(recordPath(fixture.cache), damaged);
    assert.deepEqual((await both(fixture, tempDir(t))).live, CARRIED, damaged);
    assert.equal(readRecord(fixture.cache).entries[lib], 'node_modules/pkg-a/lib.js\n', `${damaged}: written again`);
  }
});

test('records of other signatures are kept beside each other, up to eight: a new one replaces the one used longest ago', async (t) => {
  const fixture = await serveFixture(t);
  assert.deepEqual((await both(fixture, tempDir(t))).live, CARRIED);
  const [plain] = recordPaths(fixture.cache);
  const folder = dirname(plain!);
  // Seven records of other Nodes, used long ago, the first the oldest; and the one file of a store before records per signature.
  const others = Array.from({ length: 7 }, (_, index) => join(folder, `resolutions-${String(index).repeat(16)}.json`));
  others.forEach((path, index) => {
    writeFileSync(path, JSON.stringify({ kind: 'livemod-resolutions', signature: `another Node ${index} []`, entries: {} }));
    utimesSync(path, new Date(2000, 0, 2 + index), new Date(2000, 0, 2 + index));
  });
  writeFileSync(join(folder, 'resolutions.json'), JSON.stringify({ kind: 'livemod-resolutions', signature: 'v1.0.0 []', entries: {} }));
  // This Node's record was written before all of them, but a start that replays it marks it used.
  utimesSync(plain!, new Date(2000, 0, 1), new Date(2000, 0, 1));
  assert.deepEqual((await both(fixture, tempDir(t))).live, CARRIED);
  assert.ok(statSync(plain!).mtimeMs > new Date(2001, 0, 1).getTime(), 'replaying the record marked it used');
  assert.equal(recordPaths(fixture.cache).length, 8);
  const custom = await both(fixture, tempDir(t), {}, ['--conditions=custom']);
  assert.deepEqual(custom.live, custom.node);
  const kept = recordPaths(fixture.cache);
  assert.equal(kept.length, 8);
  assert.ok(!kept.includes(others[0]!), 'the record used longest ago made room');
  assert.ok(kept.includes(plain!) && others.slice(1).every((path) => kept.includes(path)));
  assert.ok(!readdirSync(folder).includes('resolutions.json'), 'the old single record went too');
  assert.ok(Object.keys(readRecord(fixture.cache, /\["--conditions=custom"\]$/).entries).length > 0);
});

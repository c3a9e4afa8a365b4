import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openManifest, parsePublicKey, sha256Hex } from '../src/snapshot/index.ts';
import { BIN, cli } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';

const EXAMPLE = new URL('../examples/hello', import.meta.url).pathname;

test('--help is complete for every command and exits 0; usage errors exit 2', () => {
  const top = cli(['--help']);
  assert.equal(top.status, 0);
  for (const command of ['keygen', 'publish', 'serve', 'run', 'cache', 'demo']) assert.match(top.stdout, new RegExp(`\\b${command}\\b`));
  const expected: Record<string, string[]> = {
    keygen: ['--out', '--json'],
    publish: ['--out', '--key', '--name', '--strict', '--entry', '--max-file-size', '--max-total-size', '--expires', '--s3-endpoint', '--s3-region', '--s3-path-style', 'AWS_ACCESS_KEY_ID', '--json'],
    serve: ['--port', '--host', '--key', '--name', '--token', '--tls-cert', '--tls-key', '--watch', '--strict', '--entry', '--max-file-size', '--max-total-size', '--expires', '--json'],
    run: ['--key', '--app', '--token', '--offline', '--max-stale', '--cache', '--timeout', '--quiet'],
    cache: ['ls', 'verify', 'prune', 'forget'],
    demo: ['--port', '--once'],
  };
  for (const [command, flags] of Object.entries(expected)) {
    const help = cli([command, '--help']);
    assert.equal(help.status, 0);
    for (const flag of flags) assert.ok(help.stdout.includes(flag), `${command} --help mentions ${flag}`);
  }
  assert.equal(cli(['no-such-command']).status, 2);
  assert.equal(cli(['publish']).status, 2, 'missing argument');
  assert.equal(cli(['serve', EXAMPLE, '--port', 'http']).status, 2, 'bad port');
  const json = cli(['publish', EXAMPLE, '--key', 'x', '--json']);
  assert.equal(json.status, 2);
  assert.equal(JSON.parse(json.stdout).error.code, 'ERR_LIVEMOD_USAGE');
});

test('keygen writes a 0600 key, prints the public key, and never overwrites', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'publisher.key');
  const made = cli(['keygen', '--out', file]);
  assert.equal(made.status, 0, made.stderr);
  const publicKey = made.stdout.trim();
  assert.match(publicKey, /^ed25519:[A-Za-z0-9_-]{43}$/);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const before = readFileSync(file);
  const again = cli(['keygen', '--out', file, '--json']);
  assert.equal(again.status, 1);
  assert.equal(JSON.parse(again.stdout).error.code, 'ERR_LIVEMOD_KEY_EXISTS');
  assert.deepEqual(readFileSync(file), before, 'key untouched');
  const json = cli(['keygen', '--out', join(dir, 'b.key'), '--json']);
  assert.deepEqual(Object.keys(JSON.parse(json.stdout)).sort(), ['file', 'keyId', 'publicKey']);
  assert.equal(cli(['keygen', '--out', join(dir, 'missing-dir', 'k.key')]).status, 1);
});

test('publish: the printed public key verifies the manifest; any changed byte of manifest or blob is caught', (t) => {
  const dir = tempDir(t);
  const key = join(dir, 'k.key');
  const publicKey = parsePublicKey(cli(['keygen', '--out', key]).stdout);
  const out = join(dir, 'out');
  const published = cli(['publish', EXAMPLE, '--out', out, '--key', key, '--json']);
  assert.equal(published.status, 0, published.stderr);
  const summary = JSON.parse(published.stdout);
  assert.equal(summary.modules, 5);
  assert.equal(summary.entry, 'main.ts');

  const bytes = readFileSync(join(out, 'manifest.json'));
  const manifest = openManifest(bytes, publicKey, 'test');
  assert.equal(manifest.version, summary.version);
  for (let index = 0; index < bytes.length; index += 1) {
    const copy = Buffer.from(bytes);
    copy[index] = copy[index]! ^ 0x01;
    assert.throws(() => openManifest(copy, publicKey, 'test'), (error: NodeJS.ErrnoException) => /^ERR_LIVEMOD_(SIGNATURE_INVALID|MANIFEST_INVALID|WRONG_KEY)$/.test(error.code!), `flipping byte ${index} is detected`);
  }
  const pack = readFileSync(join(out, manifest.pack!.path));
  assert.equal(sha256Hex(pack), manifest.pack!.hash);
  for (const [path, record] of Object.entries(manifest.modules)) {
    const blob = readFileSync(join(out, 'blobs', record.blob.hash));
    assert.equal(sha256Hex(blob), record.blob.hash, `${path} blob file`);
    assert.deepEqual(pack.subarray(record.blob.offset!, record.blob.offset! + record.blob.size), blob, `${path} in pack`);
    for (let index = 0; index < blob.length; index += Math.max(1, Math.floor(blob.length / 50))) {
      const copy = Buffer.from(blob);
      copy[index] = copy[index]! ^ 0x01;
      assert.notEqual(sha256Hex(copy), record.blob.hash);
    }
  }
  const again = JSON.parse(cli(['publish', EXAMPLE, '--out', out, '--key', key, '--json']).stdout);
  assert.ok(again.version > summary.version, 'versions only go up');
  assert.equal(again.blobsWritten, 0, 'unchanged blobs are not rewritten');
});

test('a private key file that group or others can read is refused, saying how to fix it', (t) => {
  const dir = tempDir(t);
  const key = join(dir, 'k.key');
  assert.equal(cli(['keygen', '--out', key]).status, 0);
  assert.equal(statSync(key).mode & 0o777, 0o600, 'keygen writes 0600');
  const publish = ['publish', EXAMPLE, '--out', join(dir, 'out')];
  for (const [mode, command] of [[0o640, publish], [0o604, publish], [0o644, ['serve', EXAMPLE, '--port', '0']]] as const) {
    chmodSync(key, mode);
    const refused = cli([...command, '--key', key, '--json']);
    assert.equal(refused.status, 1, `${command[0]} with mode ${mode.toString(8)}`);
    const { error } = JSON.parse(refused.stdout.trim().split('\n').at(-1)!);
    assert.equal(error.code, 'ERR_LIVEMOD_KEY_PERMISSIONS');
    assert.match(error.message, new RegExp(`key file ${key} has mode 0${mode.toString(8)}: group or others may read it.*run \`chmod 600 ${key}\``));
  }
  assert.equal(existsSync(join(dir, 'out')), false, 'nothing was published');
  chmodSync(key, 0o600);
  assert.equal(cli(['publish', EXAMPLE, '--out', join(dir, 'out'), '--key', key]).status, 0);
});

test('publish --out where no folder can be made fails at once with OUT_INVALID', { skip: !existsSync('/proc/self') && 'needs /proc' }, (t) => {
  const dir = tempDir(t);
  const key = join(dir, 'k.key');
  cli(['keygen', '--out', key]);
  const started = performance.now();
  const result = cli(['publish', EXAMPLE, '--out', '/proc/livemod-x/out', '--key', key, '--json']);
  assert.equal(result.status, 1);
  assert.equal(JSON.parse(result.stdout).error.code, 'ERR_LIVEMOD_OUT_INVALID');
  assert.match(JSON.parse(result.stdout).error.message, /cannot create the folder \/proc\/livemod-x \(ENOENT\)/);
  assert.ok(performance.now() - started < 30_000, 'it did not spin');
  writeFileSync(join(dir, 'file'), '');
  assert.match(JSON.parse(cli(['publish', EXAMPLE, '--out', join(dir, 'file', 'out'), '--key', key, '--json']).stdout).error.message, /is not a folder/);
});

test('publish refuses bad input with nothing half-written', (t) => {
  const dir = tempDir(t);
  const key = join(dir, 'k.key');
  cli(['keygen', '--out', key]);
  const otherKey = join(dir, 'other.key');
  cli(['keygen', '--out', otherKey]);
  writeFileSync(join(dir, 'garbage.key'), 'not a key', { mode: 0o600 });
  const bad = cli(['publish', EXAMPLE, '--out', join(dir, 'o1'), '--key', join(dir, 'garbage.key'), '--json']);
  assert.equal(bad.status, 1);
  assert.equal(JSON.parse(bad.stdout).error.code, 'ERR_LIVEMOD_KEY_INVALID');
  assert.equal(JSON.parse(cli(['publish', EXAMPLE, '--out', join(dir, 'o1'), '--key', join(dir, 'none.key'), '--json']).stdout).error.code, 'ERR_LIVEMOD_KEY_MISSING');

  const notEmpty = join(dir, 'not-empty');
  writeFiles(notEmpty, { 'index.html': '<p>hi</p>' });
  const refused = cli(['publish', EXAMPLE, '--out', notEmpty, '--key', key, '--json']);
  assert.equal(JSON.parse(refused.stdout).error.code, 'ERR_LIVEMOD_OUT_INVALID');
  assert.deepEqual(readdirSync(notEmpty), ['index.html']);

  const out = join(dir, 'out');
  assert.equal(cli(['publish', EXAMPLE, '--out', out, '--key', key]).status, 0);
  const manifestBefore = readFileSync(join(out, 'manifest.json'));
  const otherPublisher = cli(['publish', EXAMPLE, '--out', out, '--key', otherKey, '--json']);
  assert.equal(JSON.parse(otherPublisher.stdout).error.code, 'ERR_LIVEMOD_OUT_INVALID');
  assert.deepEqual(readFileSync(join(out, 'manifest.json')), manifestBefore);

  const tree = join(dir, 'tree');
  writeFiles(tree, { 'main.ts': `import './missing';` });
  const strictOut = join(dir, 'strict-out');
  const strict = cli(['publish', tree, '--out', strictOut, '--key', key, '--strict', '--json']);
  assert.equal(strict.status, 1);
  assert.equal(JSON.parse(strict.stdout).error.code, 'ERR_LIVEMOD_UNRESOLVED_IMPORT');
  assert.equal(existsSync(join(strictOut, 'manifest.json')), false);
  const lenient = cli(['publish', tree, '--out', strictOut, '--key', key]);
  assert.equal(lenient.status, 0);
  assert.match(lenient.stderr, /main\.ts:1:\d+: cannot resolve "\.\/missing"/);

  assert.equal(cli(['publish', EXAMPLE, '--out', join(dir, 'o2'), '--key', key, '--max-file-size', 'lots']).status, 2);
  assert.equal(cli(['publish', EXAMPLE, '--out', join(dir, 'o2'), '--key', key, '--expires', 'forever']).status, 2);
  assert.equal(cli(['publish', join(dir, 'nope'), '--out', join(dir, 'o3'), '--key', key]).status, 1);
  assert.equal(existsSync(join(dir, 'o3')), false, 'a failed build creates no output folder');
});

test('the built-in demo (npm start) serves the example and runs a client of it', () => {
  const demo = cli(['demo', '--once', '--port', '0']);
  assert.equal(demo.status, 0, demo.stderr);
  assert.match(demo.stdout, /^hello, .+! \(tick 1\)$/m);
  assert.match(demo.stderr, /status page: http:\/\/127\.0\.0\.1:\d+\//);
});

test('empty arguments, a file as --out, and --json after -- are handled as usage and not mixed up', (t) => {
  const dir = tempDir(t);
  const key = join(dir, 'k.key');
  cli(['keygen', '--out', key]);
  const empty = cli(['keygen', '--out', '', '--json']);
  assert.equal(empty.status, 2);
  assert.match(JSON.parse(empty.stdout).error.message, /empty \(the value of --out\)/);
  assert.equal(cli(['run', '']).status, 2);
  writeFileSync(join(dir, 'afile'), 'x');
  const file = cli(['publish', EXAMPLE, '--out', join(dir, 'afile'), '--key', key, '--json']);
  assert.equal(file.status, 1);
  assert.equal(JSON.parse(file.stdout).error.code, 'ERR_LIVEMOD_OUT_INVALID');
  writeFiles(dir, { 'prog/main.js': 'throw new Error("the program failed");' });
  const after = cli(['run', join(dir, 'prog', 'main.js'), '--', '--json']);
  assert.equal(after.status, 1);
  assert.equal(after.stdout, '', 'a --json meant for the program does not make livemod print JSON');
});

/** A Node older than livemod needs, if this machine has one (its own system Node, say). */
function oldNode(): string | null {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node', '/bin/node']) {
    if (!existsSync(candidate)) continue;
    const version = spawnSync(candidate, ['--version'], { encoding: 'utf8' }).stdout.trim();
    if (Number(/^v(\d+)/.exec(version)?.[1] ?? 99) < 24) return candidate;
  }
  return null;
}

const OLD_NODE = oldNode();

test('on a Node older than 24 every command exits 1 with one line naming both versions, before loading anything', { skip: OLD_NODE === null && 'no Node older than 24 on this machine' }, () => {
  for (const args of [['--version'], ['run', './x.ts'], ['serve', '.']]) {
    const result = spawnSync(OLD_NODE!, [BIN, ...args], { encoding: 'utf8' });
    assert.equal(result.status, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^\[livemod\] this is Node v\d+\.\d+\.\d+; livemod needs Node 24 or newer .*\[ERR_LIVEMOD_NODE_VERSION\]\n$/);
  }
});

test('--version answers without loading the commands', () => {
  const result = cli(['--version']);
  assert.equal(result.status, 0);
  assert.equal(result.stdout, `${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\n`);
});

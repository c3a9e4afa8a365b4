// livemod.config.ts: a project's config file, read by run, serve and publish from the working
// folder; flags override it; a wrong field is one line naming it (ERR_LIVEMOD_CONFIG_INVALID).
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { generatePublisherKey, privateKeyToPem } from '../src/snapshot/index.ts';
import { cli } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { startHost } from './helpers/static-host.ts';

const PROGRAM = {
  'heavy.ts': "console.log('heavy'); export const answer = 42;",
  'vendor/early.ts': "console.log('early'); export const e = 1;",
  'main.ts': "import { answer } from './heavy.ts';\nimport { e } from './vendor/early.ts';\nconsole.log('main');\nconsole.log(`answer ${answer + e}`);",
};

function keyFile(dir: string): { file: string; publicKey: string } {
  const key = generatePublisherKey();
  writeFiles(dir, { 'publisher.key': privateKeyToPem(key) });
  chmodSync(join(dir, 'publisher.key'), 0o600);
  return { file: join(dir, 'publisher.key'), publicKey: key.publicKeyString };
}

test('lazy and eager rules from livemod.config.ts (importing defineConfig from livemod with no node_modules)', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    ...PROGRAM,
    'livemod.config.ts': `import { defineConfig } from 'livemod';
      export default defineConfig({ lazy: 'normal', eager: { prefixes: ['./vendor/'], filter: (importer: string, specifier: string) => specifier === './never.ts' } });`,
  });
  assert.equal(existsSync(join(dir, 'node_modules')), false);
  const run = cli(['run', './main.ts', '--cache', tempDir(t)], { cwd: dir });
  assert.equal(run.status, 0, run.stderr);
  // vendor/ stays eager by prefix; heavy waits for its first read.
  assert.deepEqual(run.stdout.trim().split('\n'), ['early', 'main', 'heavy', 'answer 43']);
});

test('eager.modules and eager.filter keep named imports eager; a .json config works too', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { ...PROGRAM, 'livemod.config.mjs': "export default { lazy: 'normal', eager: { filter: (importer, specifier) => importer === 'main.ts' && specifier === './heavy.ts', modules: ['vendor/early.ts'] } };" });
  const run = cli(['run', './main.ts', '--cache', tempDir(t)], { cwd: dir });
  assert.deepEqual(run.stdout.trim().split('\n'), ['heavy', 'early', 'main', 'answer 43'], run.stderr);
  const json = tempDir(t);
  writeFiles(json, { ...PROGRAM, 'livemod.config.json': '{"lazy":"normal"}' });
  const lazy = cli(['run', './main.ts', '--cache', tempDir(t)], { cwd: json });
  assert.deepEqual(lazy.stdout.trim().split('\n'), ['main', 'heavy', 'early', 'answer 43'], lazy.stderr);
});

test('build options from the config, and a flag overriding one', (t) => {
  const dir = tempDir(t);
  const { file } = keyFile(tempDir(t));
  writeFiles(dir, {
    ...PROGRAM,
    'notes/draft.txt': 'not published',
    'big.txt': 'x'.repeat(3000),
    'livemod.config.ts': "export default { build: { name: 'from-config', exclude: ['notes/'], maxFileSize: '2KiB', expires: '2d' } };",
  });
  const out = join(tempDir(t), 'out');
  const published = cli(['publish', '.', '--out', out, '--key', file, '--json'], { cwd: dir });
  assert.equal(published.status, 0, published.stderr);
  const text = readFileSync(join(out, 'manifest.json'), 'utf8');
  assert.match(text, /"name":"from-config"/);
  assert.doesNotMatch(text, /notes\/draft\.txt/, 'build.exclude applied');
  assert.match(published.stderr, /skipped big\.txt/, 'build.maxFileSize applied');
  const expires = Date.parse(/"expires":"([^"]+)"/.exec(text)![1]!);
  assert.ok(Math.abs(expires - Date.now() - 2 * 86_400_000) < 3_600_000, 'build.expires applied');
  const overridden = join(tempDir(t), 'out');
  const flag = cli(['publish', '.', '--out', overridden, '--key', file, '--name', 'from-flag'], { cwd: dir });
  assert.equal(flag.status, 0, flag.stderr);
  assert.match(readFileSync(join(overridden, 'manifest.json'), 'utf8'), /"name":"from-flag"/);
});

test('origins from the config give run its key, after flags and env', async (t) => {
  const source = tempDir(t);
  writeFiles(source, { 'main.ts': "console.log('from the host');" });
  const { file, publicKey } = keyFile(tempDir(t));
  const out = join(tempDir(t), 'site');
  assert.equal(cli(['publish', source, '--out', out, '--key', file]).status, 0);
  const host = await startHost(t, out);
  const project = tempDir(t);
  writeFiles(project, { 'livemod.config.json': JSON.stringify({ origins: { [host.url]: { key: publicKey } } }) });
  const { runAsync } = await import('./helpers/cli.ts');
  const run = await runAsync(['run', `${host.url}main.ts`, '--cache', tempDir(t), '--once'], { cwd: project, env: { LIVEMOD_KEY: undefined, LIVEMOD_CONFIG: undefined, XDG_CONFIG_HOME: project } });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), 'from the host');
  const wrongEnv = await runAsync(['run', `${host.url}main.ts`, '--cache', tempDir(t), '--once'], { cwd: project, env: { LIVEMOD_KEY: generatePublisherKey().publicKeyString, LIVEMOD_CONFIG: undefined, XDG_CONFIG_HOME: project } });
  assert.equal(wrongEnv.status, 1, 'the env key comes before the config');
  assert.match(wrongEnv.stderr, /ERR_LIVEMOD_(WRONG_KEY|SIGNATURE_INVALID)/);
});

test('an invalid config is one line naming the field, for run, serve and publish alike', (t) => {
  const cases: [string, string, RegExp][] = [
    ['livemod.config.json', '{"lazzy":"normal"}', /livemod\.config\.json: lazzy is not a config field; the fields are lazy, eager, build, origins/],
    ['livemod.config.json', '{"lazy":"sometimes"}', /lazy "sometimes" is not a mode; write "normal", "all" or "none"/],
    ['livemod.config.json', '{"build":{"maxFileSize":"big"}}', /build\.maxFileSize "big" is not a size/],
    ['livemod.config.json', '{"build":{"exclude":"notes/"}}', /build\.exclude must be an array of non-empty strings/],
    ['livemod.config.json', '{"build":{"expires":"soon"}}', /build\.expires "soon" is not a duration/],
    ['livemod.config.json', '{"eager":{"filter":"x"}}', /eager\.filter must be a function/],
    ['livemod.config.json', '{"origins":{"https://a/":{"key":7}}}', /origins\["https:\/\/a\/"\]\.key must be a non-empty string/],
    ['livemod.config.json', '{ not json', /livemod\.config\.json: is not JSON/],
    ['livemod.config.ts', "throw new Error('boom');", /livemod\.config\.ts: failed to load \(boom\)/],
    ['livemod.config.ts', 'export const x = 1;', /has no default export/],
    ['livemod.config.mjs', 'export default 42;', /the default export must be an object/],
  ];
  const { file } = keyFile(tempDir(t));
  for (const [name, text, message] of cases) {
    const dir = tempDir(t);
    writeFiles(dir, { ...PROGRAM, [name]: text });
    for (const args of [['run', './main.ts', '--cache', tempDir(t)], ['publish', '.', '--out', join(tempDir(t), 'out'), '--key', file]]) {
      const result = cli(args, { cwd: dir });
      assert.equal(result.status, 1, `${name} ${text} (${args[0]}): ${result.stderr}`);
      assert.match(result.stderr, message, `${text} (${args[0]})`);
      assert.match(result.stderr, /\[ERR_LIVEMOD_CONFIG_INVALID\]$/m);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    }
  }
  const two = tempDir(t);
  writeFiles(two, { ...PROGRAM, 'livemod.config.json': '{}', 'livemod.config.ts': 'export default {};' });
  const both = cli(['serve', '.', '--port', '0'], { cwd: two });
  assert.equal(both.status, 1);
  assert.match(both.stderr, /livemod\.config\.ts and livemod\.config\.json are both in .*; keep one/);
});

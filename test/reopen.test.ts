// Re-opening a stored manifest a start has checked before (snapshot/seal.ts): the parse alone,
// with the packages value, nearly all of a program's manifest, left unparsed until it is read.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { SnapshotBuilder } from '../src/build/index.ts';
import { generatePublisherKey, openManifest, packagesRange, parsePublicKey, readEnvelope, reopenManifest, signSnapshot } from '../src/snapshot/index.ts';
import { rejectsWithCode } from './helpers/assert.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';

// A program whose own files include one named `packages` (a nested key of that name before the
// top-level one), and a package whose source holds quotes, escapes and brackets in strings.
const PROGRAM = {
  'package.json': JSON.stringify({ name: 'reopen', type: 'module', dependencies: { dep: '1.0.0' } }),
  'main.js': "import dep from 'dep';\nexport const value = dep;\n",
  packages: 'a file named like the member\n',
  'node_modules/dep/package.json': JSON.stringify({ name: 'dep', version: '1.0.0', type: 'module', exports: './index.js' }),
  'node_modules/dep/index.js': 'export default { text: "\\"packages\\":{ [ } ] \\\\", other: \'}\' };\n',
  'node_modules/dep/"odd" name {x}.txt': 'a file name with quotes and braces\n',
};

function sealed(t: TestContext) {
  const dir = tempDir(t);
  writeFiles(dir, PROGRAM);
  const publisher = generatePublisherKey();
  const snapshot = signSnapshot(new SnapshotBuilder(dir, { program: { externals: 'bundle', external: [] } }).build().content, publisher);
  return { bytes: snapshot.sealed.bytes, key: parsePublicKey(publisher.publicKeyString) };
}

test('packagesRange finds the top-level packages value, past a nested member of that name and strings full of brackets', (t) => {
  const { bytes, key } = sealed(t);
  const full = openManifest(bytes, key, 'test');
  assert.ok(full.files?.packages, 'the program has a file named packages');
  const range = packagesRange(bytes, 'test');
  assert.ok(range);
  const { signed } = readEnvelope(bytes, 'test');
  assert.deepEqual(JSON.parse(signed.toString('utf8', range[0], range[1])), full.packages);
  // A snapshot of modules alone has no packages member.
  const dir = tempDir(t);
  writeFiles(dir, { 'main.js': 'export const one = 1;\n' });
  const publisher = generatePublisherKey();
  assert.equal(packagesRange(signSnapshot(new SnapshotBuilder(dir).build().content, publisher).sealed.bytes, 'test'), null);
});

test('reopenManifest with the range: the same manifest, its packages parsed when first read; a range that is no object is ignored', async (t) => {
  const { bytes, key } = sealed(t);
  const full = openManifest(bytes, key, 'test');
  const range = packagesRange(bytes, 'test')!;
  const reopened = reopenManifest(bytes, key, 'test', range);
  assert.equal(typeof Object.getOwnPropertyDescriptor(reopened, 'packages')!.get, 'function', 'not parsed yet');
  assert.deepEqual(Object.keys(reopened), Object.keys(full), 'the members in the same order');
  assert.deepEqual(reopened.packages, full.packages);
  assert.equal(Object.getOwnPropertyDescriptor(reopened, 'packages')!.get, undefined, 'parsed once, then a plain value');
  assert.deepEqual(reopened, full);
  assert.deepEqual(reopenManifest(bytes, key, 'test'), full, 'without a range, parsed whole');
  for (const wrong of [[range[0] + 1, range[1]], [0, range[1]], [range[0], range[1] + 5_000_000], [range[1], range[0]], [Number.NaN, 3]] as [number, number][]) {
    assert.deepEqual(reopenManifest(bytes, key, 'test', wrong), full, `range ${wrong.join('-')}`);
  }
  await rejectsWithCode(Promise.resolve().then(() => reopenManifest(bytes, parsePublicKey(generatePublisherKey().publicKeyString), 'test', range)), 'ERR_LIVEMOD_WRONG_KEY');
});

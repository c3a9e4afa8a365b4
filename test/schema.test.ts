// The JSON Schema in docs/ and the validator clients run agree: real manifests pass both,
// and each kind of damage is refused by both.
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { canonicalJson, generatePublisherKey, signSnapshot, validateManifest } from '../src/snapshot/index.ts';
import { SnapshotBuilder, publishSnapshot } from '../src/build/index.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';

const schema = JSON.parse(readFileSync(new URL('../docs/manifest.schema.json', import.meta.url), 'utf8')) as object;
const validate = new Ajv2020({ allErrors: true, strict: false }).compile(schema);

async function sample(t: Parameters<typeof tempDir>[0]): Promise<{ signed: Record<string, unknown>; envelope: Record<string, unknown> }> {
  const dir = tempDir(t);
  writeFiles(dir, {
    'main.ts': `import { a } from './a'; import * as fs from 'node:fs'; import './missing'; export * from './a'; export const b = a + (await import('./dyn.js')).d; export { fs };`,
    'a.ts': 'export const a = 1;',
    'dyn.js': 'export const d = 2;',
    'data.json': '{"x": 1}',
    'template.html': '<p>hi</p>',
    'node_modules/pkg/package.json': '{"name":"pkg","version":"1.0.0"}',
    'node_modules/pkg/index.js': 'module.exports = 1;',
    'node_modules/pkg/bin/run': '#!/bin/sh\n',
  });
  writeFiles(dir, { 'package.json': '{"name":"schema-app","dependencies":{"pkg":"1.0.0","absent":"^2.0.0"}}' });
  chmodSync(join(dir, 'node_modules/pkg/bin/run'), 0o755);
  const content = new SnapshotBuilder(dir, { program: { externals: 'bundle', external: [] } }).build().content;
  const published = await publishSnapshot(content, generatePublisherKey(), tempDir(t));
  const envelope = JSON.parse(published.snapshot.sealed.bytes.toString('utf8')) as Record<string, unknown>;
  return { signed: envelope.signed as Record<string, unknown>, envelope };
}

test('published and served manifests validate against the schema and the client validator', async (t) => {
  const { signed, envelope } = await sample(t);
  assert.equal(validate(envelope), true, JSON.stringify(validate.errors));
  assert.ok(signed.files && signed.packages && signed.layout && signed.externals, 'the sample carries the program');
  assert.doesNotThrow(() => validateManifest(signed, 'test'));
  const dir = tempDir(t);
  writeFiles(dir, { 'x.js': 'export default 1;' });
  const served = signSnapshot(new SnapshotBuilder(dir).build().content, generatePublisherKey());
  assert.equal(validate(JSON.parse(served.sealed.bytes.toString('utf8'))), true, JSON.stringify(validate.errors));
  assert.equal(served.sealed.bytes.toString('utf8'), canonicalJson(served.sealed.envelope), 'the served bytes are exactly canonical JSON');
});

test('schema and validator refuse the same damage', async (t) => {
  const { signed, envelope } = await sample(t);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- damage reaches into arbitrary depths of a parsed manifest
  const damage: [string, (m: Record<string, any>) => void][] = [
    ['unknown top-level field', (m) => (m.extra = 1)],
    ['wrong schema', (m) => (m.schema = 'livemod/manifest@1')],
    ['no app name', (m) => delete m.name],
    ['empty app name', (m) => (m.name = '')],
    ['app name with a control character', (m) => (m.name = 'app\u001b[2K')],
    ['app name too long', (m) => (m.name = 'x'.repeat(129))],
    ['fractional version', (m) => (m.version = 1.5)],
    ['bad time', (m) => (m.expires = 'tomorrow')],
    ['bad key id', (m) => (m.keyId = 'XYZ')],
    ['traversal in a module path', (m) => (m.modules['../etc/passwd'] = m.modules['a.ts'])],
    ['absolute module path', (m) => (m.modules['/abs.ts'] = m.modules['a.ts'])],
    ['bad blob hash', (m) => (m.modules['a.ts'] = { ...m.modules['a.ts'], blob: { hash: 'abc', size: 1 } })],
    ['negative size', (m) => (m.modules['a.ts'] = { ...m.modules['a.ts'], blob: { ...m.modules['a.ts'].blob, size: -1 } })],
    ['unknown import kind', (m) => (m.modules['main.ts'].imports[0].kind = 'remote')],
    ['module import without target', (m) => delete m.modules['main.ts'].imports[0].module],
    ['entry not a module path', (m) => (m.entry = '../x')],
    ['tla not boolean', (m) => (m.modules['a.ts'].tla = 'no')],
    ['traversal in a file path', (m) => (m.files['../x'] = m.files['template.html'])],
    ['a file under node_modules', (m) => (m.files['node_modules/x'] = m.files['template.html'])],
    ['executable not true', (m) => (m.packages['pkg@1.0.0'].files['bin/run'].executable = 1)],
    ['bad package name', (m) => (m.packages['pkg@1.0.0'].name = 'Bad Name!')],
    ['package with an unknown field', (m) => (m.packages['pkg@1.0.0'].dependencies = {})],
    ['layout outside node_modules', (m) => (m.layout['lib/pkg'] = 'pkg@1.0.0')],
    ['link with traversal', (m) => (m.links = { 'node_modules/x': 'node_modules/../../etc' })],
    ['external range too long', (m) => (m.externals.absent = 'x'.repeat(300))],
  ];
  for (const [name, apply] of damage) {
    const copy = structuredClone(signed);
    apply(copy);
    assert.equal(validate({ ...envelope, signed: copy }), false, `schema refuses: ${name}`);
    assert.throws(() => validateManifest(copy, 'test'), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_MANIFEST_INVALID', `validator refuses: ${name}`);
  }
  // A refusal names where, down to the field (the first pass builds no paths; the message comes from a second).
  const deep = structuredClone(signed) as { modules: Record<string, { imports: Array<Record<string, unknown>>; exports: unknown }> };
  const [first] = Object.keys(deep.modules);
  deep.modules[first!]!.exports = [1];
  assert.throws(() => validateManifest(deep, 'test'), new RegExp(`manifest\\.modules\\[${JSON.stringify(first).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\]\\.exports\\[0\\] must be a string`));
  // What a schema cannot say (one field naming another's keys), the validator checks.
  const dangling = structuredClone(signed) as { layout: Record<string, string> };
  dangling.layout['node_modules/pkg'] = 'nope@1';
  assert.throws(() => validateManifest(dangling, 'test'), /manifest\.layout\["node_modules\/pkg"\] must be a key of manifest\.packages/);
  // Nothing is laid out through a link: a folder made there would land where the link points (outside the store, with a crafted chain).
  const through = structuredClone(signed) as { layout: Record<string, string>; links?: Record<string, string> };
  through.links = { 'node_modules/a/b': 'node_modules/pkg', 'node_modules/a/b/c': 'node_modules/.config' };
  assert.throws(() => validateManifest(through, 'test'), /not under the link "node_modules\/a\/b"/);
  const placedThrough = structuredClone(signed) as { layout: Record<string, string>; links?: Record<string, string> };
  placedThrough.links = { 'node_modules/l': 'node_modules/pkg' };
  placedThrough.layout['node_modules/l/inner'] = placedThrough.layout['node_modules/pkg']!;
  assert.throws(() => validateManifest(placedThrough, 'test'), /not under the link "node_modules\/l"/);
});

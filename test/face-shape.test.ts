// The fast face of a namespace (src/runtime/namespace.ts) must stay an object V8 reads as a
// plain object's field: in dictionary mode a read costs 13–25× a plain read. V8 says which
// through %HasFastProperties, asked by the program itself (node --allow-natives-syntax) of the
// face it gets as `this` in a call `ns.self()`. A hot swap relinks faces: an accessor binding
// (a package's, a namespace's) replaced by another accessor sent the face to dictionary mode,
// so a relink that reads the same keeps it. (A `let`/`const`/`class` export still does: its TDZ
// accessor while the new version links; docs/protocol.md, "Namespaces".) The last case guards a
// program of more than 1,536 modules: faces made from one shared map went to dictionary mode
// past that number in a plain script (the registry's did not here); each face now has a map
// tree of its own.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { lineProcess } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';

const natives = (t: TestContext, args: string[]) => lineProcess(t, args, { nodeArgs: ['--allow-natives-syntax'] });

// The program's probe: V8's own answer, compiled at run time (the builder's parser knows no `%`).
const PROBE = "const fast = new Function('o', 'return %HasFastProperties(o)');";

const lib = (version: number): string => `export var value = ${version};
export function self() { return this; }
export { sep } from 'node:path';
export * as other from './other.js';
import.meta.hot.accept();
import.meta.hot.accept(['./other.js'], () => {});
`;

test('a face stays in fast mode through hot swaps that relink function, var, package and namespace bindings; the exact face shows a namespace binding\'s new names', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': '{"type":"module"}',
    'other.js': 'export const o = 1;',
    'lib.js': lib(1),
    'main.js': `import * as lib from './lib.js';
${PROBE}
const exact = await import('./lib.js');
setInterval(() => console.log(JSON.stringify({ value: lib.value, sep: lib.sep, names: Object.keys(exact.other), fast: fast(lib.self()) })), 40);`,
  });
  const run = natives(t, ['run', join(dir, 'main.js'), '--watch', '--cache', tempDir(t)]);
  assert.deepEqual(JSON.parse(await run.line(/"value":1/)), { value: 1, sep: '/', names: ['o'], fast: true });
  writeFiles(dir, { 'lib.js': lib(2) });
  assert.deepEqual(JSON.parse(await run.line(/"value":2/)), { value: 2, sep: '/', names: ['o'], fast: true }, 'lib.js swapped');
  writeFiles(dir, { 'other.js': 'export const o = 1;\nexport const extra = 2;' });
  assert.deepEqual(JSON.parse(await run.line(/"extra"/)), { value: 2, sep: '/', names: ['extra', 'o'], fast: true }, 'other.js swapped: lib.js relinked');
  await run.stop();
});

test('faces stay fast past 1,536 modules', async (t) => {
  const dir = tempDir(t);
  const count = 1_600;
  const files: Record<string, string> = { 'package.json': '{"type":"module"}' };
  for (let index = 0; index < count; index += 1) files[`m/m${index}.js`] = `export const value = ${index};\nexport function self() { return this; }\n`;
  files['main.js'] = `${Array.from({ length: count }, (_, index) => `import * as m${index} from './m/m${index}.js';`).join('\n')}
${PROBE}
const faces = [${Array.from({ length: count }, (_, index) => `m${index}`).join(', ')}];
console.log(JSON.stringify({ slow: faces.map((m, index) => (fast(m.self()) && m.value === index ? -1 : index)).filter((index) => index >= 0) }));`;
  writeFiles(dir, files);
  const run = natives(t, ['run', join(dir, 'main.js'), '--cache', tempDir(t)]);
  assert.deepEqual(JSON.parse(await run.line(/"slow"/, 60_000)), { slow: [] });
  await run.stop();
});

// Source maps carry the transformer's map through the import rewrite: a throw in a rewritten
// line maps back to the original file, line and column.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TraceMap, originalPositionFor } from '@jridgewell/trace-mapping';
import { SnapshotBuilder } from '../src/build/index.ts';
import { evaluator } from './helpers/runtime.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';

const LIB = 'export const add = (a: number, b: number): number => a + b;\nexport const label = "L";\n';

const SOURCE = [
  'import {', //                                                        1
  '  add,', //                                                          2
  '  label,', //                                                        3
  "} from './lib'; const offset: number = add(1, 1); export function first(): void { if (add(offset, 0) > 0) throw new Error(label); }", // 4
  'type Shape = { a: number };', //                                     5
  'export function second(): number {', //                              6
  '  const v: Shape = { a: add(1, 2) };', //                            7
  '  if (add(v.a, 0) > 0) throw new TypeError(label + add(v.a, 1));', //  8
  '  return v.a;', //                                                   9
  '}', //                                                               10
].join('\n');

function topFrame(error: Error, file: string): { line: number; column: number } {
  const match = new RegExp(`${file.replace('.', '\\.')}:(\\d+):(\\d+)`).exec(error.stack ?? '');
  assert.ok(match, `stack names ${file}: ${error.stack}`);
  return { line: Number(match[1]), column: Number(match[2]) };
}

/** 1-based line and 0-based column of the `occurrence`-th `needle` in `text`. */
function position(text: string, needle: string, occurrence = 0): { line: number; column: number } {
  let at = -1;
  for (let index = 0; index <= occurrence; index += 1) at = text.indexOf(needle, at + 1);
  assert.ok(at !== -1, `${needle} is in the text`);
  const before = text.slice(0, at).split('\n');
  return { line: before.length, column: before[before.length - 1]!.length };
}

for (const extension of ['ts', 'js']) {
  test(`positions in a rewritten ${extension} module map to the original line and column, in the map and in stack traces`, async (t) => {
    const dir = tempDir(t);
    const strip = (text: string): string => (extension === 'js' ? text.replace(/: number/g, '').replace(/: Shape/g, '').replace(/: void/g, '').replace(/^type .*$/m, '') : text);
    writeFiles(dir, { [`lib.${extension}`]: strip(LIB), [`main.${extension}`]: strip(SOURCE) });
    const content = new SnapshotBuilder(dir).build().content;
    const record = content.modules[`main.${extension}`]!;
    const map = new TraceMap(content.blobs.get(record.map!.hash)!.toString('utf8'));
    assert.deepEqual(map.sources, [`main.${extension}`]);
    const generated = content.blobs.get(record.blob.hash)!.toString('utf8');
    const source = strip(SOURCE);
    const ns = await evaluator(content).run(`main.${extension}`);

    const cases: [() => unknown, string][] = [
      [ns.first as () => unknown, 'new Error'],
      [ns.second as () => unknown, 'new TypeError'],
    ];
    for (const [fn, needle] of cases) {
      const expected = position(source, needle);
      // The map itself: the needle's place in the built blob maps back to its place in the source.
      const inBlob = position(generated, needle);
      const mapped = originalPositionFor(map, inBlob);
      assert.deepEqual({ line: mapped.line, column: mapped.column }, expected, `map of ${needle}`);
      // The registry's stack traces use it: the frame names the original line and column.
      const error = (() => {
        try {
          fn();
        } catch (caught) {
          return caught as Error;
        }
        throw new Error('expected a throw');
      })();
      assert.deepEqual(topFrame(error, `main.${extension}`), { line: expected.line, column: expected.column + 1 }, `stack frame of ${needle}`);
    }
  });
}

test('a map is smaller than its code: no copy of the source, no segments inside strings and comments, dense code mapped sparser', async () => {
  const { transformModule } = await import('../src/build/transform.ts');
  const words = Array.from({ length: 200_000 }, (_, index) => `w${index % 97}`).join(' ');
  const big = transformModule('big.js', `// ${words}\nexport const data = ${JSON.stringify(words)};\nexport function f(a) {\n  throw new Error('at line 4 ' + a + data.length);\n}\n`);
  assert.ok(big.map!.length < 1000, `map ${big.map!.length} bytes for ${big.code.length} of code`);
  const position = originalPositionFor(new TraceMap(big.map!), { line: 5, column: 2 });
  assert.deepEqual([position.line, position.column], [4, 2], 'lines after a big string and comment still map');
  const minified = Array.from({ length: 5000 }, (_, index) => `a${index}=b+c*d-e`).join(';');
  const dense = transformModule('min.js', `let a0,b=1,c=2,d=3,e=4;${minified.replace('a0=', 'a0=')};export{b};`);
  assert.ok(dense.map!.length <= dense.code.length, `map ${dense.map!.length} > code ${dense.code.length}`);
  assert.ok(!('sourcesContent' in (JSON.parse(dense.map!) as object)));
});

// Source maps carry the transformer's map through the import rewrite: a throw in a rewritten
// line maps back to the original file, line and column.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TraceMap, originalPositionFor } from '@jridgewell/trace-mapping';
import { SnapshotBuilder } from '../src/build/index.ts';
import { evaluator } from './helpers/evaluate.ts';
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

function expectedColumn(line: number, needle: string): number {
  return SOURCE.split('\n')[line - 1]!.indexOf(needle);
}

function topFrame(error: Error, file: string): { line: number; column: number } {
  const match = new RegExp(`${file.replace('.', '\\.')}:(\\d+):(\\d+)`).exec(error.stack ?? '');
  assert.ok(match, `stack names ${file}: ${error.stack}`);
  return { line: Number(match[1]), column: Number(match[2]) };
}

for (const extension of ['ts', 'js']) {
  test(`stack positions in a rewritten ${extension} module map to the original line and column`, async (t) => {
    const dir = tempDir(t);
    const strip = (text: string): string => (extension === 'js' ? text.replace(/: number/g, '').replace(/: Shape/g, '').replace(/: void/g, '').replace(/^type .*$/m, '') : text);
    writeFiles(dir, { [`lib.${extension}`]: strip(LIB), [`main.${extension}`]: strip(SOURCE) });
    const content = new SnapshotBuilder(dir).build().content;
    const record = content.modules[`main.${extension}`]!;
    const map = new TraceMap(content.blobs.get(record.map!.hash)!.toString('utf8'));
    assert.deepEqual(map.sources, [`main.${extension}`]);
    const ns = await evaluator(content).run(`main.${extension}`);
    const file = `main.${extension}`;
    const source = strip(SOURCE).split('\n');

    const cases: [() => unknown, number, string][] = [
      [ns.first as () => unknown, 4, 'new Error'],
      [ns.second as () => unknown, 8, 'new TypeError'],
    ];
    for (const [fn, line, needle] of cases) {
      const error = (() => {
        try {
          fn();
        } catch (caught) {
          return caught as Error;
        }
        throw new Error('expected a throw');
      })();
      const frame = topFrame(error, file);
      const original = originalPositionFor(map, { line: frame.line, column: frame.column - 1 });
      assert.equal(original.line, line, `line of ${needle}`);
      assert.equal(original.column, source[line - 1]!.indexOf(needle), `column of ${needle} in: ${source[line - 1]}`);
    }
    assert.ok(expectedColumn(4, 'new Error') > 0);
  });
}

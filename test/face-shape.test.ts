// The fast face of a namespace (src/runtime/namespace.ts) must stay an object V8 reads as a
// plain object's field: in dictionary mode a read costs 13–25× a plain read. V8 says which
// through %HasFastProperties, asked by the program itself (node --allow-natives-syntax) of the
// face it gets as `this` in a call `ns.self()`. The first two cases went to dictionary mode
// before: a hot swap (a data property turned into a TDZ accessor, an accessor replaced by
// another), and a swap of a lazily imported module that had loaded (its face re-armed with
// triggers). The third guards a program of more than 1,536 modules: faces made as
// namespace.ts made them, all from one shared map, went to dictionary mode past that number
// in a plain script; the registry's own did not here, but each face now has a tree of its own.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import { BIN } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';
import { within } from './helpers/server-fixtures.ts';

/**
 * `livemod run ARGS` under --allow-natives-syntax; resolves each awaited stdout line. `stop()`
 * ends it and waits for its exit, so that the temp folders are not removed under it.
 */
function natives(t: TestContext, args: string[]): { line(match: RegExp, ms?: number): Promise<string>; stop(): Promise<void> } {
  const child = spawn(process.execPath, ['--allow-natives-syntax', BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(() => {
    child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines: string[] = [];
  const waiters: { match: RegExp; resolve: (line: string) => void }[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const waiter = waiters.findIndex((candidate) => candidate.match.test(line));
    if (waiter === -1) lines.push(line);
    else waiters.splice(waiter, 1)[0]!.resolve(line);
  });
  return {
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    line(match, ms = 20_000) {
      const index = lines.findIndex((line) => match.test(line));
      if (index !== -1) return Promise.resolve(lines.splice(index, 1)[0]!);
      return within(new Promise((resolve) => waiters.push({ match, resolve })), ms, `a line matching ${match} (stderr: ${stderr.slice(-600)})`);
    },
  };
}

// The program's probe: V8's own answer, compiled at run time (the builder's parser knows no `%`).
const PROBE = "const fast = new Function('o', 'return %HasFastProperties(o)');";

const lib = (version: number): string => `export const value = ${version};
export let counter = ${version};
export class Made { static v = ${version}; }
export function self() { return this; }
export { sep } from 'node:path';
export * as other from './other.js';
import.meta.hot.accept();
`;

test('a face stays in fast mode through hot swaps of const, let, class, function, package and namespace exports', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'package.json': '{"type":"module"}',
    'other.js': 'export const o = 1;',
    'lib.js': lib(1),
    'main.js': `import * as lib from './lib.js';
${PROBE}
setInterval(() => console.log(JSON.stringify({ value: lib.value, counter: lib.counter, made: lib.Made.v, sep: lib.sep, o: lib.other.o, fast: fast(lib.self()) })), 40);`,
  });
  const run = natives(t, ['run', join(dir, 'main.js'), '--watch', '--cache', tempDir(t)]);
  const first = JSON.parse(await run.line(/"value":1/)) as Record<string, unknown>;
  assert.deepEqual(first, { value: 1, counter: 1, made: 1, sep: '/', o: 1, fast: true });
  for (const version of [2, 3]) {
    writeFiles(dir, { 'lib.js': lib(version) });
    const now = JSON.parse(await run.line(new RegExp(`"value":${version}`))) as Record<string, unknown>;
    assert.deepEqual(now, { value: version, counter: version, made: version, sep: '/', o: 1, fast: true }, `after swap ${version - 1}`);
  }
  await run.stop();
});

test('a lazily imported module that has loaded keeps a fast face when a swap replaces it, and its new version runs in the swap', async (t) => {
  const dir = tempDir(t);
  const heavy = (version: number): string => `console.log('ran ${version}');\nexport const value = ${version};\nexport function self() { return this; }\n`;
  writeFiles(dir, {
    'package.json': '{"type":"module"}',
    'heavy.js': heavy(1),
    'main.js': `import * as heavy from './heavy.js';
${PROBE}
console.log('started');
setInterval(() => console.log(JSON.stringify({ value: heavy.value, fast: fast(heavy.self()) })), 40);
import.meta.hot.accept(['./heavy.js'], () => {});`,
  });
  const run = natives(t, ['run', join(dir, 'main.js'), '--lazy', '--watch', '--cache', tempDir(t)]);
  await run.line(/^started$/);
  await run.line(/^ran 1$/);
  assert.deepEqual(JSON.parse(await run.line(/"value":1/)), { value: 1, fast: true });
  writeFiles(dir, { 'heavy.js': heavy(2) });
  await run.line(/^ran 2$/);
  assert.deepEqual(JSON.parse(await run.line(/"value":2/)), { value: 2, fast: true });
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

// Lazy imports (issue 15): a program that imports a heavy module graph — 1,000 generated modules,
// each doing some top-level work — and uses it or not, run by `livemod run ./main.js` as users
// run it, every start a fresh process, all cases interleaved in one run:
//   no import            the program without the import (the floor)
//   eager, untouched     imports the graph, never reads it (today's default)
//   lazy, untouched      the same with --lazy
//   defer, untouched     `import defer * as heavy` instead (no flag)
//   eager, touched       reads one binding of the graph once
//   lazy, touched        the same with --lazy: the first read loads the graph
//   package …            the same four for a real package, @aws-sdk/client-s3, eager and with
//                        --lazy-mode all (packages load at the first read too)
//   URL cold …           no import, eager and lazy, untouched and touched, as `livemod run <url>`
//                        from an empty store each run (`livemod serve` of the same graph)
// Each program prints its heap use at exit; the bench prints medians of wall time and heap.
// Then the steady-state read cost, in one process each: 20 million reads of a binding in a loop,
// against a plain property read in the same run — read first at top level (the loop's reads
// never saw the trigger), and read first inside the loop (the loop's first read loads the
// module), each with --lazy on a warm store (code cache); and a read of the package's binding,
// eager (Node's module namespace) and with --lazy-mode all, its first read inside the loop.
// Node 26 with --js-defer-import-eval runs the defer program natively for reference when a
// Node 26 binary is at $LIVEMOD_NODE26 (skipped otherwise, saying so).
// Targets: an untouched lazy import within 5 ms and 3 MiB of not importing; first touch at most
// 1.1× eager; a steady-state read at most 1.5× a plain read.
// Run: npm run bench:lazy   (BENCH_RUNS=n, default 9)
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { installedCli, serveTree } from './lib/livemod-cli.ts';
import { median } from './lib/stats.ts';
import { formatTable } from './lib/table.ts';
import { timed } from './lib/timed-process.ts';

const root = join(import.meta.dirname, '..');
const { bin: BIN, build } = installedCli(root);
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const MODULES = 1000;
const work = mkdtempSync(join(tmpdir(), 'livemod-bench-lazy-'));
const app = join(work, 'app');
const cache = join(work, 'store');
console.log(`[bench lazy] ${build}; ${MODULES} modules; ${RUNS} runs per case; work folder ${work}`);

// The heavy graph: heavy/index.js imports m0…m9; module i imports modules 10i+10 … 10i+19 below it.
mkdirSync(join(app, 'heavy'), { recursive: true });
for (let i = 0; i < MODULES; i += 1) {
  const children = Array.from({ length: 10 }, (_, k) => 10 * i + 10 + k).filter((child) => child < MODULES);
  writeFileSync(
    join(app, 'heavy', `m${i}.js`),
    [
      ...children.map((child) => `import { f${child} } from './m${child}.js';`),
      `const table = Array.from({ length: 400 }, (_, k) => ({ k, v: k * ${i + 1} }));`,
      `export function f${i}(x) { return table[x % 400].v${children.map((child) => ` + f${child}(x)`).join('')}; }`,
    ].join('\n'),
  );
}
writeFileSync(join(app, 'heavy', 'index.js'), `${Array.from({ length: 10 }, (_, k) => `import { f${k} } from './m${k}.js';`).join('\n')}\nexport function work(x) { return ${Array.from({ length: 10 }, (_, k) => `f${k}(x)`).join(' + ')}; }\nexport const size = ${MODULES};\n`);
writeFileSync(join(app, 'package.json'), '{"name":"bench-lazy","type":"module"}');
const end = "console.log(JSON.stringify({ result, heap: process.memoryUsage().heapUsed }));";
writeFileSync(join(app, 'none.js'), `const result = 1;\n${end}\n`);
writeFileSync(join(app, 'untouched.js'), `import { work } from './heavy/index.js';\nexport const later = () => work;\nconst result = 1;\n${end}\n`);
writeFileSync(join(app, 'defer.js'), `import defer * as heavy from './heavy/index.js';\nconst result = 1;\n${end}\n`);
writeFileSync(join(app, 'touched.js'), `import { work } from './heavy/index.js';\nconst result = work(3) > 0 ? 1 : 0;\n${end}\n`);
const loop = (first: string) => `import { size } from './heavy/index.js';
const plain = { size: ${MODULES} };
${first}
function viaImport() { let s = 0; for (let i = 0; i < 20_000_000; i++) s += size; return s; }
function viaPlain() { let s = 0; for (let i = 0; i < 20_000_000; i++) s += plain.size; return s; }
viaImport(); viaPlain();
let a = performance.now(); viaImport(); const imported = performance.now() - a;
a = performance.now(); viaPlain(); const direct = performance.now() - a;
console.log(JSON.stringify({ imported, direct }));
`;
// A real package as an external: the AWS SDK's S3 client (a dependency of livemod, reached
// through a node_modules link), imported by name and left unused, or used once.
symlinkSync(join(root, 'node_modules'), join(app, 'node_modules'));
writeFileSync(join(app, 'pkg-untouched.js'), `import { S3Client } from '@aws-sdk/client-s3';\nexport const later = () => S3Client;\nconst result = 1;\n${end}\n`);
writeFileSync(join(app, 'pkg-touched.js'), `import { S3Client } from '@aws-sdk/client-s3';\nconst result = typeof new S3Client({ region: 'us-east-1' }).send === 'function' ? 1 : 0;\n${end}\n`);
writeFileSync(join(app, 'read-after.js'), loop('void size;'));
writeFileSync(join(app, 'read-in-loop.js'), loop(''));
// The same for the package's binding: eager, and with --lazy-mode all (its first read loads it).
const packageLoop = (first: string) => `import { S3Client } from '@aws-sdk/client-s3';
const plain = { S3Client: class {} };
${first}
function viaImport() { let s = 0; for (let i = 0; i < 20_000_000; i++) s += S3Client === undefined ? 0 : 1; return s; }
function viaPlain() { let s = 0; for (let i = 0; i < 20_000_000; i++) s += plain.S3Client === undefined ? 0 : 1; return s; }
viaImport(); viaPlain();
let a = performance.now(); viaImport(); const imported = performance.now() - a;
a = performance.now(); viaPlain(); const direct = performance.now() - a;
console.log(JSON.stringify({ imported, direct }));
`;
writeFileSync(join(app, 'read-package-in-loop.js'), packageLoop(''));

// The same graph and programs served by `livemod serve` (without the package cases' node_modules),
// for URL runs from an empty store each time: what a cold start fetches, eager or lazy.
const urlApp = join(work, 'url-app');
mkdirSync(urlApp);
cpSync(join(app, 'heavy'), join(urlApp, 'heavy'), { recursive: true });
for (const file of ['package.json', 'none.js', 'untouched.js', 'touched.js']) cpSync(join(app, file), join(urlApp, file));

const env = { ...process.env, LIVEMOD_CACHE: cache };
const served = await serveTree(BIN, urlApp, env);
const cold = (file: string, lazy: boolean) => (): ReturnType<typeof livemod> => ({ file: process.execPath, args: [BIN, 'run', `${served.url}/${file}`, ...(lazy ? ['--lazy'] : []), '--once', '--key', served.publicKey, '--cache', mkdtempSync(join(work, 'cold-'))], cwd: work, env });
const livemod = (file: string, lazy: boolean | 'all') => ({ file: process.execPath, args: [BIN, 'run', ...(lazy === 'all' ? ['--lazy-mode', 'all'] : lazy ? ['--lazy'] : []), `./${file}`, '--cache', cache], cwd: app, env });
const cases: [string, ReturnType<typeof livemod> | (() => ReturnType<typeof livemod>)][] = [
  ['no import (floor)', livemod('none.js', false)],
  ['eager, untouched', livemod('untouched.js', false)],
  ['lazy, untouched', livemod('untouched.js', true)],
  ['import defer, untouched', livemod('defer.js', false)],
  ['eager, touched once', livemod('touched.js', false)],
  ['lazy, touched once', livemod('touched.js', true)],
  ['package eager, untouched', livemod('pkg-untouched.js', false)],
  ['package lazy (--lazy-mode all), untouched', livemod('pkg-untouched.js', 'all')],
  ['package eager, touched once', livemod('pkg-touched.js', false)],
  ['package lazy, touched once', livemod('pkg-touched.js', 'all')],
  ['URL cold, no import (floor)', cold('none.js', false)],
  ['URL cold, eager, untouched', cold('untouched.js', false)],
  ['URL cold, lazy, untouched', cold('untouched.js', true)],
  ['URL cold, eager, touched once', cold('touched.js', false)],
  ['URL cold, lazy, touched once', cold('touched.js', true)],
];
const node26 = process.env.LIVEMOD_NODE26;
if (node26 && existsSync(node26)) cases.push(['Node 26 --js-defer-import-eval, defer (reference)', { file: node26, args: ['--js-defer-import-eval', './defer.js'], cwd: app, env }]);
else console.log('[bench lazy] Node 26 reference skipped: set LIVEMOD_NODE26 to a Node 26 binary to run `import defer` natively beside livemod');

// One discarded round primes the store's build and code caches, as a second start would find them.
// The URL cases run as a phase of their own: their cold starts write thousands of files, whose
// writeback would otherwise land in the local cases' runs.
const samples = new Map<string, { wall: number[]; heap: number[] }>(cases.map(([name]) => [name, { wall: [], heap: [] }]));
for (const phase of [cases.filter(([name]) => !name.startsWith('URL')), cases.filter(([name]) => name.startsWith('URL'))]) for (let round = 0; round <= RUNS; round += 1) {
  for (const [name, command] of phase) {
    const run = await timed(typeof command === 'function' ? command() : command);
    const printed = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { result: number; heap: number };
    if (printed.result !== 1) throw new Error(`${name} printed ${run.stdout}`);
    if (round === 0) continue;
    samples.get(name)!.wall.push(run.wall);
    samples.get(name)!.heap.push(printed.heap);
  }
}
const floor = samples.get('no import (floor)')!;
const rows = [['case', 'median ms', 'vs floor ms', 'heap MiB', 'vs floor MiB']];
for (const [name, { wall, heap }] of samples) {
  rows.push([name, median(wall).toFixed(1), (median(wall) - median(floor.wall)).toFixed(1), (median(heap) / 2 ** 20).toFixed(2), ((median(heap) - median(floor.heap)) / 2 ** 20).toFixed(2)]);
}
console.log(formatTable(rows));

const reads: string[][] = [['steady-state read (20M reads)', 'import ms', 'plain ms', 'ratio']];
const lazyReadRatios: number[] = [];
const readCases: [string, string, boolean | 'all'][] = [
  ['--lazy, first read at top level', 'read-after.js', true],
  ['--lazy, first read inside the loop', 'read-in-loop.js', true],
  ['package, eager (a module namespace read)', 'read-package-in-loop.js', false],
  ['package --lazy-mode all, first read inside the loop', 'read-package-in-loop.js', 'all'],
];
for (const [label, file, lazy] of readCases) {
  const ratios: number[] = [];
  let last = { imported: 0, direct: 0 };
  for (let round = 0; round < 5; round += 1) {
    const run = await timed(livemod(file, lazy));
    last = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { imported: number; direct: number };
    if (round > 0) ratios.push(last.imported / last.direct);
  }
  reads.push([label, last.imported.toFixed(1), last.direct.toFixed(1), `${median(ratios).toFixed(2)}×`]);
  if (lazy) lazyReadRatios.push(median(ratios));
}
console.log(formatTable(reads));

const m = (name: string, pick: 'wall' | 'heap'): number => median(samples.get(name)![pick]);
const untouchedMs = m('lazy, untouched', 'wall') - m('no import (floor)', 'wall');
const untouchedMiB = (m('lazy, untouched', 'heap') - m('no import (floor)', 'heap')) / 2 ** 20;
const touch = m('lazy, touched once', 'wall') / m('eager, touched once', 'wall');
const packageMs = m('package lazy (--lazy-mode all), untouched', 'wall') - m('no import (floor)', 'wall');
const packageMiB = (m('package lazy (--lazy-mode all), untouched', 'heap') - m('no import (floor)', 'heap')) / 2 ** 20;
const packageTouch = m('package lazy, touched once', 'wall') / m('package eager, touched once', 'wall');
/** A difference with its sign: +1.2, −0.4. */
const signed = (value: number, digits: number): string => `${value < 0 ? '−' : '+'}${Math.abs(value).toFixed(digits)}`;
console.log(
  `targets: untouched lazy within 5 ms / 3 MiB of no import: ${signed(untouchedMs, 1)} ms, ${signed(untouchedMiB, 2)} MiB ${untouchedMs <= 5 && untouchedMiB <= 3 ? 'met' : 'NOT met'}; ` +
    `first touch ≤ 1.1× eager: ${touch.toFixed(2)}× ${touch <= 1.1 ? 'met' : 'NOT met'}; steady-state read of a lazy binding ≤ 1.5×: worst ${Math.max(...lazyReadRatios).toFixed(2)}× ${Math.max(...lazyReadRatios) <= 1.5 ? 'met' : 'NOT met'}`,
);
console.log(
  `targets, the package: untouched lazy within 5 ms / 3 MiB of no import: ${signed(packageMs, 1)} ms, ${signed(packageMiB, 2)} MiB ${packageMs <= 5 && packageMiB <= 3 ? 'met' : 'NOT met'}; ` +
    `first touch ≤ 1.1× eager: ${packageTouch.toFixed(2)}× ${packageTouch <= 1.1 ? 'met' : 'NOT met'}`,
);
const urlMs = m('URL cold, lazy, untouched', 'wall') - m('URL cold, no import (floor)', 'wall');
const urlTouch = m('URL cold, lazy, touched once', 'wall') / m('URL cold, eager, touched once', 'wall');
console.log(
  `URL runs from an empty store: untouched lazy ${signed(urlMs, 1)} ms over no import (eager untouched ${signed((m('URL cold, eager, untouched', 'wall') - m('URL cold, no import (floor)', 'wall')), 1)} ms); ` +
    `first touch ${urlTouch.toFixed(2)}× eager (the lazy graph fetched at the read, in a worker thread)`,
);
served.process.kill();
console.log(`(load average at end ${loadavg().map((value) => value.toFixed(2)).join(' ')})`);
if (process.env.BENCH_KEEP === '1') console.log(`[bench lazy] kept ${work}`);
else rmSync(work, { recursive: true, force: true });

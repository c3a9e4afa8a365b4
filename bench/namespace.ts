// Namespace read benchmark: what a read of an imported binding costs in live code, against a
// plain property read measured in the same live module, in the same run.
//   plain          obj.x on an ordinary object (the baseline, 1.0)
//   named import   `x` of `import { x }` (rewritten to a read on the fast face)
//   member read    `ns.x` of `import * as ns` (the same fast face)
//   exact face     `ns.x` on the namespace as a value (the spec-exact Proxy: where it escapes)
//   native ESM     `ns.x` on a namespace of Node's own loader (reference)
//   … after a swap the named import and the member read again, once lib.js was swapped in place
//                  (the folder watched; its `let x` is in its TDZ while the new version links)
// Target (issue 12): named import and member read within 1.5× of plain.
// Run: npm run bench:namespace   (figures go in docs/benchmarks.md)
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openFolder } from '../src/client/index.ts';
import { median } from './lib/stats.ts';
import { formatTable } from './lib/table.ts';

const READS = 20_000_000;
const ROUNDS = 9;

const dir = join(import.meta.dirname, 'out', 'namespace');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
const lib = (step: number): string => `export let x = 1; export function bump() { x += ${step}; }\nimport.meta.hot?.accept();\n`;
writeFileSync(join(dir, 'lib.js'), lib(1));
// Each loop is its own function so V8 optimises each on its own; the sum keeps reads alive.
const loops = `
export function plain(n, obj) { let sum = 0; for (let i = 0; i < n; i++) sum += obj.x; return sum; }
export function named(n) { let sum = 0; for (let i = 0; i < n; i++) sum += x; return sum; }
export function member(n) { let sum = 0; for (let i = 0; i < n; i++) sum += ns.x; return sum; }
export function value(n, held) { let sum = 0; for (let i = 0; i < n; i++) sum += held.x; return sum; }
export const exact = ns;
`;
writeFileSync(join(dir, 'reads.js'), `import { x } from './lib.js';\nimport * as ns from './lib.js';\n${loops}`);

type Loops = {
  plain(n: number, obj: { x: number }): number;
  named(n: number): number;
  member(n: number): number;
  value(n: number, held: unknown): number;
  exact: unknown;
};

const app = await openFolder(join(dir, 'reads.js'), { cache: join(dir, 'store'), live: true });
const live = (await app.import()) as unknown as Loops;
const native = (await import(pathToFileURL(join(dir, 'reads.js')).href)) as Loops;

const time = (run: () => number): number => {
  const started = performance.now();
  const sum = run();
  const elapsed = performance.now() - started;
  if (sum !== READS) throw new Error(`a loop read ${sum}, expected ${READS}`);
  return (elapsed * 1e6) / READS;
};

const cases: [string, () => number][] = [
  ['plain (baseline)', () => live.plain(READS, { x: 1 })],
  ['named import', () => live.named(READS)],
  ['member read ns.x', () => live.member(READS)],
  ['exact face (ns as a value)', () => live.value(READS, live.exact)],
  ['native ESM ns.x (reference)', () => native.member(READS)],
];
const samples = new Map<string, number[]>(cases.map(([name]) => [name, []]));
for (let round = 0; round < ROUNDS; round += 1) {
  for (const [name, run] of cases) samples.get(name)!.push(time(run));
}
// The same reads once the module they read was swapped: the face is relinked to the new version.
const swapped = new Promise<string>((resolve) => app.on('swap', (record) => resolve(record.status)));
writeFileSync(join(dir, 'lib.js'), lib(2));
const status = await swapped;
if (status !== 'applied') throw new Error(`the swap of lib.js was ${status}`);
const after: [string, () => number][] = [
  ['plain (baseline)', () => live.plain(READS, { x: 1 })],
  ['named import after a swap', () => live.named(READS)],
  ['member read after a swap', () => live.member(READS)],
];
for (const [name] of after.slice(1)) samples.set(name, []);
for (let round = 0; round < ROUNDS; round += 1) {
  for (const [name, run] of after) samples.get(name)!.push(time(run));
}
cases.push(...after.slice(1));
const base = median(samples.get('plain (baseline)')!);
const rows = [['read', 'ns per read (median)', 'ratio to plain']];
for (const [name] of cases) {
  const value = median(samples.get(name)!);
  rows.push([name, value.toFixed(2), `${(value / base).toFixed(2)}×`]);
}
console.log(`Namespace reads, ${READS.toLocaleString('en')} reads × ${ROUNDS} rounds, Node ${process.version}\n`);
console.log(formatTable(rows));
await app.close();

// Build benchmark: a generated 2,000-module TypeScript folder.
//   full build   folder → signed snapshot (read, transform, rewrite, source maps, resolve, sign)
//   baseline     the bare transformer (oxc-transform, source maps on) over the same files, read from disk
//   incremental  one file edited → invalidate → rebuild → new signed version
// Run: npm run bench:build   (figures go in docs/benchmarks.md)
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { transformSync } from 'oxc-transform';
import { generatePublisherKey, signSnapshot } from '../src/snapshot/index.ts';
import { SnapshotBuilder } from '../src/build/index.ts';
import { generateTree } from '../test/helpers/tree.ts';
import { median, percentile } from './lib/stats.ts';
import { formatTable } from './lib/table.ts';

const COUNT = Number(process.env.BENCH_MODULES ?? 2000);
const RUNS = 7;
const EDITS = 40;


const dir = join(import.meta.dirname, 'out', `build-${COUNT}`);
rmSync(dir, { recursive: true, force: true });
const tree = generateTree(dir, COUNT, { seed: 42 });
const files = tree.modules.map((path) => join(dir, path));
const key = generatePublisherKey();

const bare = (): number => {
  const started = performance.now();
  for (const file of files) {
    const result = transformSync(file, readFileSync(file, 'utf8'), { sourcemap: true, target: 'esnext' });
    if (result.errors.length > 0) throw new Error(result.errors[0]!.message);
  }
  return performance.now() - started;
};

const full = (): number => {
  const started = performance.now();
  const result = new SnapshotBuilder(dir).build();
  signSnapshot(result.content, key);
  return performance.now() - started;
};

bare();
full();
const bareTimes: number[] = [];
const fullTimes: number[] = [];
for (let run = 0; run < RUNS; run += 1) {
  bareTimes.push(bare());
  fullTimes.push(full());
}

const builder = new SnapshotBuilder(dir);
let snapshot = signSnapshot(builder.build().content, key);
const edited = tree.modules[Math.floor(COUNT / 2)]!;
const original = readFileSync(join(dir, edited), 'utf8');
const editTimes: number[] = [];
for (let edit = 0; edit < EDITS; edit += 1) {
  writeFileSync(join(dir, edited), `${original}\nexport const edit${edit} = ${edit};\n`);
  const started = performance.now();
  builder.invalidate([edited]);
  const result = builder.build();
  snapshot = signSnapshot(result.content, key, { previousVersion: snapshot.manifest.version });
  editTimes.push(performance.now() - started);
  if (result.changed.length !== 1) throw new Error(`expected one changed module, got ${result.changed.length}`);
}

const bareMs = median(bareTimes);
const fullMs = median(fullTimes);
const rows = [
  ['case', 'median ms', 'p90 ms', 'vs baseline'],
  ['bare oxc-transform (baseline)', bareMs.toFixed(1), percentile(bareTimes, 90).toFixed(1), '1.00×'],
  ['livemod full build + sign', fullMs.toFixed(1), percentile(fullTimes, 90).toFixed(1), `${(fullMs / bareMs).toFixed(2)}× (target ≤ 1.5×)`],
  ['one edit → new signed version', median(editTimes).toFixed(2), percentile(editTimes, 90).toFixed(2), 'target < 20 ms'],
];
console.log(`build benchmark: ${COUNT} modules + main.ts, ${(tree.bytes / 1024 / 1024).toFixed(1)} MiB of TypeScript; Node ${process.version}; ${RUNS} runs, ${EDITS} edits`);
console.log(formatTable(rows));

// A/B of start-up costs too small for wall time on this machine (it drifts ±15 ms between
// batches): each case is a Node command line, started BENCH_RUNS times (default 30), the cases
// interleaved (alternating order), and each run reports, from a preloaded hook at exit, the CPU
// time of its whole process (process.cpuUsage: every thread) and how long after Node's own
// start it reached exit. Medians, with ratios to the first case, which is the baseline.
//
// Run: npm run bench:ab -- '<case>' '<case>' …   where a case is the arguments to Node, e.g.
//   npm run bench:ab -- '-e 0' 'bin/livemod.js --version' 'bin/livemod.js run ./examples/hello -- --ticks 1'
// (a case is split on spaces; copy dist/ beside a second bin/ to compare two builds of livemod).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median } from './lib/stats.ts';
import { formatTable } from './lib/table.ts';

const cases = process.argv.slice(2).map((text) => text.split(' ').filter(Boolean));
if (cases.length === 0) {
  console.error("bench:ab needs cases: npm run bench:ab -- '-e 0' 'bin/livemod.js --version'");
  process.exit(2);
}
const runs = Number(process.env.BENCH_RUNS ?? 30);
const work = mkdtempSync(join(tmpdir(), 'livemod-bench-ab-'));
const hook = join(work, 'exit-stat.cjs');
writeFileSync(hook, "process.on('exit', () => { const u = process.cpuUsage(); require('node:fs').writeSync(2, `\\nLIVEMOD_AB ${(u.user + u.system) / 1000} ${performance.now()}\\n`); });\n");

const wall = cases.map((): number[] => []);
const cpu = cases.map((): number[] => []);
const exit = cases.map((): number[] => []);
try {
  for (let round = 0; round < runs; round += 1) {
    const order = cases.map((_, index) => index);
    if (round % 2 === 1) order.reverse();
    for (const index of order) {
      const started = process.hrtime.bigint();
      const run = spawnSync(process.execPath, ['-r', hook, ...cases[index]!], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
      wall[index]!.push(Number(process.hrtime.bigint() - started) / 1e6);
      const match = /LIVEMOD_AB (\S+) (\S+)/.exec(run.stderr);
      if (!match) throw new Error(`case ${cases[index]!.join(' ')} printed no exit line (status ${run.status}): ${run.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      cpu[index]!.push(Number(match[1]));
      exit[index]!.push(Number(match[2]));
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const ratio = (values: number[][], index: number): string => `${(median(values[index]!) / median(values[0]!)).toFixed(2)}×`;
const rows = [['case', 'wall ms', 'CPU ms', 'at exit ms', 'CPU vs first']];
cases.forEach((args, index) => rows.push([args.join(' ').slice(0, 60), median(wall[index]!).toFixed(1), median(cpu[index]!).toFixed(1), median(exit[index]!).toFixed(1), ratio(cpu, index)]));
console.log(`[bench ab] Node ${process.version}, ${runs} runs per case, interleaved; medians`);
console.log(formatTable(rows));

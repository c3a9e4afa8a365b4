// A/B of start-up costs too small for wall time on this machine (it drifts ±15 ms between
// batches): each case is a Node command line, started BENCH_RUNS times (default 30), the cases
// interleaved (alternating order), and each run reports, from a preloaded hook, the CPU time of
// its whole process (process.cpuUsage: every thread) and how long after Node's own start it
// reached exit, once the program's own exit listeners have run (livemod writes caches there).
// The report goes to an extra pipe (fd 3), not stderr, and only from the main thread of the
// process started (workers and children started with the same flags say nothing). A run that
// fails (non-zero exit, a signal) stops the bench. Medians, with ratios to the first case.
// The hook is preloaded with -r, and a preload turns off livemod's replay of package resolutions
// (docs/protocol.md, "Resolutions replayed"): a change to that replay is measured with bench:deps.
//
// Run: npm run bench:ab -- '<case>' '<case>' …   where a case is the arguments to Node, e.g.
//   npm run bench:ab -- '-e 0' 'bin/livemod.js --version' 'bin/livemod.js run ./examples/hello -- --ticks 1'
// (a case is split on spaces, so an argument cannot contain one; copy dist/ beside a second bin/
// to compare two builds of livemod).
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
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`BENCH_RUNS must be a whole number of runs, at least 1 (got ${JSON.stringify(process.env.BENCH_RUNS)})`);
  process.exit(2);
}
const work = mkdtempSync(join(tmpdir(), 'livemod-bench-ab-'));
const hook = join(work, 'exit-stat.cjs');
writeFileSync(hook, [
  // Set before the program runs: its workers and child processes inherit it, and so report nothing.
  'if (process.env.LIVEMOD_AB_PID === undefined) {',
  '  process.env.LIVEMOD_AB_PID = String(process.pid);',
  '  const emit = process.emit;',
  '  process.emit = function (name, ...args) {',
  '    const result = emit.call(this, name, ...args);',
  "    if (name === 'exit') {",
  '      const used = process.cpuUsage();',
  "      try { require('node:fs').writeSync(3, `LIVEMOD_AB ${process.pid} ${(used.user + used.system) / 1000} ${performance.now()}\\n`); } catch {}",
  '    }',
  '    return result;',
  '  };',
  '}',
  '',
].join('\n'));

const wall = cases.map((): number[] => []);
const cpu = cases.map((): number[] => []);
const exit = cases.map((): number[] => []);
let failure: string | null = null;
try {
  for (let round = 0; round < runs; round += 1) {
    const order = cases.map((_, index) => index);
    if (round % 2 === 1) order.reverse();
    for (const index of order) {
      const started = process.hrtime.bigint();
      const env = { ...process.env };
      delete env.LIVEMOD_AB_PID;
      const run = spawnSync(process.execPath, ['-r', hook, ...cases[index]!], { encoding: 'utf8', env, stdio: ['ignore', 'ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
      wall[index]!.push(Number(process.hrtime.bigint() - started) / 1e6);
      const lines = String(run.stderr ?? '').trim().split('\n');
      const stderr = lines.find((line) => /error/i.test(line)) ?? lines.at(-1) ?? '';
      if (run.error || run.signal || run.status !== 0) throw new Error(`case ${cases[index]!.join(' ')} failed (${run.error?.message ?? (run.signal ? `signal ${run.signal}` : `exit ${run.status}`)}): ${stderr}`);
      const match = new RegExp(`LIVEMOD_AB ${run.pid} (\\S+) (\\S+)`).exec(String(run.output[3] ?? ''));
      if (!match) throw new Error(`case ${cases[index]!.join(' ')} reported nothing at exit: ${stderr}`);
      cpu[index]!.push(Number(match[1]));
      exit[index]!.push(Number(match[2]));
    }
  }
} catch (error) {
  failure = (error as Error).message;
} finally {
  rmSync(work, { recursive: true, force: true });
}
if (failure !== null) {
  console.error(`[bench ab] ${failure}`);
  process.exit(1);
}
const ratio = (values: number[][], index: number): string => `${(median(values[index]!) / median(values[0]!)).toFixed(2)}×`;
const rows = [['case', 'wall ms', 'CPU ms', 'at exit ms', 'CPU vs first']];
cases.forEach((args, index) => rows.push([args.join(' ').slice(0, 60), median(wall[index]!).toFixed(1), median(cpu[index]!).toFixed(1), median(exit[index]!).toFixed(1), ratio(cpu, index)]));
console.log(`[bench ab] Node ${process.version}, ${runs} runs per case, interleaved; medians`);
console.log(formatTable(rows));

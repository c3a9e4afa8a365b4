// Start-up benchmark: a program started from a livemod snapshot against Node importing the same
// generated tree natively, in the same run, for trees of 50, 500 and 2,000 modules.
// Every start is a fresh process (process.execPath bench/startup-child.ts, run as .js): wall time is
// measured here from spawn to exit, and the child reports its own readings (Node start-up,
// loading livemod, sync, import + evaluate) as a JSON line. Cases:
//   node, empty program     the child importing an empty module: what every row pays for a process
//   native .ts              Node importing the tree's .ts files from disk, types stripped by Node
//   native .js              the same tree transformed to .js once (oxc-transform): the bare ESM floor
//   livemod cold            connect() with an empty store (a fresh folder per run) + app.import
//   livemod warm            a primed store: connect() (manifest answered 304) + app.import
//   livemod offline         the primed store, offline: true (no request)
// livemod is imported as a user imports it, `from 'livemod'`: the package's compiled dist/
// (rebuilt first when src/ is newer). Each tree's f_i are memoised (test/helpers/tree.ts) so main() is
// cheap and start-up, not arithmetic, is what is measured.
// The snapshot is served by `livemod serve <tree> --port 0 --json`, its own long-lived process
// for each tree, so its CPU is not the client's. Runs of the cases are interleaved so drift on
// the machine hits them alike, after one discarded warm-up run of each. Every run's printed
// result is checked against the tree's expected value, and each livemod run's requests against
// what its case must need. Then one warm start of the largest tree runs under --cpu-prof and
// its top costs are printed (BENCH_PROFILE=0 skips it).
// Run: npm run bench:startup   (BENCH_SIZES=50,500 and BENCH_RUNS=n to change what runs)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'oxc-transform';
import { generateTree, type GeneratedTree } from '../test/helpers/tree.ts';
import { summariseProfile } from './lib/startup-profile.ts';
import { median, percentile } from './lib/stats.ts';
import { formatTable } from './lib/table.ts';

const SIZES = (process.env.BENCH_SIZES ?? '50,500,2000').split(',').map(Number);
const runsFor = (modules: number): number => Number(process.env.BENCH_RUNS ?? (modules >= 2000 ? 9 : 15));
const PROFILE = process.env.BENCH_PROFILE !== '0';
const root = dirname(import.meta.dirname);
const child = join(import.meta.dirname, 'out', 'startup-child.js');
// What `import { connect } from 'livemod'` loads: the package's compiled entry (dist/).
const entry = fileURLToPath(import.meta.resolve('livemod'));
const started = performance.now();

interface Reading {
  readonly firstLine: number;
  readonly loaded?: number;
  readonly synced?: number;
  readonly done: number;
  readonly from?: string;
  readonly requests?: readonly { kind: string; status: number | null }[];
  readonly notices?: readonly string[];
}

interface Case {
  readonly name: string;
  /** Short name for the summary. */
  readonly id: string;
  readonly kind: 'empty' | 'native' | 'cold' | 'warm' | 'offline';
  /** Arguments for the child, made fresh for each run (cold gets a new store folder). */
  readonly args: () => { args: string[] };
  readonly wall: number[];
  readonly readings: Reading[];
}

interface Serve {
  readonly process: ChildProcess;
  readonly url: string;
  readonly publicKey: string;
}

/** Runs the child once: wall ms from spawn to exit, its JSON readings, and the program's result. */
function start(args: readonly string[], nodeFlags: readonly string[] = []): Promise<{ wall: number; reading: Reading; result: number | null }> {
  return new Promise((resolve, reject) => {
    const begun = performance.now();
    const proc = spawn(process.execPath, [...nodeFlags, child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let wall = 0;
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    proc.on('exit', () => (wall = performance.now() - begun));
    proc.on('error', reject);
    proc.on('close', (code) => {
      if (code !== 0) return reject(new Error(`child ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
      let reading: Reading | undefined;
      let result: number | null = null;
      for (const line of stdout.split('\n').filter(Boolean)) {
        const value = JSON.parse(line) as { result?: number } & Partial<Reading>;
        if (typeof value.result === 'number') result = value.result;
        else if (typeof value.done === 'number') reading = value as Reading;
      }
      if (!reading) return reject(new Error(`child ${args.join(' ')} printed no readings: ${stdout.trim()} ${stderr.trim()}`));
      resolve({ wall, reading, result });
    });
  });
}

/** `livemod serve <dir> --port 0 --json` as its own process; resolves on its `listening` event. */
function serve(dir: string): Promise<Serve> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [join(root, 'bin', 'livemod.js'), 'serve', dir, '--port', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    proc.on('exit', (code) => reject(new Error(`livemod serve exited ${code} before listening: ${stderr.trim()}`)));
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const event = JSON.parse(line) as { event: string; url?: string; publicKey?: string };
      if (event.event === 'listening') resolve({ process: proc, url: event.url!, publicKey: event.publicKey! });
    });
  });
}

/** The tree under `<dir>/ts` with a run.ts entry, and the same tree transformed to `<dir>/js`. */
function prepare(dir: string, modules: number): GeneratedTree {
  rmSync(dir, { recursive: true, force: true });
  const tree = generateTree(join(dir, 'ts'), modules, { seed: modules, extensionless: 0 });
  const run = "import { main } from './main.ts';\n\nconsole.log(JSON.stringify({ result: main() }));\n";
  writeFileSync(join(dir, 'ts', 'run.ts'), run);
  // Outside the served folder, so the snapshot holds the tree alone; Node finds it walking up.
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  for (const path of [...tree.modules, 'run.ts']) {
    const output = transformSync(path, readFileSync(join(dir, 'ts', path), 'utf8'), { target: 'esnext' });
    if (output.errors.length > 0) throw new Error(`${path}: ${output.errors[0]!.message}`);
    const file = join(dir, 'js', path.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, output.code.replace(/(from\s*["'])(\.{1,2}\/[^"']*)\.ts(["'])/g, '$1$2.js$3'));
  }
  writeFileSync(join(dir, 'empty.js'), '');
  return tree;
}

/** What each livemod case must ask the network for; anything else means the run measured the wrong thing. */
function checkRequests(kind: Case['kind'], reading: Reading): void {
  const seen = (reading.requests ?? []).map((request) => `${request.kind} ${request.status}`).join(', ');
  const wanted = { cold: 'manifest 200, batch 200', warm: 'manifest 304', offline: '' }[kind as 'cold' | 'warm' | 'offline'];
  if (wanted !== undefined && seen !== wanted) throw new Error(`${kind}: requests were [${seen}], expected [${wanted}]`);
  const from = { cold: 'network', warm: 'not-modified', offline: 'offline' }[kind as 'cold' | 'warm' | 'offline'];
  if (from !== undefined && reading.from !== from) throw new Error(`${kind}: ran from ${reading.from}, expected ${from}`);
}

const ms = (value: number): string => value.toFixed(1);
const ratio = (value: number): string => `${value.toFixed(2)}×`;
const splits = (readings: readonly Reading[], pick: (reading: Reading) => number | undefined): string => {
  const values = readings.map(pick).filter((value): value is number => value !== undefined);
  return values.length === readings.length ? ms(median(values)) : '–';
};

/** Builds dist/ (npm run build) when src/ changed after it, so the bench never measures a stale build. */
function freshBuild(): string {
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true, recursive: true })
      .filter((item) => item.isFile())
      .reduce((latest, item) => Math.max(latest, statSync(join(item.parentPath, item.name)).mtimeMs), 0);
  if (existsSync(entry) && statSync(entry).mtimeMs >= newest(join(root, 'src'))) return 'dist/ up to date';
  const tsc = spawnSync(process.execPath, [join(root, 'tools', 'bundle.ts')], { encoding: 'utf8' });
  // The bundle is written despite type errors (tsc's exit 2); only a missing entry means there is nothing to measure.
  if (!existsSync(entry)) throw new Error(`npm run build made no ${entry}: ${tsc.stdout}${tsc.stderr}`);
  return tsc.status === 0 ? 'dist/ rebuilt from src/ (it was older)' : `dist/ rebuilt from src/ (it was older; tsc reported type errors: ${tsc.stdout.split('\n')[0]})`;
}
const build = freshBuild();

// The child as JavaScript, so no case starts Node's type stripper for the child itself.
mkdirSync(dirname(child), { recursive: true });
const childSource = transformSync('startup-child.ts', readFileSync(join(import.meta.dirname, 'startup-child.ts'), 'utf8'), { target: 'esnext' });
if (childSource.errors.length > 0) throw new Error(`startup-child.ts: ${childSource.errors[0]!.message}`);
writeFileSync(child, childSource.code);

console.log(`startup benchmark: trees of ${SIZES.join(', ')} modules (+ main.ts, run.ts), each start a fresh process`);
console.log(`machine: ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}, livemod serve on loopback in its own process`);
console.log(`livemod: ${relative(root, entry)}, the package entry (${build})`);
console.log(`load average at start: ${loadavg().map((load) => load.toFixed(2)).join(' ')} (other work on the machine inflates every row alike; interleaving keeps the ratios fair)`);
console.log('targets: livemod warm ≤ 1.0× native .ts (median), livemod cold ≤ 2× livemod warm\n');

const summary: string[][] = [['modules', 'native .ts', 'native .js', 'cold', 'warm', 'offline', 'warm/native', 'cold/warm']];

for (const modules of SIZES) {
  const dir = join(import.meta.dirname, 'out', `startup-${modules}`);
  const tree = prepare(dir, modules);
  const runs = runsFor(modules);
  const server = await serve(join(dir, 'ts'));
  try {
    const warmCache = join(dir, 'cache-warm');
    const livemod = (cache: string, offline = false): string[] => ['livemod', entry, server.url, server.publicKey, cache, ...(offline ? ['offline'] : [])];
    // Prime the shared store once; warm and offline runs only read it (and bump its checkedAt).
    const primed = await start(livemod(warmCache));
    if (primed.result !== tree.expected) throw new Error(`priming run printed ${primed.result}, expected ${tree.expected}`);

    const cases: Case[] = [
      { name: 'node, empty program', id: 'empty', kind: 'empty', args: () => ({ args: ['native', join(dir, 'empty.js')] }), wall: [], readings: [] },
      { name: 'native .ts (node run.ts)', id: 'native .ts', kind: 'native', args: () => ({ args: ['native', join(dir, 'ts', 'run.ts')] }), wall: [], readings: [] },
      { name: 'native .js (node run.js)', id: 'native .js', kind: 'native', args: () => ({ args: ['native', join(dir, 'js', 'run.js')] }), wall: [], readings: [] },
      {
        name: 'livemod cold',
        id: 'cold',
        kind: 'cold',
        args: () => {
          // Removed only after the tree's last run: deleting thousands of files (on a disk
          // mounted with discard) slows the file creations that follow it.
          const cache = mkdtempSync(join(dir, 'cache-cold-'));
          return { args: livemod(cache) };
        },
        wall: [],
        readings: [],
      },
      { name: 'livemod warm', id: 'warm', kind: 'warm', args: () => ({ args: livemod(warmCache) }), wall: [], readings: [] },
      { name: 'livemod offline', id: 'offline', kind: 'offline', args: () => ({ args: livemod(warmCache, true) }), wall: [], readings: [] },
    ];

    for (let run = -1; run < runs; run += 1) {
      for (const each of cases) {
        const { wall, reading, result } = await start(each.args().args);
        if (each.kind !== 'empty' && result !== tree.expected) throw new Error(`${each.name}: printed ${result}, expected ${tree.expected}`);
        checkRequests(each.kind, reading);
        if (run < 0) continue;
        each.wall.push(wall);
        each.readings.push(reading);
      }
    }

    const byName = new Map(cases.map((each) => [each.id, each]));
    const floor = median(byName.get('native .ts')!.wall);
    const warm = median(byName.get('warm')!.wall);
    const cold = median(byName.get('cold')!.wall);
    console.log(`${modules} modules: ${(tree.bytes / 1024).toFixed(0)} KiB of TypeScript, ${runs} runs per case after 1 warm-up, interleaved; result ${tree.expected} checked on every run`);
    const rows = [['case', 'median ms', 'p90 ms', 'requests', 'vs native .ts', 'node start', 'load livemod', 'sync', 'import+eval', 'in-process']];
    for (const each of cases) {
      const requests = each.kind === 'cold' || each.kind === 'warm' || each.kind === 'offline' ? String(each.readings[0]!.requests!.length) : '–';
      rows.push([
        each.name,
        ms(median(each.wall)),
        ms(percentile(each.wall, 90)),
        requests,
        ratio(median(each.wall) / floor),
        splits(each.readings, (reading) => reading.firstLine),
        splits(each.readings, (reading) => (reading.loaded === undefined ? undefined : reading.loaded - reading.firstLine)),
        splits(each.readings, (reading) => (reading.synced === undefined || reading.loaded === undefined ? undefined : reading.synced - reading.loaded)),
        splits(each.readings, (reading) => reading.done - (reading.synced ?? reading.firstLine)),
        splits(each.readings, (reading) => reading.done - reading.firstLine),
      ]);
    }
    console.log(formatTable(rows));
    console.log(`warm/native .ts ${ratio(warm / floor)} (target ≤ 1.00×: ${warm <= floor ? 'met' : 'NOT met'}); cold/warm ${ratio(cold / warm)} (target ≤ 2.00×: ${cold <= 2 * warm ? 'met' : 'NOT met'})\n`);
    summary.push([String(modules), ...['native .ts', 'native .js', 'cold', 'warm', 'offline'].map((name) => ms(median(byName.get(name)!.wall))), ratio(warm / floor), ratio(cold / warm)]);
    if (PROFILE && modules === Math.max(...SIZES)) {
      const profiles = join(dir, 'profile');
      rmSync(profiles, { recursive: true, force: true });
      const { wall, result } = await start(livemod(warmCache), ['--cpu-prof', '--cpu-prof-dir', profiles]);
      if (result !== tree.expected) throw new Error(`profiled run printed ${result}, expected ${tree.expected}`);
      const file = join(profiles, readdirSync(profiles).find((name) => name.endsWith('.cpuprofile'))!);
      const profile = summariseProfile(file, root);
      console.log(`profile of one livemod warm start, ${modules} modules (--cpu-prof, ${ms(wall)} ms wall, ${ms(profile.totalMs)} ms sampled; ${file}):`);
      const costs = (list: typeof profile.parts): string[][] => list.map((cost) => [cost.name, ms(cost.ms), `${(cost.share * 100).toFixed(1)}%`]);
      console.log(formatTable([['where the time went (self time)', 'ms', 'share'], ...costs(profile.parts)]));
      console.log();
      console.log(formatTable([['livemod functions (inclusive)', 'ms', 'share'], ...costs(profile.livemod)]));
      console.log();
      console.log(formatTable([['functions (self time)', 'ms', 'share'], ...costs(profile.functions)]));
      console.log();
    }
  } finally {
    server.process.kill('SIGTERM');
    for (const name of readdirSync(dir)) if (name.startsWith('cache-cold-')) rmSync(join(dir, name), { recursive: true, force: true });
  }
}

console.log(formatTable(summary));
console.log(`\n(medians of wall time in ms, spawn to exit; load average at end ${loadavg().map((load) => load.toFixed(2)).join(' ')}; whole bench ${((performance.now() - started) / 1000).toFixed(0)} s)`);

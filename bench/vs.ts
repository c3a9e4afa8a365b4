// Start-up against Node and Deno, as users start them: every start a fresh process of the real
// command, timed from spawn to exit in this process, on generated JavaScript trees of 50, 500
// and 2,000 modules (bench/lib/js-tree.ts; main.js prints the tree's value, checked on every run).
//   Node from disk              node main.js                                     (the baseline)
//   Node + compile cache        the same, NODE_COMPILE_CACHE a primed folder
//   livemod run URL cold        livemod run <url>/main.js --key … --cache <a new folder per run>
//   livemod run URL warm        the same with a primed --cache: one manifest request, 304
//   livemod run URL --offline   the primed --cache, no request
//   livemod run ./main.js       a local run's second start: LIVEMOD_CACHE primed, so its build
//                               cache has every transform and the start builds nothing
//   Deno cold / warm / --reload deno run --allow-all <url>/main.js with a new DENO_DIR per run,
//                               a primed one (no request), a primed one with --reload
// livemod serves the tree with `livemod serve <tree> --port 0 --json`, its own process for the
// whole tree; Deno gets the same files from a static server in this process
// (bench/lib/static-files.ts), both on 127.0.0.1. The CLI runs as bin/livemod.js on the pinned
// Node, from dist/ (rebuilt first when src/ is newer), staged as a package installs it
// (bench/out/installed: no src/ beside it). Cases are interleaved, round after round (each round
// starting one case later), after one discarded warm-up round that is also the check round: livemod's URL runs
// then carry a request log (--import, a subscriber on livemod's diagnostics channel livemod:sync) and must have
// made exactly the requests their case means. Deno's requests are counted on every run, as are
// the local build cache's state and --offline's notice. Then one warm and one local start of
// the largest tree run under --cpu-prof and their top costs are printed (BENCH_PROFILE=0 skips
// it). Deno's update check is off (DENO_NO_UPDATE_CHECK): it is no part of a start.
// Runs per case: 20, 15 and 9 by tree size (about 5 minutes on 2 cores).
// Run: npm run bench:vs   (BENCH_SIZES=50,500 and BENCH_RUNS=n to change what runs)
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, tmpdir, type } from 'node:os';
import { dirname, join } from 'node:path';
import { findDeno } from './lib/deno.ts';
import { writeJsTree, type JsTree } from './lib/js-tree.ts';
import { installedCli, serveTree, type Serve } from './lib/livemod-cli.ts';
import { summariseProfile } from './lib/startup-profile.ts';
import { median, percentile } from './lib/stats.ts';
import { formatTable } from './lib/table.ts';
import { serveStatic, type StaticFiles } from './lib/static-files.ts';
import { printedResult, timed, type Command, type Timed } from './lib/timed-process.ts';

const SIZES = (process.env.BENCH_SIZES ?? '50,500,2000').split(',').map(Number);
const runsFor = (modules: number): number => Number(process.env.BENCH_RUNS ?? (modules >= 2000 ? 9 : modules >= 500 ? 15 : 20));
const PROFILE = process.env.BENCH_PROFILE !== '0';
const root = dirname(import.meta.dirname);
const { bin, build } = installedCli(root);
const node = process.execPath;
const out = join(import.meta.dirname, 'out');
const started = performance.now();

type Id = 'node' | 'nodeCache' | 'cold' | 'warm' | 'offline' | 'local' | 'denoCold' | 'denoWarm' | 'denoReload';

interface Case {
  readonly id: Id;
  readonly name: string;
  /** The command of one run; `checking` marks the warm-up run, which may carry instruments. */
  readonly command: (checking: boolean) => Command;
  /** Throws when a run did not do what its case means; returns what was checked, for the table. */
  readonly check: (run: Timed, checking: boolean) => string | undefined;
  readonly wall: number[];
  readonly output: number[];
  checked: string;
}

// Everything that would change what a case starts: each case sets its own.
const baseEnv: NodeJS.ProcessEnv = { ...process.env };
for (const name of ['NODE_COMPILE_CACHE', 'NODE_DISABLE_COMPILE_CACHE', 'NODE_OPTIONS', 'LIVEMOD_CACHE', 'LIVEMOD_KEY', 'LIVEMOD_TOKEN', 'DENO_DIR']) delete baseEnv[name];
// No Deno update check: with a new DENO_DIR per cold run it would look for a release every time.
const denoEnv = (dir: string): NodeJS.ProcessEnv => ({ ...baseEnv, DENO_DIR: dir, DENO_NO_UPDATE_CHECK: '1' });

// A check run's request log: every fetch request with its status, printed to stderr at exit.
const requestLog = join(out, 'vs-request-log.mjs');
const REQUEST_MARK = '[vs-requests] ';
mkdirSync(out, { recursive: true });
writeFileSync(
  requestLog,
  [
    "import { subscribe } from 'node:diagnostics_channel';",
    'const seen = [];',
    // livemod's own channel: every request of a sync, the bare revalidation of a warm start included.
    "subscribe('livemod:sync', ({ method, url, status }) => seen.push(`${method} ${new URL(url).pathname} ${status}`));",
    `process.on('exit', () => process.stderr.write(\`\\n${REQUEST_MARK}\${JSON.stringify(seen)}\\n\`));`,
    '',
  ].join('\n'),
);

function requestsOf(stderr: string): { requests: string[]; rest: string } {
  const at = stderr.lastIndexOf(REQUEST_MARK);
  if (at < 0) throw new Error(`a check run printed no request log: ${stderr.trim().slice(-500)}`);
  const end = stderr.indexOf('\n', at);
  return { requests: JSON.parse(stderr.slice(at + REQUEST_MARK.length, end < 0 ? undefined : end)) as string[], rest: stderr.slice(0, at).trim() };
}

/** Names, sizes and mtimes of every file under `dir`: equal before and after means nothing there was written. */
function fingerprint(dir: string): string {
  const hash = createHash('sha256');
  let files = 0;
  for (const item of readdirSync(dir, { withFileTypes: true, recursive: true }).sort((a, b) => `${a.parentPath}/${a.name}`.localeCompare(`${b.parentPath}/${b.name}`))) {
    const path = join(item.parentPath, item.name);
    const stat = statSync(path);
    hash.update(`${path} ${stat.size} ${stat.mtimeMs}\n`);
    files += 1;
  }
  return `${files} ${hash.digest('hex')}`;
}

const ms = (value: number): string => value.toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const ratio = (value: number): string => `${value.toFixed(2)}×`;

const deno = findDeno(root);
const version = (await timed({ file: node, args: [bin, '--version'], cwd: root, env: baseEnv })).stdout.trim();
// Deno and livemod's URL runs start in an empty folder: nothing above it is a project (a
// package.json or deno.json there would change what Deno loads).
const neutral = mkdtempSync(join(tmpdir(), 'livemod-vs-'));

console.log(`start-up against Node and Deno: trees of ${SIZES.join(', ')} JavaScript modules (+ main.js), each start a fresh process, cases interleaved`);
console.log(`machine: ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), ${type()} ${release()}, Node ${process.version}, ${'binary' in deno ? `Deno ${deno.version}` : 'no Deno'}; servers on 127.0.0.1`);
console.log(`livemod ${version}: node bin/livemod.js (${build})`);
if (!('binary' in deno)) console.log(`Deno cases skipped: ${deno.skipped}`);
console.log(`load average at start: ${loadavg().map((load) => load.toFixed(2)).join(' ')} (other work on the machine inflates every row alike; interleaving keeps the ratios fair)\n`);

const summary: string[][] = [['modules', 'Node from disk', 'Node + cache', 'livemod cold', 'warm', 'offline', 'local 2nd', 'Deno cold', 'Deno warm', 'Deno --reload']];
const targets: string[][] = [['modules', 'warm/Node ≤ 1.0×', 'warm/Deno --reload ≤ 1.0×', 'offline/Deno warm ≤ 1.0×', 'cold/Deno cold ≤ 1.0×', 'cold/warm ≤ 1.5×', 'local 2nd/Node ≤ 1.2×']];

for (const modules of SIZES) {
  const dir = join(out, `vs-${modules}`);
  const tree: JsTree = writeJsTree(dir, modules);
  const runs = runsFor(modules);
  const served: Serve = await serveTree(bin, tree.dir, baseEnv);
  const files: StaticFiles | null = 'binary' in deno ? await serveStatic(tree.dir) : null;
  const fresh = (prefix: string): string => mkdtempSync(join(dir, prefix));
  try {
    const url = `${served.url}/main.js`;
    const livemodRun = (flags: string[], checking: boolean): Command => ({
      file: node,
      args: [...(checking ? ['--import', requestLog] : []), bin, 'run', url, '--key', served.publicKey, ...flags],
      cwd: neutral,
      env: baseEnv,
    });
    const warmStore = join(dir, 'store-warm');
    const localStore = join(dir, 'store-local');
    const nodeCache = join(dir, 'node-compile-cache');
    const denoWarm = join(dir, 'deno-warm');
    const denoReload = join(dir, 'deno-reload');
    // LIVEMOD_CACHE, not --cache: a local run takes its store from the environment only.
    const local = (): Command => ({ file: node, args: [bin, 'run', './main.js'], cwd: tree.dir, env: { ...baseEnv, LIVEMOD_CACHE: localStore } });
    const denoRun = (denoDir: string, reload: boolean): Command => ({
      file: 'binary' in deno ? deno.binary : 'deno',
      args: ['run', '--allow-all', ...(reload ? ['--reload'] : []), `${files?.url}/main.js`],
      cwd: neutral,
      env: denoEnv(denoDir),
    });
    const denoRequests = (wanted: number) => (): string => {
      const seen = files!.take();
      if (seen !== wanted) throw new Error(`Deno made ${seen} requests, expected ${wanted}`);
      return `${seen} requests, every run`;
    };
    const expectRequests = (wanted: readonly RegExp[]) => (run: Timed, checking: boolean): string | undefined => {
      if (!checking) {
        if (/offline|unreachable|\[livemod sync\]/i.test(run.stderr)) throw new Error(`a run fell back to the store: ${run.stderr.trim()}`);
        return undefined;
      }
      const { requests } = requestsOf(run.stderr);
      if (requests.length !== wanted.length || requests.some((request, index) => !wanted[index]!.test(request))) throw new Error(`requests were [${requests.join(', ')}], expected [${wanted.map(String).join(', ')}]`);
      return requests.length === 0 ? 'no request' : requests.join(', ');
    };

    // Prime what the warm cases start from. The Node compile cache is written at exit.
    const prime = async (command: Command): Promise<void> => {
      const run = await timed(command);
      if (printedResult(run.stdout) !== tree.expected) throw new Error(`priming ${command.args.join(' ')} printed ${run.stdout.trim()}, expected ${tree.expected}`);
    };
    await prime(livemodRun(['--cache', warmStore], false));
    await prime(local());
    // A tree written moments ago is "racy" for the build record (docs/protocol.md): the next
    // start reads its files and writes the record again. Past that window, a second priming run
    // leaves the record settled, as a user's second start of an older folder finds it.
    await new Promise((resolve) => setTimeout(resolve, 2100));
    await prime(local());
    const builds = join(localStore, 'builds');
    const primedBuilds = fingerprint(builds);
    await prime({ file: node, args: ['main.js'], cwd: tree.dir, env: { ...baseEnv, NODE_COMPILE_CACHE: nodeCache } });
    if (files) {
      await prime(denoRun(denoWarm, false));
      await prime(denoRun(denoReload, false));
      files.take();
    }

    const make = (id: Id, name: string, command: Case['command'], check: Case['check'] = () => undefined): Case => ({ id, name, command, check, wall: [], output: [], checked: '' });
    const cases: Case[] = [
      make('node', 'Node from disk (node main.js)', () => ({ file: node, args: ['main.js'], cwd: tree.dir, env: baseEnv })),
      make('nodeCache', 'Node + NODE_COMPILE_CACHE (primed)', () => ({ file: node, args: ['main.js'], cwd: tree.dir, env: { ...baseEnv, NODE_COMPILE_CACHE: nodeCache } })),
      // A new store folder per run, removed only after the tree's last run: deleting thousands
      // of files slows the file creations that follow it.
      make('cold', 'livemod run URL, cold (empty --cache)', (checking) => livemodRun(['--cache', fresh('store-cold-')], checking), expectRequests([/^GET \/manifest\.json 200$/, /^POST \/batch 200$/])),
      make('warm', 'livemod run URL, warm (primed --cache)', (checking) => livemodRun(['--cache', warmStore], checking), expectRequests([/^GET \/manifest\.json 304$/])),
      make('offline', 'livemod run URL --offline (primed)', (checking) => livemodRun(['--cache', warmStore, '--offline'], checking), (run, checking) => {
        if (!/offline/.test(run.stderr)) throw new Error(`--offline printed no offline notice: ${run.stderr.trim()}`);
        return checking ? expectRequests([])(run, checking) : undefined;
      }),
      make('local', 'livemod run ./main.js, 2nd start', local, () => {
        if (fingerprint(builds) !== primedBuilds) throw new Error(`a second local start wrote to its build cache (${builds}): it rebuilt something`);
        return 'build cache unchanged, every run';
      }),
    ];
    if (files) {
      cases.push(
        make('denoCold', 'Deno cold (new DENO_DIR)', () => denoRun(fresh('deno-cold-'), false), denoRequests(tree.modules.length)),
        make('denoWarm', 'Deno warm (primed DENO_DIR)', () => denoRun(denoWarm, false), denoRequests(0)),
        make('denoReload', 'Deno --reload (primed DENO_DIR)', () => denoRun(denoReload, true), denoRequests(tree.modules.length)),
      );
    }

    for (let run = -1; run < runs; run += 1) {
      // Each round starts one case later, so no case always follows the same one (a cold start
      // leaves thousands of new files for the disk to write back during the next run).
      const start = Math.max(0, run) % cases.length;
      for (const each of [...cases.slice(start), ...cases.slice(0, start)]) {
        const checking = run < 0;
        const result = await timed(each.command(checking));
        const printed = printedResult(result.stdout);
        if (printed !== tree.expected) throw new Error(`${each.name}: printed ${result.stdout.trim().slice(0, 200)}, expected ${tree.expected}`);
        const checked = each.check(result, checking);
        if (checked !== undefined && (checking || each.checked === '')) each.checked = checking && !checked.includes('every run') ? `${checked} (check run)` : checked;
        if (checking) continue;
        each.wall.push(result.wall);
        each.output.push(result.output);
      }
    }

    const byId = new Map(cases.map((each) => [each.id, median(each.wall)]));
    const baseline = byId.get('node')!;
    console.log(`${modules} modules: ${(tree.bytes / 1024).toFixed(0)} KiB of JavaScript, ${runs} runs per case after 1 warm-up, interleaved; result ${tree.expected} checked on every run`);
    const rows = [['case', 'median ms', 'p90 ms', 'to output ms', 'vs Node from disk', 'checked']];
    for (const each of cases) rows.push([each.name, ms(median(each.wall)), ms(percentile(each.wall, 90)), ms(median(each.output)), ratio(median(each.wall) / baseline), each.checked || '–']);
    console.log(formatTable(rows));

    const at = (id: Id): number | undefined => byId.get(id);
    // A target is a ratio to its reference with a limit: shown as the ratio measured, met or not.
    const verdict = (value: number | undefined, reference: number | undefined, limit = 1): string =>
      value === undefined || reference === undefined ? 'n/a (no Deno)' : `${ratio(value / reference)} ${value <= limit * reference ? 'met' : 'NOT met'}`;
    const row = [
      String(modules),
      verdict(at('warm'), baseline),
      verdict(at('warm'), at('denoReload')),
      verdict(at('offline'), at('denoWarm')),
      verdict(at('cold'), at('denoCold')),
      verdict(at('cold'), at('warm'), 1.5),
      verdict(at('local'), baseline, 1.2),
    ];
    targets.push(row);
    console.log(`targets: ${targets[0]!.slice(1).map((name, index) => `${name}: ${row[index + 1]}`).join('; ')}\n`);
    summary.push([String(modules), ...(['node', 'nodeCache', 'cold', 'warm', 'offline', 'local', 'denoCold', 'denoWarm', 'denoReload'] as const).map((id) => (at(id) === undefined ? '–' : ms(at(id)!)))]);

    if (PROFILE && modules === Math.max(...SIZES)) {
      const profiled: Array<[string, string, Command]> = [
        ['livemod run URL, warm', 'warm', livemodRun(['--cache', warmStore], false)],
        ['livemod run ./main.js (2nd start)', 'local', local()],
      ];
      for (const [name, slug, command] of profiled) {
        const profiles = join(dir, `profile-${slug}`);
        rmSync(profiles, { recursive: true, force: true });
        const run = await timed({ ...command, args: ['--cpu-prof', '--cpu-prof-dir', profiles, ...command.args] });
        if (printedResult(run.stdout) !== tree.expected) throw new Error(`profiled ${name} printed ${run.stdout.trim()}`);
        const file = join(profiles, readdirSync(profiles).find((entry) => entry.endsWith('.cpuprofile'))!);
        const profile = summariseProfile(file, root, 10);
        const costs = (list: typeof profile.parts): string[][] => list.map((cost) => [cost.name, ms(cost.ms), `${(cost.share * 100).toFixed(1)}%`]);
        console.log(`profile of one ${name} start, ${modules} modules (--cpu-prof, ${ms(run.wall)} ms wall, ${ms(profile.totalMs)} ms sampled; ${file}):`);
        console.log(formatTable([['where the time went (self time)', 'ms', 'share'], ...costs(profile.parts)]));
        console.log();
        console.log(formatTable([['livemod functions (inclusive)', 'ms', 'share'], ...costs(profile.livemod)]));
        console.log();
      }
    }
  } finally {
    served.process.kill('SIGTERM');
    await files?.close();
    for (const name of readdirSync(dir)) if (/^(store|deno)-cold-/.test(name)) rmSync(join(dir, name), { recursive: true, force: true });
  }
}
rmSync(neutral, { recursive: true, force: true });

console.log(formatTable(summary));
console.log();
console.log(formatTable(targets));
console.log(`\n(medians of wall time in ms, spawn to exit; targets as the ratio measured and whether it is within its limit; load average at end ${loadavg().map((load) => load.toFixed(2)).join(' ')}; whole bench ${((performance.now() - started) / 1000).toFixed(0)} s)`);

// Programs with npm dependencies: cold and warm start of a small program that imports six real
// packages (and their dependencies) and does a little real work with each, against Node running
// the same folder from disk with its node_modules installed, in the same run. Cases:
//   node, empty program          what every row pays for a process
//   node from disk (baseline)    `node main.js` in the program folder, node_modules installed
//   node from disk, code cache   the same with NODE_COMPILE_CACHE primed (livemod turns Node's
//                                compile cache on for every module it loads, packages included:
//                                this row shows what that alone is worth)
//   livemod cold                 `livemod run URL` from an empty working folder, a fresh --cache
//   livemod warm                 the same with a primed store
//   livemod offline              the primed store with --offline: warm without the request and
//                                the channel, so the difference is what the network costs
//   livemod warm, split          two one-line programs, each served and primed like the program:
//                                without packages (livemod's own start), and with the program's
//                                packages in the snapshot but none imported (what carrying them
//                                costs); the bench prints a warm start split by these differences
//   deno cold                    `deno run --allow-all` of the same program with npm: specifiers,
//                                a fresh DENO_DIR (Deno downloads the packages from the registry
//                                npm is configured with: NPM_CONFIG_REGISTRY)
//   deno warm                    the same with a primed DENO_DIR
// The program folder (package.json with exact versions, main.js) is written under bench/out/deps
// and installed there with `npm install` once; re-runs reuse the install while the versions
// match. The URL is `livemod serve <program> --port 0 --json`, its own long-lived process; the
// bench checks that its manifest carries the packages. Every start is a fresh process: wall time
// from spawn to exit, and (on Linux) the process's CPU time, which other work on a shared machine
// inflates less. Runs of the cases are interleaved after one discarded warm-up round, and every
// run's output line is checked. The warm ratio is printed twice: of the medians, and the median
// of each round's own ratio (which a slow spell of a shared host disturbs less). When warm misses
// its target, one warm start and one Node start (and one cold start when cold misses) run under
// --cpu-prof and their top costs are printed (BENCH_PROFILE=0 skips it). No registry reachable: says why and exits 0. Deno missing or
// offline: its rows are skipped, saying why.
// Run: npm run bench:deps   (BENCH_RUNS=n to change the 15 runs per case)
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { installedCli, serveTree, type Serve } from './lib/livemod-cli.ts';
import { summariseProfile } from './lib/startup-profile.ts';
import { median, percentile } from './lib/stats.ts';
import { formatTable } from './lib/table.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const PROFILE = process.env.BENCH_PROFILE !== '0';
const WARM_TARGET = 1.05;
const root = dirname(import.meta.dirname);
const out = join(import.meta.dirname, 'out', 'deps');
const programDir = join(out, 'program');
const started = performance.now();

/** The program's direct dependencies, exact versions (their own dependencies are npm's choice at install). */
const PACKAGES: Readonly<Record<string, string>> = { ajv: '8.20.0', chalk: '6.0.1', commander: '15.1.0', semver: '7.8.6', yaml: '2.9.1', zod: '4.6.7' };

// CommonJS (yaml's node build, semver, ajv with its four dependencies), ESM (chalk, zod, commander
// through its ESM wrapper), code generated at run time (ajv compiles validators with new Function).
const MAIN = `import YAML from 'yaml';
import { Command } from 'commander';
import { z } from 'zod';
import semver from 'semver';
import { Chalk } from 'chalk';
import Ajv from 'ajv';

const doc = YAML.parse('name: demo\\nversions: [1.2.3, 2.0.0-rc.1, 1.10.0, 0.9.9]\\nlimits: { cpu: 2, memory: 24 }\\n');
const program = new Command('tool').option('-n, --count <n>', 'how many', (value) => Number(value)).option('--dry').exitOverride();
program.parse(['--count', '3', '--dry'], { from: 'user' });
const User = z.object({ name: z.string().min(2), age: z.number().int().positive() });
const bad = User.safeParse({ name: 'x', age: -1 });
const validate = new Ajv({ allErrors: true }).compile({ type: 'object', properties: { cpu: { type: 'integer', maximum: 1 } }, required: ['cpu', 'disk'] });
validate(doc.limits);

console.log(JSON.stringify({
  yaml: YAML.stringify({ name: doc.name, limits: doc.limits }).trim(),
  commander: program.opts(),
  zod: [User.parse({ name: 'ada', age: 36 }).name, bad.success, bad.error.issues.map((issue) => issue.path.join('.')).join(',')],
  semver: [semver.sort([...doc.versions]).join(' '), semver.maxSatisfying(doc.versions, '^1.0.0'), semver.satisfies('2.0.0-rc.1', '>=1.0.0')],
  chalk: new Chalk({ level: 1 }).bold.red('ok'),
  ajv: validate.errors.map((error) => \`\${error.instancePath || '/'} \${error.keyword}\`).join('; '),
}));
`;

// The same program written in CommonJS (main.cjs beside main.js): requires, chalk and zod through
// require(esm). livemod leaves it to Node's loader, from the version's folder in the store.
const MAIN_CJS = MAIN.replace(/^import YAML from 'yaml';\nimport \{ Command \} from 'commander';\nimport \{ z \} from 'zod';\nimport semver from 'semver';\nimport \{ Chalk \} from 'chalk';\nimport Ajv from 'ajv';\n/, [
  "const YAML = require('yaml');",
  "const { Command } = require('commander');",
  "const { z } = require('zod');",
  "const semver = require('semver');",
  "const { Chalk } = require('chalk');",
  "const Ajv = require('ajv');",
  '',
].join('\n'));
if (MAIN_CJS === MAIN) throw new Error('bench/deps.ts: MAIN_CJS did not replace the imports of MAIN');

const EXPECTED = JSON.stringify({
  yaml: 'name: demo\nlimits:\n  cpu: 2\n  memory: 24',
  commander: { count: 3, dry: true },
  zod: ['ada', false, 'name,age'],
  semver: ['0.9.9 1.2.3 1.10.0 2.0.0-rc.1', '1.10.0', false],
  chalk: '\u001b[1m\u001b[31mok\u001b[39m\u001b[22m',
  ajv: '/ required; /cpu maximum',
});

// The two programs that split a warm start (served like the program): one line and no packages
// (livemod's own start), and one line with the program's packages in its snapshot, none imported
// (what carrying them costs before any is loaded).
const ONE_LINE = "console.log('ok');\n";

interface Command {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env?: Readonly<Record<string, string>>;
}

interface Run {
  readonly wall: number;
  /** CPU ms (user + system, all threads) of the process, where the platform tells; else NaN. */
  readonly cpu: number;
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface Case {
  readonly name: string;
  readonly id: 'empty' | 'node' | 'node-cache' | 'cold' | 'warm' | 'offline' | 'bare' | 'unused' | 'node-cjs' | 'warm-cjs' | 'deno-cold' | 'deno-warm';
  /** The line every run must print (null: anything, exit 0). */
  readonly expected: string | null;
  /** The command of one run, made fresh for each (cold cases get a new store). */
  readonly command: () => Command;
  readonly wall: number[];
  readonly cpu: number[];
}

/**
 * CPU time of this process's reaped children so far, in ms (Linux: cutime + cstime of
 * /proc/self/stat, in clock ticks of 10 ms): read around one child, it is that child's CPU time,
 * which other work on the machine does not inflate as it inflates wall time.
 */
function childrenCpu(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[13]) + Number(fields[14])) * 10;
  } catch {
    return Number.NaN;
  }
}

/** Runs a command once: wall ms from spawn to exit, and what it printed. */
function timed({ command, args, cwd, env }: Command, flags: readonly string[] = []): Promise<Run> {
  return new Promise((resolve, reject) => {
    const cpuBefore = childrenCpu();
    const begun = performance.now();
    const proc = spawn(command, [...flags, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let wall = 0;
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    proc.on('exit', () => (wall = performance.now() - begun));
    proc.on('error', reject);
    proc.on('close', (code) => resolve({ wall, cpu: childrenCpu() - cpuBefore, code, stdout, stderr }));
  });
}

/** A run must exit 0 having printed exactly the expected line. */
function check(name: string, run: Run, expected = EXPECTED): void {
  const printed = run.stdout.trim();
  if (run.code !== 0 || printed !== expected) {
    throw new Error(`${name}: exited ${run.code}, printed ${JSON.stringify(printed.slice(0, 400))}, expected ${JSON.stringify(expected)}; stderr: ${run.stderr.trim().slice(-1500)}`);
  }
}

const lastLine = (text: string): string => text.trim().split('\n').filter(Boolean).at(-1) ?? '(nothing)';

/** npm's own answer about the registry it would use. */
function npm(args: readonly string[], cwd: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('npm', args, { cwd, encoding: 'utf8' });
  if (result.error) return { status: null, stdout: '', stderr: result.error.message };
  return result;
}

/** Writes the program folder and installs its packages, unless the install there already has these versions. */
function prepareProgram(): string {
  mkdirSync(programDir, { recursive: true });
  const packageJson = `${JSON.stringify({ name: 'deps-program', private: true, type: 'module', main: 'main.js', dependencies: PACKAGES }, null, 2)}\n`;
  writeFileSync(join(programDir, 'main.js'), MAIN);
  writeFileSync(join(programDir, 'main.cjs'), MAIN_CJS);
  const installed = (): boolean =>
    Object.entries(PACKAGES).every(([name, version]) => {
      try {
        return (JSON.parse(readFileSync(join(programDir, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }).version === version;
      } catch {
        return false;
      }
    });
  const samePackageJson = existsSync(join(programDir, 'package.json')) && readFileSync(join(programDir, 'package.json'), 'utf8') === packageJson;
  if (samePackageJson && installed()) return 'reused the install in bench/out/deps/program';
  rmSync(join(programDir, 'node_modules'), { recursive: true, force: true });
  rmSync(join(programDir, 'package-lock.json'), { force: true });
  writeFileSync(join(programDir, 'package.json'), packageJson);
  const begun = performance.now();
  const result = npm(['install', '--no-audit', '--no-fund'], programDir);
  if (result.status !== 0 || !installed()) {
    const why = lastLine(`${result.stderr}\n${result.stdout}`);
    // No registry is not this bench's failure: say why and stop without measuring anything.
    if (/ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network|proxy|certificate|E50\d|fetch failed/i.test(`${result.stderr}${result.stdout}`) || result.status === null) {
      console.log(`bench:deps skipped: npm could not install the program's packages from its registry (${npm(['config', 'get', 'registry'], programDir).stdout.trim() || 'registry unknown'}): ${why}`);
      process.exit(0);
    }
    throw new Error(`npm install in ${programDir} exited ${result.status}: ${why}`);
  }
  return `installed with npm install in ${((performance.now() - begun) / 1000).toFixed(1)} s`;
}

/** The split programs' folders (see ONE_LINE), the second with the program's node_modules linked in. */
function prepareSplits(): { bare: string; unused: string } {
  const bare = join(out, 'bare');
  const unused = join(out, 'unused');
  for (const [dir, name, dependencies] of [[bare, 'deps-bare', {}], [unused, 'deps-unused', PACKAGES]] as const) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name, private: true, type: 'module', main: 'main.js', dependencies }, null, 2)}\n`);
    writeFileSync(join(dir, 'main.js'), ONE_LINE);
  }
  symlinkSync(join(programDir, 'node_modules'), join(unused, 'node_modules'), 'dir');
  return { bare, unused };
}

/** Files and bytes under a folder, as npm left it. */
function countFiles(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    files += 1;
    bytes += statSync(join(entry.parentPath, entry.name)).size;
  }
  return { files, bytes };
}

interface PackageRecord {
  readonly name: string;
  readonly version: string;
  readonly files: Record<string, { size: number }>;
}

/** The served manifest must carry every package the program imports, resolved where npm installed it. */
async function servedPackages(url: string): Promise<{ packages: number; files: number; bytes: number; programFiles: number }> {
  const response = await fetch(new URL('/manifest.json', url));
  if (!response.ok) throw new Error(`GET ${url}/manifest.json answered ${response.status}`);
  const signed = ((await response.json()) as { signed: { packages?: Record<string, PackageRecord>; layout?: Record<string, string>; files?: Record<string, unknown> } }).signed;
  const packages = signed.packages ?? {};
  const placed = (name: string): string | undefined => signed.layout?.[`node_modules/${name}`];
  const wrong = Object.entries(PACKAGES).filter(([name, version]) => placed(name) === undefined || packages[placed(name)!]?.version !== version);
  if (Object.keys(packages).length === 0 || wrong.length > 0) {
    throw new Error(`the served manifest does not carry the program's packages (packages: ${JSON.stringify(Object.keys(packages))}, layout: ${JSON.stringify(signed.layout)?.slice(0, 300)}; missing or wrong: ${wrong.map(([name]) => name).join(', ')}): livemod run would need them installed, and this bench would measure the wrong thing`);
  }
  let files = 0;
  let bytes = 0;
  for (const record of Object.values(packages)) {
    for (const file of Object.values(record.files)) {
      files += 1;
      bytes += file.size;
    }
  }
  return { packages: Object.keys(packages).length, files, bytes, programFiles: Object.keys(signed.files ?? {}).length };
}

/** The deno binary the `deno` devDependency installed (its postinstall puts it beside bin.cjs; else the platform package's). */
function denoBinary(): { binary: string } | { missing: string } {
  const require = createRequire(import.meta.url);
  let dir: string;
  try {
    dir = dirname(require.resolve('deno/package.json'));
  } catch {
    return { missing: 'the deno devDependency is not installed (npm ci)' };
  }
  const candidates = [join(dir, 'deno')];
  try {
    const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
    const platform = process.platform === 'linux' ? `linux-${arch}-glibc` : `${process.platform}-${arch}`;
    candidates.push(join(dirname(require.resolve(`@deno/${platform}/package.json`)), 'deno'));
  } catch {
    // No platform package: only the postinstall's copy can be there.
  }
  const binary = candidates.find((file) => existsSync(file));
  if (!binary) return { missing: `no deno binary in ${candidates.join(' or ')} (the platform package was not installed)` };
  const version = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (version.status !== 0) return { missing: `${binary} --version failed: ${lastLine(`${version.stderr}${version.error?.message ?? ''}`)}` };
  return { binary };
}

const ms = (value: number): string => value.toFixed(1);
const ratio = (value: number): string => `${value.toFixed(2)}×`;
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

console.log(`bench:deps: a program importing ${Object.entries(PACKAGES).map(([name, version]) => `${name}@${version}`).join(', ')}; each start a fresh process`);
console.log(`machine: ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}, livemod serve on loopback in its own process`);
const install = prepareProgram();
const { bin, build } = installedCli(root);
const onDisk = countFiles(join(programDir, 'node_modules'));
console.log(`program: bench/out/deps/program (${install}); node_modules: ${readdirSync(join(programDir, 'node_modules')).filter((name) => !name.startsWith('.')).length} packages, ${onDisk.files} files, ${mib(onDisk.bytes)}`);
console.log(`livemod: bin/livemod.js (${build})`);

const deno = denoBinary();
const registry = npm(['config', 'get', 'registry'], programDir).stdout.trim();
const denoDir = join(out, 'deno');
let denoSkipped = 'missing' in deno ? deno.missing : null;

const splits = prepareSplits();
const servers: Serve[] = [];
const coldDirs: string[] = [];
try {
  const [server, bareServer, unusedServer] = await Promise.all([programDir, splits.bare, splits.unused].map(async (dir) => {
    const running = await serveTree(bin, dir, process.env);
    servers.push(running);
    return running;
  })) as [Serve, Serve, Serve];
  const served = await servedPackages(server.url);
  await servedPackages(unusedServer.url);
  console.log(`snapshot: ${served.programFiles} program files + ${served.packages} package versions, ${served.files} package files, ${mib(served.bytes)}`);
  console.log(`load average at start: ${loadavg().map((load) => load.toFixed(2)).join(' ')}`);
  console.log(`targets: livemod warm ≤ ${WARM_TARGET.toFixed(2)}× node from disk (median); livemod cold ≤ deno cold (Deno's first run)\n`);

  for (const name of ['cache-warm', 'cache-warm-cjs', 'cache-bare', 'cache-unused']) rmSync(join(out, name), { recursive: true, force: true });
  rmSync(join(out, 'compile-cache'), { recursive: true, force: true });
  rmSync(denoDir, { recursive: true, force: true });
  const emptyCwd = join(out, 'cwd');
  rmSync(emptyCwd, { recursive: true, force: true });
  mkdirSync(emptyCwd, { recursive: true });
  writeFileSync(join(out, 'empty.js'), '');

  const node = (env?: Record<string, string>): Command => ({ command: process.execPath, args: ['main.js'], cwd: programDir, ...(env ? { env } : {}) });
  const livemodFrom = (from: Serve, cache: string, ...flags: string[]): Command => ({ command: process.execPath, args: [bin, 'run', `${from.url}/`, '--key', from.publicKey, '--cache', cache, ...flags], cwd: emptyCwd });
  const livemodCjs = (): Command => ({ command: process.execPath, args: [bin, 'run', `${server.url}/main.cjs`, '--key', server.publicKey, '--cache', join(out, 'cache-warm-cjs')], cwd: emptyCwd });
  const livemod = (cache: string, ...flags: string[]): Command => livemodFrom(server, cache, ...flags);
  const denoRun = (dir: string): Command => ({
    command: (deno as { binary: string }).binary,
    // --no-config: a script with npm: specifiers and no project around it (bench/out sits inside this repository, whose package.json Deno would otherwise find).
    args: ['run', '--allow-all', '--no-config', 'main.js'],
    cwd: denoDir,
    env: { DENO_DIR: dir, NPM_CONFIG_REGISTRY: registry, DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1' },
  });
  const fresh = (prefix: string): string => {
    const dir = mkdtempSync(join(out, prefix));
    coldDirs.push(dir);
    return dir;
  };

  const cases: Case[] = [
    { name: 'node, empty program', id: 'empty', command: () => ({ command: process.execPath, args: [join(out, 'empty.js')], cwd: out }), expected: null, wall: [], cpu: [] },
    { name: 'node main.js from disk (baseline)', id: 'node', command: () => node(), expected: EXPECTED, wall: [], cpu: [] },
    { name: 'node main.js, NODE_COMPILE_CACHE primed', id: 'node-cache', command: () => node({ NODE_COMPILE_CACHE: join(out, 'compile-cache') }), expected: EXPECTED, wall: [], cpu: [] },
    { name: 'livemod run URL, cold (fresh --cache)', id: 'cold', command: () => livemod(fresh('cache-cold-')), expected: EXPECTED, wall: [], cpu: [] },
    { name: 'livemod run URL, warm (primed store)', id: 'warm', command: () => livemod(join(out, 'cache-warm')), expected: EXPECTED, wall: [], cpu: [] },
    { name: 'livemod run URL --offline (primed store)', id: 'offline', command: () => livemod(join(out, 'cache-warm'), '--offline'), expected: EXPECTED, wall: [], cpu: [] },
    { name: 'livemod warm: one line, no packages', id: 'bare', command: () => livemodFrom(bareServer, join(out, 'cache-bare')), expected: 'ok', wall: [], cpu: [] },
    { name: 'livemod warm: one line, packages not imported', id: 'unused', command: () => livemodFrom(unusedServer, join(out, 'cache-unused')), expected: 'ok', wall: [], cpu: [] },
    { name: 'node main.cjs from disk (the program in CommonJS)', id: 'node-cjs', command: () => ({ ...node(), args: ['main.cjs'] }), expected: EXPECTED, wall: [], cpu: [] },
    { name: 'livemod run URL/main.cjs, warm (CommonJS, left to Node)', id: 'warm-cjs', command: livemodCjs, expected: EXPECTED, wall: [], cpu: [] },
  ];

  // Prime: the warm store, Node's compile cache, Deno's cache (which also tells whether Deno reaches the registry).
  check('priming livemod run', await timed(livemod(join(out, 'cache-warm'))));
  check('priming livemod run of main.cjs', await timed(livemodCjs()));
  check('priming livemod run (one line, no packages)', await timed(livemodFrom(bareServer, join(out, 'cache-bare'))), 'ok');
  check('priming livemod run (one line, packages not imported)', await timed(livemodFrom(unusedServer, join(out, 'cache-unused'))), 'ok');
  check('priming node with NODE_COMPILE_CACHE', await timed(node({ NODE_COMPILE_CACHE: join(out, 'compile-cache') })));
  if (denoSkipped === null) {
    mkdirSync(denoDir, { recursive: true });
    let denoMain = MAIN;
    for (const [name, version] of Object.entries(PACKAGES)) denoMain = denoMain.replace(`from '${name}';`, `from 'npm:${name}@${version}';`);
    writeFileSync(join(denoDir, 'main.js'), denoMain);
    const primed = await timed(denoRun(join(denoDir, 'cache-warm')));
    if (primed.code !== 0) denoSkipped = `deno could not run the program with npm: specifiers from ${registry || 'its registry'}: ${lastLine(primed.stderr)}`;
    else check('priming deno run', primed);
  }
  if (denoSkipped === null) {
    cases.push({ name: 'deno run, cold (fresh DENO_DIR)', id: 'deno-cold', command: () => denoRun(fresh('deno-cold-')), expected: EXPECTED, wall: [], cpu: [] });
    cases.push({ name: 'deno run, warm (primed DENO_DIR)', id: 'deno-warm', command: () => denoRun(join(denoDir, 'cache-warm')), expected: EXPECTED, wall: [], cpu: [] });
    console.log(`deno: ${spawnSync((deno as { binary: string }).binary, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]}, NPM_CONFIG_REGISTRY from npm config get registry`);
  } else {
    console.log(`deno rows skipped: ${denoSkipped}`);
  }

  for (let run = -1; run < RUNS; run += 1) {
    for (const each of cases) {
      const result = await timed(each.command());
      if (each.expected === null) {
        if (result.code !== 0) throw new Error(`${each.name} exited ${result.code}: ${result.stderr}`);
      } else {
        check(each.name, result, each.expected);
      }
      if (run < 0) continue;
      each.wall.push(result.wall);
      each.cpu.push(result.cpu);
    }
  }
  if (readdirSync(emptyCwd).length > 0) throw new Error(`livemod run wrote into its working folder: ${readdirSync(emptyCwd).join(', ')}`);

  const byId = new Map(cases.map((each) => [each.id, each]));
  const at = (id: Case['id']): number | undefined => {
    const found = byId.get(id);
    return found ? median(found.wall) : undefined;
  };
  const baseline = at('node')!;
  const cpuBaseline = median(byId.get('node')!.cpu);
  const rows = [['case', 'median ms', 'p90 ms', 'vs node from disk', 'CPU ms', 'CPU vs node']];
  for (const each of cases) {
    const cpu = median(each.cpu);
    rows.push([each.name, ms(median(each.wall)), ms(percentile(each.wall, 90)), ratio(median(each.wall) / baseline), Number.isNaN(cpu) ? '–' : cpu.toFixed(0), Number.isNaN(cpu) ? '–' : ratio(cpu / cpuBaseline)]);
  }
  console.log(`\n${RUNS} runs per case after 1 warm-up round, interleaved; the output line checked on every run`);
  console.log(formatTable(rows));
  console.log('(CPU: user + system time of the process and its threads, median, in 10 ms ticks; deno cold waits on the network, which costs wall time but little CPU)');
  const warm = at('warm')!;
  const cold = at('cold')!;
  const denoCold = at('deno-cold');
  const warmMet = warm <= WARM_TARGET * baseline;
  const coldMet = denoCold === undefined ? null : cold <= denoCold;
  console.log(`\nwarm / node from disk ${ratio(warm / baseline)} (target ≤ ${WARM_TARGET.toFixed(2)}×: ${warmMet ? 'met' : 'NOT met'})`);
  // The same ratio taken round by round (each round runs every case once, seconds apart) and the
  // median of those: a slow spell of a shared host then slows both sides of a ratio, where a
  // ratio of medians compares runs minutes apart. When the two disagree, the host was noisy.
  const paired = (a: Case['id'], b: Case['id']): number => {
    const [x, y] = [byId.get(a)!.wall, byId.get(b)!.wall];
    return median(x.map((value, index) => value / y[index]!));
  };
  console.log(`warm / node from disk, median of the ${RUNS} rounds' ratios ${ratio(paired('warm', 'node'))}; --offline ${ratio(paired('offline', 'node'))}; livemod's own start (one line, no packages, over an empty Node), median of the rounds' differences ${ms(median(byId.get('bare')!.wall.map((value, index) => value - byId.get('empty')!.wall[index]!)))} ms`);
  console.log(`the program in CommonJS: warm / node main.cjs from disk ${ratio(at('warm-cjs')! / at('node-cjs')!)}`);
  console.log(denoCold === undefined ? `cold ${ms(cold)} ms (target ≤ deno cold: not measured, ${denoSkipped})` : `cold ${ms(cold)} ms vs deno cold ${ms(denoCold)} ms, ${ratio(cold / denoCold)} (target ≤ 1.00×: ${coldMet ? 'met' : 'NOT met'})`);


  // A warm start split into parts by differences of medians (the split rows): livemod's own
  // start, carrying the packages in the snapshot, and loading them with the program's work.
  const both = (id: Case['id']): [number, number] => [median(byId.get(id)!.wall), median(byId.get(id)!.cpu)];
  const minus = (a: Case['id'], b: Case['id']): string[] => both(a).map((value, index) => (Number.isNaN(value) ? '–' : (value - both(b)[index]!).toFixed(index === 0 ? 1 : 0)));
  console.log(
    `\n${formatTable([
      ['a warm start, by differences of medians', 'wall ms', 'CPU ms'],
      ["livemod's own start (one line, no packages − node empty program)", ...minus('bare', 'empty')],
      ['the packages in the snapshot (one line, packages not imported − one line, no packages)', ...minus('unused', 'bare')],
      ["loading the packages + the program's work, livemod (warm − one line, packages not imported)", ...minus('warm', 'unused')],
      ["loading the packages + the program's work, node (node main.js − node empty program)", ...minus('node', 'empty')],
      ['the network of a warm start (warm − --offline)', ...minus('warm', 'offline')],
    ])}`,
  );

  if (PROFILE && (!warmMet || coldMet === false)) {
    const profiles: [string, Command][] = [];
    if (!warmMet) profiles.push(['livemod warm', livemod(join(out, 'cache-warm'))], ['node from disk', node()]);
    if (coldMet === false) profiles.push(['livemod cold', livemod(fresh('cache-cold-'))]);
    for (const [name, command] of profiles) {
      const dir = join(out, 'profile', name.replaceAll(' ', '-'));
      rmSync(dir, { recursive: true, force: true });
      const result = await timed(command, ['--cpu-prof', '--cpu-prof-dir', dir]);
      check(`profiled ${name}`, result);
      const file = join(dir, readdirSync(dir).find((item) => item.endsWith('.cpuprofile'))!);
      const profile = summariseProfile(file, root);
      console.log(`\nprofile of one ${name} start (--cpu-prof, ${ms(result.wall)} ms wall, ${ms(profile.totalMs)} ms sampled; ${file}):`);
      const costs = (list: typeof profile.parts): string[][] => list.map((cost) => [cost.name, ms(cost.ms), `${(cost.share * 100).toFixed(1)}%`]);
      console.log(formatTable([['where the time went (self time)', 'ms', 'share'], ...costs(profile.parts)]));
      if (profile.livemod.length > 0) console.log(`\n${formatTable([['livemod functions (inclusive)', 'ms', 'share'], ...costs(profile.livemod)])}`);
      console.log(`\n${formatTable([['functions (self time)', 'ms', 'share'], ...costs(profile.functions)])}`);
    }
  }
} finally {
  for (const each of servers) each.process.kill('SIGTERM');
  // Removed only at the end: deleting thousands of files between runs slows the file creations that follow.
  for (const dir of coldDirs) rmSync(dir, { recursive: true, force: true });
}
console.log(`\n(medians of wall time in ms, spawn to exit; load average at end ${loadavg().map((load) => load.toFixed(2)).join(' ')}; whole bench ${((performance.now() - started) / 1000).toFixed(0)} s)`);

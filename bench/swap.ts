// Hot-swap benchmark: a file write → the first call of the new code, and the heap a long run of
// swaps leaves behind, for livemod beside the other ways Node programs take new code — all in the
// same run, on the same two-module program (bench/swap/app.ts: `main` calls `value()` of a
// self-accepting `target`; each edit writes a new number into `target.js`).
//
// Latency (median and p90 of BENCH_SWAP_EDITS edits, 40 by default, after 3 discarded warm-ups;
// time from just before the write to the first call that returned the new number):
//   floor                 Node's fs.watch event for the file, in this process: no tool at all
//   livemod, local        openFolder(dir, { live: true }) in this process; a call on each 'swap'
//   livemod, server       `livemod serve --watch` as a child, connect(url, { live: true }) here
//   node --watch          the program restarted; its first call at start
//   hot-hook, dynohot, Vite's ModuleRunner   each in a child, as its documentation sets it up
//     (app.ts says how each learns that new code is in); the child stamps the call with the
//     monotonic clock, so the pipe back to this process is not counted.
// Retained heap per swap (children with --expose-gc, heap after full collections), above the
// heap after BENCH_SWAP_SWAP_WARMUP (100) warm-up swaps and, as the issue defines it, above the
// heap after the first swap (swap/memory.ts says why both): livemod's registry alone, without a
// watcher, over BENCH_SWAP_REGISTRY (10,000, the issue's count) swaps of one ~10 KB module (two
// versions alternating, and a new version per swap through the incremental builder); and every
// tool's program driven by BENCH_SWAP_SWAPS (1,000) writes of its ~10 KB target. The memory
// children run side by side: their heaps are their own, and no time is measured there.
// Run: npm run bench:swap   (figures go in docs/benchmarks.md; BENCH_SWAP_ONLY=latency|memory runs one half)
import { watch as fsWatch, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { median, percentile } from './lib/stats.ts';
import { formatTable } from './lib/table.ts';
import { writeApp, type App, type Tool } from './swap/app.ts';
import { ToolProcess } from './swap/child.ts';
import { measureEdits, pause, type Probe } from './swap/latency.ts';
import { livemodLocal, livemodLocalStages, livemodServer, serve, type EditPlan, type LatencyResult } from './swap/livemod.ts';
import { driveSwaps, PAD_BYTES, retained as retainedFrom, type FileRetained, type HeapReadings, type Retained } from './swap/memory.ts';

const EDITS = Number(process.env.BENCH_SWAP_EDITS ?? 40);
const WARMUP = 3;
const SWAPS = Number(process.env.BENCH_SWAP_SWAPS ?? 1000);
const SWAP_WARMUP = Number(process.env.BENCH_SWAP_SWAP_WARMUP ?? 100);
// The registry alone swaps fast: it runs the issue's own count.
const REGISTRY_SWAPS = Number(process.env.BENCH_SWAP_REGISTRY ?? 10_000);
const ONLY = process.env.BENCH_SWAP_ONLY;
const TIMEOUT_MS = 5_000;
// Past chokidar's 50 ms throttle of repeated changes to one path (livemod, hot-hook and Vite
// watch with chokidar), and past node --watch's own throttle of a restarted file.
const SETTLE_MS = 150;
const NODE_WATCH_SETTLE_MS = 600;
const root = dirname(import.meta.dirname);
const out = join(import.meta.dirname, 'out', 'swap');
const node = process.execPath;
const started = performance.now();

function version(pkg: string): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
}

function startChild(name: string, args: readonly string[], cwd: string): ToolProcess {
  return new ToolProcess(name, node, args, cwd);
}

// ---- Latency ----

const plan = (settleMs: number): EditPlan => ({ warmup: WARMUP, edits: EDITS, timeoutMs: TIMEOUT_MS, settleMs });

/** The floor: write → Node's own fs.watch event for that file, in this process. */
async function floor(): Promise<LatencyResult> {
  const app = writeApp(join(out, 'floor'), 'node-watch', 0, 0);
  let onEvent: (() => void) | undefined;
  const watcher = fsWatch(app.target, () => onEvent?.());
  const probe: Probe = {
    tool: 'node-watch',
    target: app.target,
    settleMs: 50,
    arrival: () => new Promise((resolve) => (onEvent = () => resolve(process.hrtime.bigint()))),
  };
  try {
    return { ...(await measureEdits(probe, { first: 1, ...plan(50) })), notes: [] };
  } finally {
    watcher.close();
  }
}

/** What runs each child tool's program: node flags and the entry module, in the app's folder. */
function childArgs(tool: Exclude<Tool, 'livemod'>, app: App, memory: boolean): string[] {
  const gc = memory ? ['--expose-gc'] : [];
  switch (tool) {
    case 'node-watch':
      return ['--watch', app.entry];
    case 'hot-hook':
      return [...gc, '--import=hot-hook/register', app.entry];
    case 'dynohot':
      return [...gc, '--import', 'dynohot', app.entry];
    case 'vite':
      return [...gc, app.entry];
    default: {
      const never: never = tool;
      throw new Error(`no command for ${String(never)}`);
    }
  }
}

async function childTool(tool: Exclude<Tool, 'livemod'>): Promise<LatencyResult> {
  const app = writeApp(join(out, tool), tool, 0, 0);
  const child = startChild(tool, childArgs(tool, app, false), app.dir);
  try {
    await child.valueAt(0, 30_000);
    // The tool's watcher has started by its first call; let its initial scan finish.
    await pause(500);
    const settleMs = tool === 'node-watch' ? NODE_WATCH_SETTLE_MS : SETTLE_MS;
    const probe: Probe = { tool, target: app.target, settleMs, arrival: (value) => child.valueAt(value, TIMEOUT_MS + 1000) };
    return { ...(await measureEdits(probe, { first: 1, ...plan(settleMs) })), notes: [] };
  } finally {
    await child.stop();
  }
}

// ---- Retained memory ----

interface RegistryRetained extends Retained {
  readonly retainedVersions: number;
  readonly elapsedMs: number;
}

function registryRun(mode: 'alternating' | 'distinct'): Promise<RegistryRetained> {
  const child = startChild(`registry ${mode}`, ['--expose-gc', join(import.meta.dirname, 'swap', 'livemod-registry.ts'), mode, String(SWAP_WARMUP), String(REGISTRY_SWAPS), String(REGISTRY_SWAPS / 20), join(out, `registry-${mode}`)], root);
  return child
    .wait((message) => message.event === 'retained', 600_000)
    .then((message) => ({ ...retainedFrom(message as unknown as HeapReadings), retainedVersions: message.retainedVersions as number, elapsedMs: message.elapsedMs as number }))
    .finally(() => child.stop());
}

const host = join(import.meta.dirname, 'swap', 'livemod-host.ts');
// chokidar (livemod, hot-hook, Vite) drops a second change of one path within 50 ms; dynohot
// watches with fs.watch and compares mtimes.
const gapFor = (tool: Tool): number => (tool === 'dynohot' ? 0 : 60);

type MemoryCase = 'livemod-local' | 'livemod-server' | 'hot-hook' | 'dynohot' | 'vite';

async function fileRun(name: MemoryCase): Promise<FileRetained> {
  const tool: Exclude<Tool, 'node-watch'> = name === 'livemod-local' || name === 'livemod-server' ? 'livemod' : name;
  const app = writeApp(join(out, `memory-${name}`), tool, 0, PAD_BYTES);
  let server: Awaited<ReturnType<typeof serve>> | undefined;
  let cache: string | undefined;
  let args: string[];
  if (name === 'livemod-server') {
    server = await serve(app.dir);
    cache = mkdtempSync(join(tmpdir(), 'livemod-bench-swap-'));
    args = ['--expose-gc', host, 'server', server.url, server.publicKey, cache];
  } else if (tool === 'livemod') {
    args = ['--expose-gc', host, 'folder', app.dir];
  } else {
    args = childArgs(tool, app, true);
  }
  const child = startChild(name, args, tool === 'livemod' ? root : app.dir);
  try {
    await child.valueAt(0, 60_000);
    // The watcher's initial scan (and for the server case, the channel) settles first.
    await pause(1000);
    return await driveSwaps(child, tool, app.target, { warmup: SWAP_WARMUP, swaps: SWAPS, every: 100, gapMs: gapFor(tool), timeoutMs: 10_000 });
  } finally {
    await child.stop();
    if (server) await server.child.stop();
    if (cache) rmSync(cache, { recursive: true, force: true });
  }
}

// ---- Run ----

type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };
async function attempt<T>(name: string, run: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.log(`  ${name}: FAILED — ${message.split('\n').slice(0, 6).join('\n    ')}`);
    return { ok: false, error: message.split('\n')[0]! };
  }
}

const load = (): string => loadavg().map((value) => value.toFixed(2)).join(' ');
rmSync(out, { recursive: true, force: true });
console.log(`swap benchmark: ${EDITS} edits per tool after ${WARMUP} warm-ups; retained heap over ${SWAPS} swaps (after ${SWAP_WARMUP}) of a ${PAD_BYTES / 1000} KB module`);
console.log(`Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model.trim() ?? '?'}), load average ${load()}; hot-hook ${version('hot-hook')}, dynohot ${version('dynohot')}, vite ${version('vite')}`);

const notices: string[] = [];
const latencyCases: [string, () => Promise<LatencyResult>][] = [
  ['floor', floor],
  ['livemod-local', () => livemodLocal(join(out, 'livemod-local'), plan(SETTLE_MS), notices)],
  ['livemod-server', () => livemodServer(join(out, 'livemod-server'), plan(SETTLE_MS), notices)],
  ['node-watch', () => childTool('node-watch')],
  ['hot-hook', () => childTool('hot-hook')],
  ['dynohot', () => childTool('dynohot')],
  ['vite', () => childTool('vite')],
];
const latency = new Map<string, Outcome<LatencyResult>>();
for (const [name, run] of ONLY === 'memory' ? [] : latencyCases) {
  const begun = performance.now();
  const result = await attempt(name, run);
  latency.set(name, result);
  if (!result.ok) continue;
  const { samples, missed } = result.value;
  console.log(`  ${name}: ${samples.length > 0 ? `median ${median(samples).toFixed(2)} ms` : 'no edit arrived'} (${((performance.now() - begun) / 1000).toFixed(1)} s)${missed ? `, ${missed} missed` : ''}`);
}
const localStages =
  ONLY === 'memory'
    ? undefined
    : await attempt('livemod local, by hand', async () => [...(await livemodLocalStages(join(out, 'livemod-stages'), plan(SETTLE_MS))), ...(await livemodLocalStages(join(out, 'livemod-stages-0'), plan(SETTLE_MS), 0))]);

const memoryCases: MemoryCase[] = ['livemod-local', 'livemod-server', 'hot-hook', 'dynohot', 'vite'];
const retained = new Map<MemoryCase, Outcome<FileRetained>>();
let alternating: Outcome<RegistryRetained> | undefined;
let distinct: Outcome<RegistryRetained> | undefined;
if (ONLY !== 'latency') {
  console.log(`retained heap: the memory children, side by side…`);
  const memoryBegun = performance.now();
  const fileRuns = memoryCases.map((name) => attempt(`${name} memory`, () => fileRun(name)));
  [alternating, distinct] = await Promise.all([attempt('registry alternating', () => registryRun('alternating')), attempt('registry distinct', () => registryRun('distinct'))]);
  for (const [index, run] of (await Promise.all(fileRuns)).entries()) retained.set(memoryCases[index]!, run);
  console.log(`  (${((performance.now() - memoryBegun) / 1000).toFixed(1)} s)`);
}

// ---- Report ----

const base = latency.get('livemod-local');
const baseMedian = base?.ok && base.value.samples.length > 0 ? median(base.value.samples) : Number.NaN;
const ms = (value: number): string => value.toFixed(2);
const bytes = (value: number): string => (Number.isNaN(value) ? '–' : Math.round(value).toLocaleString('en-US'));
const rows: [string, string | null, MemoryCase | null][] = [
  ['write → fs.watch event (floor, no tool)', 'floor', null],
  ['livemod, local watch (in-process)', 'livemod-local', 'livemod-local'],
  ['livemod, through the server (loopback)', 'livemod-server', 'livemod-server'],
  ['node --watch (restarts the process)', 'node-watch', null],
  [`hot-hook ${version('hot-hook')}`, 'hot-hook', 'hot-hook'],
  [`dynohot ${version('dynohot')}`, 'dynohot', 'dynohot'],
  [`Vite ${version('vite')} ModuleRunner`, 'vite', 'vite'],
];
const table: string[][] = [['case', 'median ms', 'p90 ms', 'vs livemod local', 'retained B/swap', 'last half', 'from 1st swap']];
for (const [label, latencyCase, memoryCase] of rows) {
  const cells = [label];
  const timing = latencyCase ? latency.get(latencyCase) : undefined;
  if (timing?.ok && timing.value.samples.length > 0) {
    const { samples } = timing.value;
    cells.push(ms(median(samples)), ms(percentile(samples, 90)), `${(median(samples) / baseMedian).toFixed(2)}×`);
  } else {
    cells.push(timing ? 'failed' : '–', '–', '–');
  }
  const memory = memoryCase ? retained.get(memoryCase) : undefined;
  if (memory?.ok) cells.push(bytes(memory.value.perSwap), bytes(memory.value.tail), bytes(memory.value.fromFirst));
  else cells.push(memory ? 'failed' : latencyCase === 'node-watch' ? 'none (new process)' : '–', '–', '–');
  table.push(cells);
}
for (const [label, run] of [
  [`livemod registry.swap ×${REGISTRY_SWAPS.toLocaleString('en-US')}, versions a/b alternating`, alternating],
  [`livemod registry.swap ×${REGISTRY_SWAPS.toLocaleString('en-US')}, new version each (incremental build)`, distinct],
] as const) {
  if (run) table.push([label, '–', '–', '–', ...(run.ok ? [bytes(run.value.perSwap), bytes(run.value.tail), bytes(run.value.fromFirst)] : ['failed', '–', '–'])]);
}
console.log('');
console.log(formatTable(table));
console.log('');

const serverResult = latency.get('livemod-server');
const serverMedian = serverResult?.ok && serverResult.value.samples.length > 0 ? median(serverResult.value.samples) : Number.NaN;
const met = (ok: boolean): string => (ok ? 'met' : 'NOT MET');
console.log(`target: livemod local median ≤ 5 ms — ${ms(baseMedian)} ms: ${met(baseMedian <= 5)}`);
console.log(`target: livemod through the server median ≤ 20 ms — ${ms(serverMedian)} ms: ${met(serverMedian <= 20)}`);
const perSwapTargets: [string, Outcome<Retained> | undefined][] = [
  ['registry, a/b', alternating],
  ['registry, new versions', distinct],
  ['local watch', retained.get('livemod-local')],
  ['through the server', retained.get('livemod-server')],
];
for (const [label, run] of perSwapTargets) {
  if (run?.ok) console.log(`target: livemod under 1 KB per swap (${label}) — ${bytes(run.value.perSwap)} B after the warm-up: ${met(run.value.perSwap < 1024)}; ${bytes(run.value.tail)} B over the last half: ${met(run.value.tail < 1024)}; ${bytes(run.value.fromFirst)} B from the first swap: ${met(run.value.fromFirst < 1024)}`);
}
console.log('');

for (const [name, result] of latency) {
  if (!result.ok) continue;
  const { missed, notes } = result.value;
  for (const note of [...(missed > 0 ? [`${missed} edits never arrived within ${TIMEOUT_MS} ms`] : []), ...notes]) console.log(`${name}: ${note}`);
}
if (localStages?.ok) for (const line of localStages.value) console.log(`livemod-local: ${line}`);
for (const [name, run] of retained) {
  if (!run.ok) continue;
  const { missed, rssPerSwap, retainedVersions, curve, elapsedMs } = run.value;
  const versions = retainedVersions === null ? '' : `; ${retainedVersions} replaced versions still held`;
  console.log(`${name} memory: ${SWAP_WARMUP} + ${SWAPS} swaps${missed ? `, ${missed} edits missed` : ''}${versions}; RSS growth ${bytes(rssPerSwap)} B/swap (allocator and V8 pages included); ${(elapsedMs / 1000).toFixed(1)} s`);
  console.log(`  heap MB every 100 swaps: ${curve.map(([, value]) => (value / 1e6).toFixed(2)).join(' ')}`);
}
for (const [name, run] of [
  ['registry a/b', alternating],
  ['registry new versions', distinct],
] as const) {
  if (!run?.ok) continue;
  console.log(`${name}: ${run.value.retainedVersions} replaced versions still held; ${(run.value.elapsedMs / 1000).toFixed(1)} s`);
  console.log(`  heap MB every ${REGISTRY_SWAPS / 10} swaps: ${run.value.curve.filter((_, index) => index % 2 === 1).map(([, value]) => (value / 1e6).toFixed(2)).join(' ')}`);
}
if (notices.length > 0) console.log(`livemod notices (${notices.length}): ${notices.slice(0, 3).join(' | ')}`);
console.log(`(load average at end ${load()}; whole bench ${((performance.now() - started) / 1000).toFixed(0)} s)`);

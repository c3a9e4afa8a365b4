// livemod's latency cases, run in the bench's own process as a program would run them: local
// watch (`openFolder(dir, { live: true })`) and a client of `livemod serve --watch` over loopback
// (`connect(url, { live: true })`), each calling `main` on every applied swap. The server case
// also places the stages of its pipeline between write and call (the server's publish, seen as
// its `published` line; the manifest's and the blobs' responses), and a by-hand copy of local
// watch's steps (watchFolder → builtSource → registry.swap) says where the local time goes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { watch } from 'chokidar';
import { connect, openFolder, type App as LiveApp } from '../../src/client/index.ts';
import { builtSource, localSource } from '../../src/client/local.ts';
import { watchFolder } from '../../src/build/index.ts';
import { Registry } from '../../src/runtime/index.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { median, percentile } from '../lib/stats.ts';
import { writeApp, type App } from './app.ts';
import { ToolProcess } from './child.ts';
import { measureEdits, pause, stage, type Latencies, type Probe } from './latency.ts';

export interface LatencyResult extends Latencies {
  /** What else the run saw: where the time went, swaps that failed. */
  readonly notes: string[];
}

export interface EditPlan {
  readonly warmup: number;
  readonly edits: number;
  readonly timeoutMs: number;
  readonly settleMs: number;
}

const root = join(import.meta.dirname, '..', '..');

export function summary(label: string, values: readonly number[]): string {
  return values.length === 0 ? `${label}: –` : `${label}: median ${median(values).toFixed(2)} ms, p90 ${percentile(values, 90).toFixed(2)} ms`;
}

/** `livemod serve <dir> --watch --json --port 0` as a child, once it listens. */
export async function serve(dir: string): Promise<{ child: ToolProcess; url: string; publicKey: string }> {
  const child = new ToolProcess('livemod serve', process.execPath, [join(root, 'bin', 'livemod.js'), 'serve', dir, '--watch', '--json', '--port', '0'], dir);
  try {
    const listening = await child.wait((message) => message.event === 'listening', 30_000);
    return { child, url: listening.url as string, publicKey: listening.publicKey as string };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

/** Edits of a livemod app running here: on each applied swap, main calls the target. */
async function measureApp(live: LiveApp, app: App, plan: EditPlan): Promise<LatencyResult> {
  const main = await live.import('main.js');
  const call = main.call as () => number;
  let waiting: { value: number; resolve: (at: bigint) => void } | null = null;
  const swapped: { at: bigint; durationMs: number }[] = [];
  let failed = 0;
  live.on('swap', (record) => {
    if (record.status !== 'applied') {
      failed += 1;
      return;
    }
    const value = call();
    const at = process.hrtime.bigint();
    swapped.push({ at, durationMs: record.durationMs });
    if (waiting && value === waiting.value) {
      const { resolve } = waiting;
      waiting = null;
      resolve(at);
    }
  });
  const probe: Probe = {
    tool: 'livemod',
    target: app.target,
    settleMs: plan.settleMs,
    arrival: (value) => new Promise((resolve) => (waiting = { value, resolve })),
  };
  const result = await measureEdits(probe, { first: 1, ...plan });
  const since = result.edits[0]?.written ?? 0n;
  const measured = swapped.filter(({ at }) => at > since).map(({ durationMs }) => durationMs);
  return { ...result, notes: [summary('registry.swap itself (the swap record)', measured), ...(failed > 0 ? [`${failed} swaps not applied`] : [])] };
}

export async function livemodLocal(dir: string, plan: EditPlan, notices: string[]): Promise<LatencyResult> {
  const app = writeApp(dir, 'livemod', 0, 0);
  const live = await openFolder(app.dir, { live: true, logSwaps: false, notice: (line) => notices.push(line) });
  try {
    return await measureApp(live, app, plan);
  } finally {
    await live.close();
  }
}

/** The client's store, with the time spent in its methods counted (blob writes and reads, the commit and its fsyncs). */
function timedStore(dir: string): { store: Store; spentMs: () => number } {
  const store = openStore({ dir });
  let spent = 0;
  const timed = new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        const begun = performance.now();
        try {
          return (value as (...args: unknown[]) => unknown).apply(target, args);
        } finally {
          spent += performance.now() - begun;
        }
      };
    },
  });
  return { store: timed, spentMs: () => spent };
}

export async function livemodServer(dir: string, plan: EditPlan, notices: string[]): Promise<LatencyResult> {
  const app = writeApp(dir, 'livemod', 0, 0);
  const server = await serve(app.dir);
  const cache = mkdtempSync(join(tmpdir(), 'livemod-bench-swap-'));
  const { store, spentMs } = timedStore(cache);
  const storeMs: number[] = [];
  const published: bigint[] = [];
  const responses = { manifest: [] as bigint[], batch: [] as bigint[] };
  server.child.onMessage = (message, at) => {
    if (message.event === 'published') published.push(at);
  };
  try {
    const live = await connect(server.url, {
      publicKey: server.publicKey,
      cache: store,
      live: true,
      notice: (line) => notices.push(line),
      onRequest: (event) => {
        if (event.kind === 'manifest' || event.kind === 'batch') responses[event.kind].push(process.hrtime.bigint());
      },
    });
    try {
      // The channel connects after connect() returns; an edit before it is up would be missed.
      await pause(500);
      let spentBefore = spentMs();
      live.on('swap', () => {
        storeMs.push(spentMs() - spentBefore);
        spentBefore = spentMs();
      });
      const result = await measureApp(live, app, plan);
      return {
        ...result,
        notes: [
          summary(`write → the server's "published" line read here (watch, rebuild, sign)`, stage(result.edits, published)),
          summary('write → the manifest response (push, hint, GET)', stage(result.edits, responses.manifest)),
          summary('write → the blobs response (POST /batch)', stage(result.edits, responses.batch)),
          summary('of which in the client\'s store (missingBlobs, writeBlob, readBlob, commitManifest with its fsyncs)', storeMs.slice(-result.edits.length)),
          ...result.notes,
        ],
      };
    } finally {
      await live.close();
    }
  } finally {
    await server.child.stop();
    rmSync(cache, { recursive: true, force: true });
  }
}

/**
 * openFolder's live path by hand (watchFolder → builtSource → registry.swap, as in connect.ts),
 * with a clock at each step, so the local figure can be split into the watcher, the debounce
 * and build, signing and the swap. A second chokidar watcher on the folder times the event.
 * `debounceMs` other than watchFolder's default (none: a save builds at once) says what a
 * debounce would cost.
 */
export async function livemodLocalStages(dir: string, plan: EditPlan, debounceMs?: number): Promise<string[]> {
  const app = writeApp(dir, 'livemod', 0, 0);
  const source = localSource(app.dir);
  const registry = new Registry(source);
  const main = await registry.import('main.js');
  const call = main.call as () => number;
  const events: bigint[] = [];
  const built: bigint[] = [];
  const signed: bigint[] = [];
  const buildMs: number[] = [];
  const observer = watch(app.dir, { ignoreInitial: true });
  observer.on('change', () => events.push(process.hrtime.bigint()));
  await new Promise<void>((resolve) => observer.once('ready', () => resolve()));
  let waiting: { value: number; resolve: (at: bigint) => void } | null = null;
  const folder = watchFolder({
    builder: source.builder,
    ...(debounceMs !== undefined ? { debounceMs } : {}),
    onBuild: (result) => {
      built.push(process.hrtime.bigint());
      buildMs.push(result.durationMs);
      const next = builtSource(source.builder, result, source.keyId, registry.source.manifest.version);
      signed.push(process.hrtime.bigint());
      void registry.swap(next).then(() => {
        const value = call();
        const at = process.hrtime.bigint();
        if (waiting && value === waiting.value) {
          const { resolve } = waiting;
          waiting = null;
          resolve(at);
        }
      });
    },
    onError: () => undefined,
  });
  await folder.ready;
  try {
    await pause(300);
    const probe: Probe = { tool: 'livemod', target: app.target, settleMs: plan.settleMs, arrival: (value) => new Promise((resolve) => (waiting = { value, resolve })) };
    const result = await measureEdits(probe, { first: 1, ...plan, edits: Math.min(plan.edits, 20) });
    if (debounceMs !== undefined) return [summary(`by hand with debounceMs: ${debounceMs}, write → swapped and called`, result.samples)];
    return [
      summary('by hand, write → chokidar change event', stage(result.edits, events)),
      summary('by hand, write → build done (event + debounce (none by default) + incremental build)', stage(result.edits, built)),
      summary('by hand, of which the incremental build', buildMs.slice(-result.edits.length)),
      summary('by hand, write → new version signed', stage(result.edits, signed)),
      summary('by hand, write → swapped and called', result.samples),
    ];
  } finally {
    await folder.close();
    await observer.close();
  }
}

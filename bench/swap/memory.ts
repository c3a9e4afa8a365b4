// Retained heap per swap: a tool's program in a child with --expose-gc, its ~10 KB target
// rewritten with a new number once the previous one was seen, the child's heap read after full
// collections (each reading forces ten). What stays above a base is what the swaps kept — for
// the native-ESM tools, every version ever imported. Three figures from one run:
//   perSwap     above the heap after a warm-up of swaps, over the measured swaps;
//   tail        over the second half of the run only: growth that has stopped is warm-up (the JIT
//               compiling the swap path, bounded caches filling), growth that goes on is kept;
//   fromFirst   above the heap after the first swap, the definition (as
//               test/swap-memory.test.ts takes it).
// The heap is also read every `every` swaps. Besides showing the curve, those readings keep the
// number of forced collections between any two readings small: V8 flushes the bytecode of
// functions not run for a number of collections, and without them the start-up code still
// compiled at the base is flushed before the end and reads as megabytes "released by swapping".
import { writeTarget, type Tool } from './app.ts';
import type { ToolProcess } from './child.ts';
import { pause } from './latency.ts';

export const PAD_BYTES = 10_000;

/** Heap readings of one run: after the first swap, after the warm-up, along the way, at the end. */
export interface HeapReadings {
  readonly first: number;
  readonly base: number;
  readonly warmup: number;
  readonly swaps: number;
  /** [swap number, heap bytes] every `every` swaps. */
  readonly curve: readonly (readonly [number, number])[];
  readonly end: number;
}

export interface Retained {
  readonly perSwap: number;
  readonly tail: number;
  readonly fromFirst: number;
  readonly curve: readonly (readonly [number, number])[];
}

export function retained(readings: HeapReadings): Retained {
  const total = readings.warmup + readings.swaps;
  const half = readings.curve.find(([swap]) => swap >= readings.warmup + readings.swaps / 2);
  return {
    perSwap: (readings.end - readings.base) / readings.swaps,
    tail: half && half[0] < total ? (readings.end - half[1]) / (total - half[0]) : Number.NaN,
    fromFirst: (readings.end - readings.first) / (total - 1),
    curve: readings.curve,
  };
}

export interface FileRetained extends Retained {
  readonly missed: number;
  readonly rssPerSwap: number;
  /** Replaced versions the child's runtime says it still holds, where it can say (livemod). */
  readonly retainedVersions: number | null;
  readonly elapsedMs: number;
}

export interface SwapPlan {
  readonly warmup: number;
  readonly swaps: number;
  readonly every: number;
  /**
   * Wait after each arrival: past chokidar's throttle of repeated changes to one path (50 ms),
   * so no edit is dropped by the watcher rather than by the tool, and past livemod's recheck of
   * the path (60 ms), so every reading finds the watcher quiet.
   */
  readonly gapMs: number;
  readonly timeoutMs: number;
}

/** Drives `warmup + swaps` edits of `target`; the child has already reported `0`. */
export async function driveSwaps(child: ToolProcess, tool: Tool, target: string, plan: SwapPlan): Promise<FileRetained> {
  const started = performance.now();
  const total = plan.warmup + plan.swaps;
  let first: Awaited<ReturnType<ToolProcess['heap']>> | undefined;
  let base: Awaited<ReturnType<ToolProcess['heap']>> | undefined;
  const curve: [number, number][] = [];
  let missed = 0;
  for (let value = 1; value <= total; value += 1) {
    const arrived = child.valueAt(value, plan.timeoutMs);
    writeTarget(target, tool, value, PAD_BYTES);
    try {
      await arrived;
    } catch {
      missed += 1;
    }
    await pause(plan.gapMs);
    if (value === 1) first = await child.heap();
    if (value === plan.warmup) base = await child.heap();
    if (value % plan.every === 0 && value !== total) curve.push([value, (await child.heap()).bytes]);
  }
  const end = await child.heap();
  if (!first || !base) throw new Error(`${child.name}: the warm-up did not finish`);
  if (missed > total / 10) throw new Error(`${child.name}: ${missed} of ${total} edits never arrived — stderr: ${child.errors.slice(-600)}`);
  return {
    ...retained({ first: first.bytes, base: base.bytes, warmup: plan.warmup, swaps: plan.swaps, curve, end: end.bytes }),
    missed,
    rssPerSwap: (end.rss - base.rss) / plan.swaps,
    retainedVersions: end.retainedVersions,
    elapsedMs: performance.now() - started,
  };
}

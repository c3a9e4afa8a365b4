// The file-driven memory runs: a tool's program in a child with --expose-gc, its ~10 KB target
// rewritten with a new number once the previous one was seen, the child's heap taken after full
// collections. What stays above a base is what the swaps kept (for the native-ESM tools: every
// version ever imported). Two bases: the heap after the first swap (the definition, as
// test/swap-memory.test.ts takes it), and after a warm-up of swaps, past the one-off growth of a
// program that has just started swapping (the JIT compiling the swap path, caches filling up),
// which is bounded and over 1,000 swaps would otherwise read as a per-swap cost.
import { writeTarget, type Tool } from './app.ts';
import type { ToolProcess } from './child.ts';
import { pause } from './latency.ts';

export const PAD_BYTES = 10_000;

export interface Retained {
  /** Swaps seen after the warm-up base (the per-swap figures divide by it). */
  readonly swaps: number;
  readonly missed: number;
  /** Heap bytes per swap above the base taken after the warm-up. */
  readonly perSwap: number;
  /** Heap bytes per swap above the base taken after the first swap. */
  readonly fromFirst: number;
  readonly rssPerSwap: number;
  readonly elapsedMs: number;
}

export interface SwapPlan {
  readonly warmup: number;
  readonly swaps: number;
  /**
   * Wait after each arrival: past chokidar's throttle of repeated changes to one path (50 ms),
   * so no edit is dropped by the watcher rather than by the tool.
   */
  readonly gapMs: number;
  readonly timeoutMs: number;
}

/** Drives `warmup + swaps` edits of `target`; the child has already reported `0`. */
export async function driveSwaps(child: ToolProcess, tool: Tool, target: string, plan: SwapPlan): Promise<Retained> {
  const started = performance.now();
  let first: { bytes: number; rss: number } | undefined;
  let base: { bytes: number; rss: number } | undefined;
  let seenFirst = 0;
  let seen = 0;
  let missed = 0;
  for (let value = 1; value <= plan.warmup + plan.swaps; value += 1) {
    const arrived = child.valueAt(value, plan.timeoutMs);
    writeTarget(target, tool, value, PAD_BYTES);
    try {
      await arrived;
      if (first) seenFirst += 1;
      else first = await child.heap();
      if (base) seen += 1;
      else if (value >= plan.warmup) base = await child.heap();
    } catch {
      missed += 1;
    }
    await pause(plan.gapMs);
  }
  const end = await child.heap();
  if (!first || !base) throw new Error(`${child.name}: no swap arrived (${missed} edits missed)`);
  return {
    swaps: seen,
    missed,
    perSwap: seen > 0 ? (end.bytes - base.bytes) / seen : Number.NaN,
    fromFirst: seenFirst > 0 ? (end.bytes - first.bytes) / seenFirst : Number.NaN,
    rssPerSwap: seen > 0 ? (end.rss - base.rss) / seen : Number.NaN,
    elapsedMs: performance.now() - started,
  };
}

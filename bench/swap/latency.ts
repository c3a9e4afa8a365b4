// The edit loop of the latency runs: write the target with a new number, and take the time from
// just before the write to the first call of the new code that returned that number (on the
// monotonic clock, in whichever process made the call).
import { writeTarget, type Tool } from './app.ts';

export interface Probe {
  readonly tool: Tool;
  readonly target: string;
  /** Resolves with the monotonic time (ns) of the first call that returned `value`. */
  arrival(value: number): Promise<bigint>;
  /** Quiet time after each arrival, past the tool's own throttles, so each edit is measured alone. */
  readonly settleMs: number;
}

export interface Latencies {
  /** ms per measured edit. */
  readonly samples: number[];
  /** Edits whose value never arrived (the timeout ended them). */
  readonly missed: number;
  /** Each measured edit's write and arrival (monotonic ns; null: never arrived), to place the stages of a pipeline between them. */
  readonly edits: { readonly written: bigint; readonly arrived: bigint | null }[];
}

export const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `warmup` discarded edits (JIT, the watcher's first events, lazy loads in the tool), then
 * `edits` measured ones. Values count up from `first`, so every edit is new content.
 */
export async function measureEdits(probe: Probe, options: { first: number; warmup: number; edits: number; timeoutMs: number }): Promise<Latencies> {
  const samples: number[] = [];
  const edits: { written: bigint; arrived: bigint | null }[] = [];
  let missed = 0;
  for (let edit = 0; edit < options.warmup + options.edits; edit += 1) {
    const value = options.first + edit;
    const arrived = probe.arrival(value);
    const written = process.hrtime.bigint();
    writeTarget(probe.target, probe.tool, value, 0);
    const timeout = new Promise<null>((resolve) => setTimeout(resolve, options.timeoutMs, null).unref());
    const at = await Promise.race([arrived.catch(() => null), timeout]);
    if (edit >= options.warmup) {
      edits.push({ written, arrived: at });
      if (at === null) missed += 1;
      else samples.push(Number(at - written) / 1e6);
    }
    await pause(probe.settleMs);
  }
  return { samples, missed, edits };
}

/**
 * ms from each edit's write to the first of `times` after it (and not after its arrival): when
 * one stage of a pipeline happened, e.g. the server's publish or the manifest's response.
 */
export function stage(edits: Latencies['edits'], times: readonly bigint[]): number[] {
  const out: number[] = [];
  for (const { written, arrived } of edits) {
    const at = times.find((time) => time > written && (arrived === null || time <= arrived));
    if (at !== undefined) out.push(Number(at - written) / 1e6);
  }
  return out;
}

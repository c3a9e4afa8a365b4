// The load report: how each module of a run came to be loaded, or why it never was — the
// evidence for lazy imports (`livemod run --report`, `app.loadReport()`). Kept by the registry as
// it instantiates and evaluates; reading it costs nothing on hot paths (a first touch records its
// site, time and heap delta once).

import { monotonicMs } from '../clock.ts';

export type LoadHow = 'entry' | 'eager' | 'lazy' | 'deferred' | 'dynamic';

export interface LoadRecord {
  readonly path: string;
  /** How the module was first imported: the run's entry, eagerly, lazily (lazy mode), with `import defer`, or by `import()`. */
  how: LoadHow;
  /** For an eager import in lazy mode: why it stayed eager. */
  reason?: string;
  /** The module that first imported it. */
  importer?: string;
  /** Whether it has run (evaluated). */
  loaded: boolean;
  /** A lazy or deferred module loaded at a first read: where that read was (`url:line:column`). */
  accessSite?: string;
  /** Its evaluation's wall time, for a module loaded at a first read. */
  ms?: number;
  /** Heap growth over that evaluation, in bytes. */
  heapDelta?: number;
  /** Its evaluation's error, first line. */
  error?: string;
}

const RANK: Readonly<Record<LoadHow, number>> = { entry: 0, eager: 1, dynamic: 2, lazy: 3, deferred: 4 };

export class LoadReport {
  private readonly records = new Map<string, LoadRecord>();

  /** An import edge: the first decides, except that an eager (or entry) import outranks a lazy or deferred one. */
  imported(path: string, how: LoadHow, importer: string | undefined, reason?: string): void {
    const known = this.records.get(path);
    if (known && RANK[known.how] <= RANK[how]) return;
    if (known?.loaded) return;
    this.records.set(path, { path, how, loaded: known?.loaded ?? false, ...(importer !== undefined ? { importer } : {}), ...(reason !== undefined ? { reason } : {}) });
  }

  ran(path: string): void {
    const record = this.records.get(path);
    if (record) record.loaded = true;
  }

  /** A first read that loads a lazy or deferred module: call `done` after its evaluation. */
  touching(path: string, site: string | null): (error?: unknown) => void {
    const record = this.records.get(path);
    const started = monotonicMs();
    const heap = process.memoryUsage().heapUsed;
    return (error) => {
      // A first read is recorded once; a read that retries a failed one records its outcome again.
      if (!record || (record.accessSite !== undefined && record.error === undefined)) return;
      if (error === undefined) delete record.error;
      record.accessSite = site ?? 'unknown';
      record.ms = monotonicMs() - started;
      record.heapDelta = process.memoryUsage().heapUsed - heap;
      if (error !== undefined) record.error = (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).split('\n')[0]!.slice(0, 300);
    };
  }

  failed(path: string, error: unknown): void {
    const record = this.records.get(path);
    if (record && record.error === undefined) record.error = (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).split('\n')[0]!.slice(0, 300);
  }

  list(): LoadRecord[] {
    return [...this.records.values()].map((record) => ({ ...record })).sort((a, b) => a.path.localeCompare(b.path));
  }
}

function kib(bytes: number): string {
  return `${bytes >= 0 ? '+' : '−'}${Math.round(Math.abs(bytes) / 1024)} KiB`;
}

/** The report as people read it: never loaded, loaded at first access, eager and why, failures. */
export function formatLoadReport(records: readonly LoadRecord[]): string {
  const never = records.filter((record) => !record.loaded && record.error === undefined);
  const touched = records.filter((record) => record.accessSite !== undefined && record.error === undefined);
  const eager = records.filter((record) => record.loaded && record.accessSite === undefined && record.how !== 'lazy' && record.how !== 'deferred');
  const failed = records.filter((record) => record.error !== undefined);
  const lines = [`[livemod report] ${records.length} modules: ${eager.length} loaded eagerly, ${touched.length} at first access, ${never.length} never loaded, ${failed.length} failed`];
  if (never.length) lines.push('never loaded:', ...never.map((record) => `  ${record.path} (${record.how}${record.importer ? `, imported by ${record.importer}` : ''})`));
  if (touched.length) lines.push('loaded at first access:', ...touched.map((record) => `  ${record.path} (${record.how}, imported by ${record.importer ?? '?'}) first read at ${record.accessSite}: ${record.ms!.toFixed(1)} ms, ${kib(record.heapDelta!)}`));
  if (eager.length) lines.push('loaded eagerly:', ...eager.map((record) => `  ${record.path} (${record.how === 'eager' ? (record.reason ?? 'eager import') : record.how}${record.importer ? `, imported by ${record.importer}` : ''})`));
  if (failed.length) lines.push('failed:', ...failed.map((record) => `  ${record.path}${record.accessSite ? ` at ${record.accessSite}` : ''}: ${record.error}`));
  return lines.join('\n');
}

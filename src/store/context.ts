// The resolved options and per-process bookkeeping every store operation shares.
import { channel } from 'node:diagnostics_channel';
import { join } from 'node:path';
import { LAYOUT } from './location.ts';
import { withLock } from './lock.ts';

export interface StoreOptions {
  /** The store folder. Default: `defaultStoreDir()`, resolved once per process. */
  readonly dir: string;
  /** Largest blob written or read back, in bytes (512 MiB). */
  readonly maxBlobBytes: number;
  /** How long a commit, touch or prune waits for another process's lock (10 s). */
  readonly lockTimeoutMs: number;
  /** A lock held longer than this is taken as abandoned even if its pid looks alive (10 min). */
  readonly lockStaleMs: number;
}

export const DEFAULT_STORE_OPTIONS: Readonly<Omit<StoreOptions, 'dir'>> = Object.freeze({
  maxBlobBytes: 512 * 1024 * 1024,
  lockTimeoutMs: 10_000,
  lockStaleMs: 10 * 60_000,
});

/** What the store removed or repaired on its own, for callers to report ("removed and refetched"). */
export type StoreEvent =
  | { readonly type: 'blob-removed'; readonly hash: string; readonly reason: 'hash-mismatch' | 'too-large' | 'not-a-file' | 'truncated' }
  | { readonly type: 'origin-repaired'; readonly origin: string; readonly version: number; readonly reason: string }
  | { readonly type: 'origin-removed'; readonly origin: string; readonly reason: string };

/**
 * Every event is also published here (undici's habit), with the store's folder:
 * `diagnostics_channel.subscribe('livemod:store', ({ dir, event }) => …)`.
 */
export const STORE_CHANNEL = 'livemod:store';
const diagnostics = channel(STORE_CHANNEL);

/** Events kept for `takeEvents()` before the oldest are dropped: a long-running process must not grow. */
const MAX_EVENTS = 1000;

export class StoreContext {
  readonly options: Readonly<StoreOptions>;
  readonly dir: string;
  readonly tmp: string;
  readonly blobs: string;
  readonly origins: string;
  readonly lockPath: string;
  /** Blob prefix folders known to exist, so a write costs no mkdir. */
  readonly madeDirs: Set<string> = new Set();
  private events: StoreEvent[] = [];
  private collectors: StoreEvent[][] = [];

  constructor(options: Readonly<StoreOptions>) {
    this.options = options;
    this.dir = options.dir;
    this.tmp = join(options.dir, LAYOUT.tmp);
    this.blobs = join(options.dir, LAYOUT.blobs);
    this.origins = join(options.dir, LAYOUT.origins);
    this.lockPath = join(options.dir, LAYOUT.lock);
  }

  record(event: StoreEvent): void {
    if (this.events.length >= MAX_EVENTS) this.events.shift();
    this.events.push(event);
    for (const collector of this.collectors) collector.push(event);
    if (diagnostics.hasSubscribers) diagnostics.publish({ dir: this.dir, event });
  }

  /** Runs `fn` and returns what it recorded too (the events also stay for takeEvents). */
  collect<T>(fn: () => T): { result: T; events: StoreEvent[] } {
    const events: StoreEvent[] = [];
    this.collectors.push(events);
    try {
      return { result: fn(), events };
    } finally {
      this.collectors.splice(this.collectors.indexOf(events), 1);
    }
  }

  takeEvents(): StoreEvent[] {
    const events = this.events;
    this.events = [];
    return events;
  }

  locked<T>(fn: () => T): T {
    return withLock(this.dir, this.lockPath, { timeoutMs: this.options.lockTimeoutMs, staleMs: this.options.lockStaleMs }, fn);
  }
}

// Keeping a running app on the latest version: triggers (a channel announcement, a poll, a
// local rebuild, or `app.update()`) ask for an update; updates coalesce — one runs at a time,
// and a request made while one runs makes exactly one more after it — so the app always ends
// on the last version published. Each update syncs (verifying as any sync does) and swaps the
// registry to the new version as one transaction. Every swap is logged, reported to listeners
// and to the server, and a failure is printed with its source location.
import type { Registry, ModuleSource, SwapResult } from '../runtime/index.ts';
import { inert } from '../text.ts';
import { ErrorCodes, isLivemodError } from '../errors.ts';

/** One swap, as the log keeps it and `--log-swaps` prints it. */
export interface SwapRecord {
  /** ISO 8601 time the swap ended. */
  readonly at: string;
  readonly status: SwapResult['status'];
  readonly version: number;
  readonly previousVersion: number;
  /** Changed modules, with blob hashes before and after (null: added or removed). */
  readonly modules: SwapResult['modules'];
  /** Modules that got a new version (changed ones and importers that re-ran). */
  readonly reran: readonly string[];
  readonly durationMs: number;
  /**
   * Replaced module versions not freed yet (`registry.retainedVersions()`) when the swap ended —
   * those it just replaced included, until the garbage collector has run; a number that keeps
   * growing over many swaps is versions the program still holds.
   */
  readonly retained: number;
  /** The failure, with its source location (the stack is mapped to the original files). */
  readonly error?: string;
}

export type SwapListener = (record: SwapRecord) => void;

export interface LiveOptions {
  readonly registry: Registry;
  /**
   * The next version to run: synced and verified, or null when there is none newer (or the origin
   * is unreachable). `pushed`: a signed manifest the channel sent with its announcement, to use
   * in place of fetching one if it verifies (it is only a candidate, like the announcement).
   */
  readonly resync: (pushed?: Buffer) => Promise<ModuleSource | null>;
  readonly restartOnUnaccepted?: boolean;
  /** Print every swap (not only failures). */
  readonly logSwaps?: boolean;
  readonly notice: (line: string) => void;
  /** Told after each swap (the channel's status report). */
  readonly reported?: (record: SwapRecord) => void;
}

const LOG_LIMIT = 100;
/** A hint for a version the server then does not have waits this long before the next hint-driven sync, doubling. */
const HINT_BACKOFF_MS = 500;
const HINT_BACKOFF_MAX_MS = 60_000;
/**
 * Syncs one announced version may cost. More than one, because behind a load balancer the
 * announcement comes from one replica and the manifest from another, which may be a moment
 * behind; few, so a lie costs little (and each try waits twice as long as the last).
 */
const HINT_TRIES = 4;

/** An error as the log keeps it: its (source-mapped) stack, with its code on the first line. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // livemod's refusal of a package change is its message (the stack would be the registry's).
  if (isLivemodError(error) && error.code === ErrorCodes.SWAP_PACKAGES) return `${error.message} [${error.code}]`;
  const text = error.stack ?? `${error.name}: ${error.message}`;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return text;
  const end = text.indexOf('\n');
  return end === -1 ? `${text} [${code}]` : `${text.slice(0, end)} [${code}]${text.slice(end)}`;
}

export class Live {
  private readonly options: LiveOptions;
  private readonly listeners = new Set<SwapListener>();
  private readonly log: SwapRecord[] = [];
  private loop: Promise<SwapRecord | null> | null = null;
  private again = false;
  /** The highest version announced since the last hint-driven sync (0: none). */
  private wanted = 0;
  /** The version the last hint-driven sync was for, and how many syncs it has had. */
  private tried = 0;
  private triedTimes = 0;
  private hintBackoffMs = 0;
  private hintTimer: NodeJS.Timeout | undefined;
  private hintBusy = false;
  private closed = false;
  /** The manifest the channel sent with the highest version announced since the last sync, if it sent one (hint keeps it no lower than `announced`). */
  private pushed: { version: number; bytes: Buffer } | null = null;
  /** The highest version announced and not yet reached or given up on (0: none). */
  private announced = 0;
  /**
   * The highest version whose own code failed in a swap, or that changes the packages (0: none):
   * automatic triggers pass over it and anything below; and the one version a caller's update()
   * may try again (0: none).
   */
  private failedVersion = 0;
  private retryVersion = 0;

  constructor(options: LiveOptions) {
    this.options = options;
  }

  get version(): number {
    return this.options.registry.source.manifest.version;
  }

  on(listener: SwapListener): void {
    this.listeners.add(listener);
  }

  off(listener: SwapListener): void {
    this.listeners.delete(listener);
  }

  /** The last swaps, oldest first (at most 100). */
  swaps(): SwapRecord[] {
    return [...this.log];
  }

  /** The last swap, if any. */
  last(): SwapRecord | undefined {
    return this.log.at(-1);
  }

  /**
   * Syncs now and swaps to the newest version; resolves with the last swap this made (null:
   * nothing newer). `retryFailed: false` (the channel's hints, a poll) passes over
   * a version whose swap already failed: running its code again would only repeat what it did;
   * the next version is taken. A caller asking (app.update(), a service reload) tries it again.
   */
  update(options: { retryFailed?: boolean } = {}): Promise<SwapRecord | null> {
    this.again = true;
    // The version failed by now is the one a caller may have tried again, not one failing meanwhile.
    if (options.retryFailed !== false) this.retryVersion = this.failedVersion;
    this.loop ??= (async () => {
      let last: SwapRecord | null = null;
      try {
        while (this.again && !this.closed) {
          this.again = false;
          last = (await this.once()) ?? last;
        }
      } finally {
        this.loop = null;
      }
      return last;
    })();
    return this.loop;
  }

  /**
   * An announced version (a hint, never trusted). Hint-driven syncs run one at a time, for the
   * highest version announced since the last one; a version is tried at most HINT_TRIES times
   * (floods of one announcement cost that many syncs, not one per message), and each sync that
   * falls short of the version it was for doubles the wait before the next hint-driven one. A
   * lying channel therefore cannot make the client sync in a loop, nor — since a real, lower
   * announcement is still tried after the wait — keep it from following the versions that do
   * exist; and a replica a moment behind the one that announced costs a retry, not the version.
   */
  hint(version: number, hello = false, manifest?: string): void {
    // A (re)connection's hello starts the count again: the server it reached may well have the
    // version a lagging one did not, and it is one try per connection, which backs off itself.
    if (hello && version === this.tried) this.triedTimes = 0;
    if (this.closed || version <= this.version || version <= this.failedVersion || (version === this.tried && this.triedTimes >= HINT_TRIES)) return;
    // Only a manifest pushed for the highest version announced is kept: a higher announcement
    // without one (too big to push), before or after it, makes the sync fetch.
    this.announced = Math.max(this.announced, version);
    if (manifest !== undefined && version === this.announced) this.pushed = { version, bytes: Buffer.from(manifest, 'utf8') };
    else if (this.pushed && this.pushed.version < this.announced) this.pushed = null;
    this.wanted = Math.max(this.wanted, version);
    this.scheduleHint();
  }

  private scheduleHint(): void {
    if (this.hintBusy || this.hintTimer || this.closed || this.wanted <= this.version) return;
    const run = (): void => {
      this.hintTimer = undefined;
      this.hintBusy = true;
      const target = this.wanted;
      this.wanted = 0;
      this.triedTimes = target === this.tried ? this.triedTimes + 1 : 1;
      this.tried = target;
      void this.update({ retryFailed: false })
        .catch(() => null)
        .then((last) => {
          this.hintBusy = false;
          // The version was had and its own code failed (rolled back): another try would only run
          // that code again, side effects and all. It is given up on, and the next one taken at once.
          const refused = last?.status === 'failed' && last.version >= target && this.failedVersion >= last.version;
          if (refused) this.triedTimes = HINT_TRIES;
          if (this.version >= target || refused) this.hintBackoffMs = 0;
          else {
            this.hintBackoffMs = Math.min(HINT_BACKOFF_MAX_MS, Math.max(HINT_BACKOFF_MS, this.hintBackoffMs * 2));
            if (this.triedTimes < HINT_TRIES) this.wanted = Math.max(this.wanted, target);
          }
          // A version reached, or given up on, no longer bars the pushes of lower ones (a lying announcement included).
          if (this.announced <= target && (this.version >= target || this.triedTimes >= HINT_TRIES)) this.announced = 0;
          this.scheduleHint();
        });
    };
    if (this.hintBackoffMs === 0) {
      run();
      return;
    }
    this.hintTimer = setTimeout(run, this.hintBackoffMs);
    this.hintTimer.unref();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.hintTimer);
    this.pushed = null;
  }

  private async once(): Promise<SwapRecord | null> {
    const previous = this.version;
    const retry = this.retryVersion;
    this.retryVersion = 0;
    let source: ModuleSource | null;
    try {
      // The manifest the channel pushed, if it is for a version above the one running (once: a retry fetches).
      const pushed = this.pushed && this.pushed.version > previous ? this.pushed.bytes : undefined;
      this.pushed = null;
      source = await this.options.resync(pushed);
    } catch (error) {
      // The new version could not be had (verification, a fetch): nothing ran; say why.
      const record: SwapRecord = { at: new Date().toISOString(), status: 'failed', version: previous, previousVersion: previous, modules: [], reran: [], durationMs: 0, retained: this.options.registry.retainedVersions().length, error: describe(error) };
      this.record(record);
      return record;
    }
    if (!source || source.manifest.version <= previous) return null;
    if (source.manifest.version <= this.failedVersion && source.manifest.version !== retry) return null;
    const result = await this.options.registry.swap(source, { ...(this.options.restartOnUnaccepted ? { restartOnUnaccepted: true } : {}) });
    // Given up on: a version whose code ran and failed (running it again would repeat what it did),
    // and one that changes the packages. One that failed before any of its code ran (a fetch) is tried again.
    if (result.status === 'failed' && (!isLivemodError(result.error) || result.error.code === ErrorCodes.SWAP_PACKAGES)) this.failedVersion = Math.max(this.failedVersion, result.version);
    const record: SwapRecord = {
      at: new Date().toISOString(),
      status: result.status,
      version: result.version,
      previousVersion: result.previousVersion,
      modules: result.modules,
      reran: result.reran,
      durationMs: Number(result.durationMs.toFixed(2)),
      retained: this.options.registry.retainedVersions().length,
      ...(result.error !== undefined ? { error: describe(result.error) } : {}),
    };
    this.record(record);
    return record;
  }

  private record(record: SwapRecord): void {
    this.log.push(record);
    if (this.log.length > LOG_LIMIT) this.log.shift();
    const hash = (value: string | null): string => (value === null ? '—' : value.slice(0, 8));
    const changed = record.modules.map((module) => `${module.path} ${hash(module.from)}→${hash(module.to)}`).join(', ');
    if (record.status === 'failed') {
      // The error is the published code's own (verified, signed): shown as it is, cut to its first lines.
      this.options.notice(`[livemod swap] version ${record.version} failed, still running version ${record.previousVersion}: ${(record.error ?? '').split('\n').slice(0, 12).join('\n')}`);
    } else if (this.options.logSwaps) {
      const reran = record.reran.filter((path) => !record.modules.some((module) => module.path === path));
      this.options.notice(`[livemod swap] version ${record.version} ${record.status} in ${record.durationMs} ms${changed ? `: ${inert(changed, 400)}` : ''}${reran.length > 0 ? ` (re-ran ${inert(reran.join(', '))})` : ''}`);
    }
    this.options.reported?.(record);
    for (const listener of this.listeners) {
      try {
        listener(record);
      } catch (error) {
        this.options.notice(`[livemod swap] a swap listener threw: ${describe(error)}`);
      }
    }
  }
}

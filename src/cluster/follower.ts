// A server replica's one job: keep serving the latest snapshot of its source. The source is the
// origin server or a static snapshot (a bucket's HTTP endpoint, a CDN); the replica fetches the
// manifest and the blobs it lacks exactly as a client does — signature by the publisher key,
// every blob by hash, expiry, no rollback, the same app — and only then serves them, byte for
// byte as signed, so clients of any replica see one ETag per version.
//
// What makes it look: its start, every announcement on the broker (a hint, never trusted), the
// broker coming back after an outage (it may have missed announcements), the origin's own channel
// when the source is a livemod server, and a poll as the backstop. Looks are coalesced, and a
// hint that a look did not bear out doubles the wait before the next hint-driven look (0.5 s up
// to 30 s, reset once a hinted version arrives): a flood of forged announcements costs a few
// conditional GETs of the source, not one per message. A failed look keeps serving what it has
// and tries again with jittered, growing waits.
import { ErrorCodes, LivemodError } from '../errors.ts';
import { manifestBlobs, sealedFromVerified, type Snapshot, type VerifyKey } from '../snapshot/index.ts';
import { refreshSnapshot } from '../sync/index.ts';
import { ChannelClient } from '../client/channel.ts';
import { inert } from '../text.ts';

/** What a replica serves from: the part of a server the follower needs. */
export interface Publisher {
  readonly current: Snapshot | undefined;
  publish(snapshot: Snapshot): void;
}

export interface FollowerOptions {
  /** The snapshot's base URL: a livemod server, or a static snapshot's folder over HTTP(S). */
  readonly source: string;
  readonly key: VerifyKey;
  /** The app the source must serve; default: the app of the first manifest fetched. */
  readonly app?: string;
  /** Extra request headers (a bearer token for the source). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly server: Publisher;
  /** Look at the source this often even without a hint (ms; 0: never). */
  readonly pollMs: number;
  /** One deadline for each look, manifest and blobs (default 60 s). */
  readonly timeoutMs?: number;
  readonly log: (line: string) => void;
  /** Told after each version it started serving. */
  readonly onVersion?: (snapshot: Snapshot, detail: { blobsFetched: number; bytes: number; reason: string }) => void;
  /** Told of each failed look (the line says what it keeps serving and when it looks again); default: `log`. */
  readonly onError?: (error: unknown, line: string) => void;
}

export interface FollowerStatus {
  readonly source: string;
  readonly lastLookAt: string | null;
  readonly lastChangeAt: string | null;
  readonly lastError: string | null;
}

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;
const HINT_BACKOFF_MIN_MS = 500;
const HINT_BACKOFF_MAX_MS = 30_000;

export class Follower {
  private readonly options: FollowerOptions;
  private etag: string | null = null;
  private app: string | undefined;
  private running: Promise<void> | null = null;
  private again: string | null = null;
  private retryMs = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private channel: ChannelClient | undefined;
  private closed = false;
  /** Aborts the look in flight at close(), so a stop does not wait out its deadline. */
  private readonly stopping = new AbortController();
  /** The highest version hinted since the last look began (0: none), and the wait before the next hint-driven look. */
  private hinted = 0;
  private hintBackoffMs = 0;
  private hintTimer: NodeJS.Timeout | undefined;
  private lastLookAt: string | null = null;
  private lastChangeAt: string | null = null;
  private lastError: string | null = null;

  constructor(options: FollowerOptions) {
    this.options = options;
    this.app = options.app;
  }

  /** The first look: it must succeed, so a replica never listens with nothing to serve. */
  async start(): Promise<Snapshot> {
    await this.look('start', true);
    const current = this.options.server.current;
    if (!current) throw new LivemodError('serve', ErrorCodes.SERVE_FAILED, `the source ${inert(this.options.source)} served no snapshot`, { source: this.options.source });
    if (this.options.pollMs > 0) {
      this.pollTimer = setInterval(() => this.wake('poll'), this.options.pollMs);
      this.pollTimer.unref();
    }
    return current;
  }

  /** Something says the source may have changed: look soon (coalesced with any look running). */
  wake(reason: string): void {
    if (this.closed) return;
    if (this.running) {
      this.again = reason;
      return;
    }
    if (this.retryTimer) return; // a retry is due; it will look anyway
    this.running = this.look(reason, false).finally(() => {
      this.running = null;
      const next = this.again;
      this.again = null;
      if (next !== null) this.wake(next);
    });
  }

  /**
   * A version someone announced (never trusted): worth a look only if it is newer than ours, and
   * at once only if the last hint-driven look found what it was told of.
   */
  hint(version: number, reason: string): void {
    if (this.closed) return;
    const current = this.options.server.current?.manifest.version ?? 0;
    if (version <= current) return;
    this.hinted = Math.max(this.hinted, version);
    if (this.hintTimer) return;
    if (this.hintBackoffMs === 0) {
      this.hintBackoffMs = HINT_BACKOFF_MIN_MS;
      this.wake(reason);
      return;
    }
    this.hintTimer = setTimeout(() => {
      this.hintTimer = undefined;
      // A look since (the origin's channel and the broker both tell of each version) may have found it already.
      if (this.hinted <= (this.options.server.current?.manifest.version ?? 0)) {
        this.hinted = 0;
        return;
      }
      this.wake(reason);
    }, this.hintBackoffMs);
    this.hintTimer.unref();
  }

  status(): FollowerStatus {
    return { source: this.options.source, lastLookAt: this.lastLookAt, lastChangeAt: this.lastChangeAt, lastError: this.lastError };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopping.abort();
    clearInterval(this.pollTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.hintTimer);
    this.channel?.close();
    await this.running?.catch(() => {});
  }

  private async look(reason: string, first: boolean): Promise<void> {
    const { server, source, key } = this.options;
    const held = server.current;
    // The hints this look answers; hints that arrive while it runs are for the next one.
    const hinted = this.hinted;
    this.hinted = 0;
    this.lastLookAt = new Date().toISOString();
    try {
      const fetched = await refreshSnapshot(source, key, this.etag, {
        headers: this.options.headers ?? {},
        timeoutMs: this.options.timeoutMs ?? 60_000,
        ...(held ? { minVersion: held.manifest.version } : {}),
        ...(this.app !== undefined ? { app: this.app } : {}),
        has: (hash) => held?.blobs.has(hash) === true,
        signal: this.stopping.signal,
      });
      // Stopped meanwhile: nothing more may change, start or be scheduled.
      if (this.closed) return;
      this.lastError = null;
      this.retryMs = 0;
      if (fetched) {
        this.etag = fetched.etag;
        this.app ??= fetched.manifest.name;
        if (fetched.capabilities.channel && !this.channel) this.listen(fetched.capabilities.channel);
        if (!held || fetched.manifest.version > held.manifest.version) {
          const blobs = new Map<string, Buffer>();
          for (const ref of manifestBlobs(fetched.manifest)) blobs.set(ref.hash, fetched.blobs.get(ref.hash) ?? held!.blobs.get(ref.hash)!);
          const snapshot: Snapshot = { manifest: fetched.manifest, sealed: sealedFromVerified(fetched.manifestBytes, fetched.manifest, source), blobs };
          server.publish(snapshot);
          this.lastChangeAt = new Date().toISOString();
          this.options.onVersion?.(snapshot, { blobsFetched: fetched.blobs.size, bytes: fetched.bytes, reason });
        }
      }
      if (hinted !== 0) {
        const now = server.current?.manifest.version ?? 0;
        this.hintBackoffMs = now >= hinted ? 0 : Math.min(HINT_BACKOFF_MAX_MS, Math.max(HINT_BACKOFF_MIN_MS, this.hintBackoffMs * 2));
      }
    } catch (error) {
      if (first) throw error;
      if (this.closed) return;
      this.lastError = (error as Error).message;
      this.retryMs = Math.min(RETRY_MAX_MS, Math.max(RETRY_MIN_MS, this.retryMs * 2));
      // Full jitter: replicas that lost one source do not come back to it in step.
      const wait = Math.round(this.retryMs / 2 + Math.random() * this.retryMs / 2);
      const line = `[livemod follow] ${reason}: ${(error as Error).message}; still serving version ${held?.manifest.version ?? 'none'}, looking again in ${wait} ms`;
      if (this.options.onError) this.options.onError(error, line);
      else this.options.log(line);
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.wake('retry');
      }, wait);
      this.retryTimer.unref();
    }
  }

  /** The origin's own push channel, when the source is a livemod server: new versions arrive at once, broker or not. */
  private listen(url: string): void {
    this.channel = new ChannelClient({
      url,
      headers: this.options.headers ?? {},
      onVersion: (version) => this.hint(version, 'origin channel'),
      status: () => ({ type: 'status', version: this.options.server.current?.manifest.version ?? 0, role: 'replica' }),
      log: this.options.log,
    });
    this.channel.start();
  }
}

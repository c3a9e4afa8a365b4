// Options in, resolved options out: every sync call accepts a Partial, applies the defaults and
// checks them once, then freezes the result, so a half-valid option fails at the call, never as a
// strange timeout deep inside a transfer.
import { ErrorCodes, LivemodError } from '../errors.ts';
import { appNameProblem } from '../snapshot/index.ts';

/** One HTTP request sync made, reported when its response headers arrive (or it failed before). */
export interface RequestEvent {
  /** What the request was for: the manifest, one batch, a multi-range read of the pack, the whole pack, one blob. */
  readonly kind: 'manifest' | 'batch' | 'ranges' | 'pack' | 'blob';
  readonly method: 'GET' | 'POST';
  readonly url: string;
  /** HTTP status, or null when no response came (network error, timeout before headers). */
  readonly status: number | null;
  /** Byte ranges asked for (kind "ranges"), else 0. */
  readonly ranges: number;
}

export interface TransferOptions {
  /** Sent with every request, e.g. `{ authorization: 'Bearer …' }`. */
  headers: Readonly<Record<string, string>>;
  signal?: AbortSignal;
  /** The whole call, every request in it, must finish within this many ms (default 30 s). */
  timeoutMs: number;
  /**
   * One deadline for several calls (a whole sync: manifest, blobs, refetches), as a time in ms
   * since the epoch: the call ends at whichever of this and `timeoutMs` comes first. A host that
   * drips each answer then gets one budget in all, not one per request.
   */
  deadline?: number;
  /** A response that sends no byte for this many ms fails the call (default 10 s). */
  stallTimeoutMs: number;
  /** Called for every HTTP request made: for counting, logging and tests. */
  onRequest?: (event: RequestEvent) => void;
}

export interface ManifestOptions extends TransferOptions {
  /** Most bytes a manifest may have; reading stops once past it (default 16 MiB). */
  maxBytes: number;
  /** Refuse a manifest whose version is below this one: the client accepted it before (rollback). */
  minVersion?: number;
  /** Clock for the expiry check, in ms since the epoch (default: now). */
  now?: number;
  /** Refuse a manifest that names another app (ERR_LIVEMOD_WRONG_APP): the one pinned for, or accepted from, this URL. */
  app?: string;
}

export interface BlobOptions extends TransferOptions {
  /** Against a static host, GET the whole pack when the blobs wanted are over this share of its bytes (default 0.5). */
  wholePackRatio: number;
  /** Ranges of the pack this close (bytes) are read as one, wasting the gap to save parts (default 4 KiB). */
  rangeGapBytes: number;
  /** Longest `Range` header to send; ranges are merged until it fits (default 4000: servers refuse long headers, nginx at 8 KiB). */
  maxRangeHeaderBytes: number;
  /** Parallel requests when fetching blobs one by one (default 6). */
  concurrency: number;
  /** Most hashes in one `POST /batch` (default 10,000; the server's own default limit is 20,000). */
  maxBatchHashes: number;
  /**
   * Called with each blob as soon as it arrived and verified, before the whole fetch is done:
   * for progress, and so a caller can store what it got even if the fetch fails later.
   */
  onBlob?: (hash: string, bytes: Buffer) => void;
}

export type ResolvedTransferOptions = Readonly<TransferOptions>;
export type ResolvedManifestOptions = Readonly<ManifestOptions>;
export type ResolvedBlobOptions = Readonly<BlobOptions>;

const TRANSFER_DEFAULTS = { timeoutMs: 30_000, stallTimeoutMs: 10_000 } as const;
const MANIFEST_DEFAULTS = { maxBytes: 16 * 1024 * 1024 } as const;
const BLOB_DEFAULTS = { wholePackRatio: 0.5, rangeGapBytes: 4096, maxRangeHeaderBytes: 4000, concurrency: 6, maxBatchHashes: 10_000 } as const;

function usage(message: string): LivemodError {
  return new LivemodError('sync', ErrorCodes.USAGE, message);
}

function integer(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw usage(`sync option ${name} is ${String(value)}; it must be an integer ≥ ${min}`);
  return value;
}

function appName(value: unknown): string {
  const problem = appNameProblem(value);
  if (problem !== null) throw usage(`sync option app must be an app name: ${problem}`);
  return value as string;
}

function resolveTransfer(options: Partial<TransferOptions>): TransferOptions {
  const headers = options.headers ?? {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string') throw usage(`sync option headers["${name}"] must be a string`);
  }
  if (options.onRequest !== undefined && typeof options.onRequest !== 'function') throw usage('sync option onRequest must be a function');
  if ((options as Partial<BlobOptions>).onBlob !== undefined && typeof (options as Partial<BlobOptions>).onBlob !== 'function') throw usage('sync option onBlob must be a function');
  return {
    headers: Object.freeze({ ...headers }),
    ...(options.signal ? { signal: options.signal } : {}),
    timeoutMs: integer('timeoutMs', options.timeoutMs ?? TRANSFER_DEFAULTS.timeoutMs, 1),
    ...(options.deadline !== undefined ? { deadline: integer('deadline', options.deadline, 0) } : {}),
    stallTimeoutMs: integer('stallTimeoutMs', options.stallTimeoutMs ?? TRANSFER_DEFAULTS.stallTimeoutMs, 1),
    ...(options.onRequest ? { onRequest: options.onRequest } : {}),
  };
}

export function resolveManifestOptions(options: Partial<ManifestOptions> = {}): ResolvedManifestOptions {
  return Object.freeze({
    ...resolveTransfer(options),
    maxBytes: integer('maxBytes', options.maxBytes ?? MANIFEST_DEFAULTS.maxBytes, 1),
    ...(options.minVersion !== undefined ? { minVersion: integer('minVersion', options.minVersion, 0) } : {}),
    ...(options.now !== undefined ? { now: integer('now', options.now, 0) } : {}),
    ...(options.app !== undefined ? { app: appName(options.app) } : {}),
  });
}

export function resolveBlobOptions(options: Partial<BlobOptions> = {}): ResolvedBlobOptions {
  const ratio = options.wholePackRatio ?? BLOB_DEFAULTS.wholePackRatio;
  if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1)) throw usage(`sync option wholePackRatio is ${String(ratio)}; it must be a number from 0 to 1`);
  return Object.freeze({
    ...resolveTransfer(options),
    wholePackRatio: ratio,
    rangeGapBytes: integer('rangeGapBytes', options.rangeGapBytes ?? BLOB_DEFAULTS.rangeGapBytes, 0),
    maxRangeHeaderBytes: integer('maxRangeHeaderBytes', options.maxRangeHeaderBytes ?? BLOB_DEFAULTS.maxRangeHeaderBytes, 64),
    concurrency: integer('concurrency', options.concurrency ?? BLOB_DEFAULTS.concurrency, 1),
    maxBatchHashes: integer('maxBatchHashes', options.maxBatchHashes ?? BLOB_DEFAULTS.maxBatchHashes, 1),
    ...(options.onBlob ? { onBlob: options.onBlob } : {}),
  });
}

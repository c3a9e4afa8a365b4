// Options in, resolved options out: defaults applied and checked once, then frozen, so every
// part of the server reads the same values and none can change under a running server.
import { ErrorCodes, LivemodError } from '../errors.ts';

export interface TlsOptions {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

export interface ServerOptions {
  /** Default '127.0.0.1': serving beyond the machine is a decision, not a default. */
  host: string;
  /** Default 0: the OS picks a free port; `listen()` reports it. */
  port: number;
  /** Bearer tokens any of which grants access; empty means no auth. `/healthz` is always open. */
  tokens: readonly string[];
  /** PEM certificate and key: serve HTTPS and WSS instead of HTTP and WS. */
  tls?: TlsOptions;
  /** Most hashes one `POST /batch` may ask for (default 20000). */
  maxBatchHashes: number;
  /** Most bytes of a request body (default 2 MiB); reading stops once it is passed. */
  maxRequestBodyBytes: number;
  /** Blobs of this many most recent snapshots (the current one included) stay servable (default 8). */
  keepVersions: number;
  /** Time to receive a request's headers (default 10 s); slow-loris clients are cut at it. */
  headersTimeoutMs: number;
  /** Time to receive a whole request, body included (default 30 s). */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open (default 5 s). */
  keepAliveTimeoutMs: number;
  /** A socket with no traffic either way for this long is closed (default 60 s). */
  idleTimeoutMs: number;
  /** Longest a response may take to send, a slow reader's batch included (default 10 min). */
  responseTimeoutMs: number;
  /** Largest channel message a client may send (default 64 KiB); bigger closes the channel with 1009. */
  maxMessageBytes: number;
  /** A channel whose unsent bytes pass this (default 4 MiB) is terminated rather than buffered. */
  maxBufferedBytes: number;
  /** Most channel clients at once; one more is closed with 1013 (try again later). */
  maxClients: number;
  /** Channel ping interval (default 30 s); a client that misses a whole interval is terminated. */
  heartbeatMs: number;
  /** One line per event worth an operator's attention; default: none. */
  log?: (line: string) => void;
}

export interface ResolvedServerOptions extends Readonly<Omit<ServerOptions, 'log'>> {
  readonly log: (line: string) => void;
}

const DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  maxBatchHashes: 20_000,
  maxRequestBodyBytes: 2 * 1024 * 1024,
  keepVersions: 8,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 60_000,
  responseTimeoutMs: 10 * 60_000,
  maxMessageBytes: 64 * 1024,
  maxBufferedBytes: 4 * 1024 * 1024,
  maxClients: 10_000,
  heartbeatMs: 30_000,
} as const;

type NumericOption = Exclude<keyof typeof DEFAULTS, 'host'>;

function usage(message: string): LivemodError {
  return new LivemodError('serve', ErrorCodes.USAGE, message);
}

function positiveInteger(options: Partial<ServerOptions>, name: NumericOption, min: number): number {
  const value = options[name] ?? DEFAULTS[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw usage(`server option ${name} is ${String(value)}; it must be an integer ≥ ${min}`);
  }
  return value;
}

function resolveTokens(tokens: readonly string[] | undefined): readonly string[] {
  const list = [...(tokens ?? [])];
  for (const token of list) {
    // Tokens travel in an Authorization header; whitespace or control characters could never match.
    if (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token)) {
      throw usage('every server token must be a non-empty string of printable ASCII without spaces');
    }
  }
  return Object.freeze(list);
}

export function resolveServerOptions(options: Partial<ServerOptions> = {}): ResolvedServerOptions {
  const host = options.host ?? DEFAULTS.host;
  if (typeof host !== 'string' || host === '') throw usage('server option host must be a non-empty host name or address');
  const port = positiveInteger(options, 'port', 0);
  if (port > 65535) throw usage(`server option port is ${port}; it must be 0 (any free port) to 65535`);
  if (options.tls && (!options.tls.cert || !options.tls.key)) throw usage('server option tls needs both cert and key (PEM)');
  const resolved: ResolvedServerOptions = {
    host,
    port,
    tokens: resolveTokens(options.tokens),
    ...(options.tls ? { tls: Object.freeze({ cert: options.tls.cert, key: options.tls.key }) } : {}),
    maxBatchHashes: positiveInteger(options, 'maxBatchHashes', 1),
    maxRequestBodyBytes: positiveInteger(options, 'maxRequestBodyBytes', 1),
    keepVersions: positiveInteger(options, 'keepVersions', 1),
    headersTimeoutMs: positiveInteger(options, 'headersTimeoutMs', 1),
    requestTimeoutMs: positiveInteger(options, 'requestTimeoutMs', 1),
    keepAliveTimeoutMs: positiveInteger(options, 'keepAliveTimeoutMs', 1),
    idleTimeoutMs: positiveInteger(options, 'idleTimeoutMs', 1),
    responseTimeoutMs: positiveInteger(options, 'responseTimeoutMs', 1),
    maxMessageBytes: positiveInteger(options, 'maxMessageBytes', 64),
    maxBufferedBytes: positiveInteger(options, 'maxBufferedBytes', 1024),
    maxClients: positiveInteger(options, 'maxClients', 1),
    heartbeatMs: positiveInteger(options, 'heartbeatMs', 1),
    log: options.log ?? (() => {}),
  };
  // Node refuses a headers timeout above the request timeout; say so in our own words first.
  if (resolved.headersTimeoutMs > resolved.requestTimeoutMs) {
    throw usage(`server option headersTimeoutMs (${resolved.headersTimeoutMs}) must not exceed requestTimeoutMs (${resolved.requestTimeoutMs})`);
  }
  return Object.freeze(resolved);
}

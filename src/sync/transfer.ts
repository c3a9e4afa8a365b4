// One sync call's HTTP traffic. A Session holds what spans the call's requests (the deadline,
// request and byte counts); an Exchange is one request with its timers. Every failure leaves here
// as a LivemodError naming the URL: a total deadline (ERR_LIVEMOD_TIMEOUT), a stall, meaning no
// byte for stallTimeoutMs before or after the headers (ERR_LIVEMOD_TIMEOUT), a body over its
// limit, stopped as soon as it is passed rather than read to the end (ERR_LIVEMOD_TOO_LARGE),
// and no connection (ERR_LIVEMOD_FETCH_FAILED). The caller's own abort passes through as its reason.
import { channel } from 'node:diagnostics_channel';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { inert } from '../text.ts';
import { httpRequest, type HttpResponse } from './http-client.ts';
import type { RequestEvent, ResolvedTransferOptions } from './options.ts';
import { monotonicMs } from '../clock.ts';

export interface RequestSpec {
  readonly kind: RequestEvent['kind'];
  readonly method: 'GET' | 'POST';
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Byte ranges asked for, for the request event. */
  readonly ranges?: number;
  /** A 304 is the likely answer (see HttpRequestInit). */
  readonly notModifiedLikely?: boolean;
}

type Expiry = 'total' | 'stall' | null;

/**
 * Every request a sync makes is also published here as its RequestEvent (undici's habit), a bare
 * revalidation answered 304 included, which node:http's own channels never see; a bare try
 * answered otherwise is the one event of the request made again through node:http:
 * `diagnostics_channel.subscribe('livemod:sync', (event) => …)`.
 */
export const SYNC_CHANNEL = 'livemod:sync';
const diagnostics = channel(SYNC_CHANNEL);

export class Session {
  readonly options: ResolvedTransferOptions;
  /** HTTP requests started. */
  requests = 0;
  /** Response body bytes received (after any content decoding). */
  bytes = 0;
  private readonly deadline: number;

  constructor(options: ResolvedTransferOptions) {
    this.options = options;
    const budget = options.deadline === undefined ? options.timeoutMs : Math.min(options.timeoutMs, options.deadline - Date.now());
    this.deadline = monotonicMs() + budget;
  }

  /** Sends a request and resolves once its response headers arrived. */
  async open(spec: RequestSpec): Promise<Exchange> {
    const { signal, timeoutMs } = this.options;
    signal?.throwIfAborted();
    const remaining = this.deadline - monotonicMs();
    if (remaining <= 0) throw timeoutError(spec, 'total', this.options, 0);
    this.requests += 1;
    const exchange = new Exchange(this, spec, Math.min(remaining, timeoutMs));
    let response: HttpResponse;
    try {
      response = await httpRequest(spec.url, {
        method: spec.method,
        headers: { ...this.options.headers, ...spec.headers },
        ...(spec.body !== undefined ? { body: spec.body } : {}),
        ...(spec.notModifiedLikely === true ? { notModifiedLikely: true, restarted: () => exchange.rearm() } : {}),
        signal: exchange.controller.signal,
      });
    } catch (error) {
      exchange.finish();
      this.report(spec, null);
      throw exchange.translate(error);
    }
    this.report(spec, response.status);
    exchange.attach(response);
    return exchange;
  }

  private report(spec: RequestSpec, status: number | null): void {
    const event: RequestEvent = { kind: spec.kind, method: spec.method, url: spec.url, status, ranges: spec.ranges ?? 0 };
    this.options.onRequest?.(event);
    if (diagnostics.hasSubscribers) diagnostics.publish(event);
  }
}

function timeoutError(spec: RequestSpec, expiry: 'total' | 'stall', options: ResolvedTransferOptions, received: number): LivemodError {
  const { method, url } = spec;
  if (expiry === 'total') {
    return new LivemodError('sync', ErrorCodes.TIMEOUT, `${method} ${url} did not finish within the ${options.timeoutMs} ms limit of this sync (every request of it shares that deadline); check the network, or raise it (--timeout, timeoutMs) for a slow link`, { url, timeoutMs: options.timeoutMs });
  }
  const when = received === 0 ? 'before sending anything' : `after ${received} bytes`;
  return new LivemodError('sync', ErrorCodes.TIMEOUT, `${method} ${url} stalled: no data for ${options.stallTimeoutMs} ms ${when}; the server or a proxy hung, try again (or raise stallTimeoutMs for a very slow link)`, { url, stallTimeoutMs: options.stallTimeoutMs, received });
}

export class Exchange {
  readonly controller: AbortController = new AbortController();
  readonly spec: RequestSpec;
  private readonly session: Session;
  private responseValue: HttpResponse | undefined;
  private expired: Expiry = null;
  private received = 0;
  private totalTimer: NodeJS.Timeout;
  private stallTimer: NodeJS.Timeout | undefined;
  private finished = false;
  private readonly onAbort = (): void => this.controller.abort(this.session.options.signal?.reason);

  constructor(session: Session, spec: RequestSpec, totalMs: number) {
    this.session = session;
    this.spec = spec;
    this.totalTimer = setTimeout(() => this.expire('total'), totalMs);
    this.session.options.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.armStall();
  }

  get response(): HttpResponse {
    if (!this.responseValue) throw new Error('the exchange has no response yet');
    return this.responseValue;
  }

  get url(): string {
    return this.spec.url;
  }

  attach(response: HttpResponse): void {
    this.responseValue = response;
    this.armStall();
  }

  private expire(expiry: 'total' | 'stall'): void {
    this.expired ??= expiry;
    this.controller.abort();
  }

  /** The stall timer starts over: the request was sent again (a bare revalidation answered otherwise). */
  rearm(): void {
    this.armStall();
  }

  private armStall(): void {
    clearTimeout(this.stallTimer);
    this.stallTimer = setTimeout(() => this.expire('stall'), this.session.options.stallTimeoutMs);
  }

  /** Stops the timers; idempotent. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.totalTimer);
    clearTimeout(this.stallTimer);
    this.session.options.signal?.removeEventListener('abort', this.onAbort);
  }

  /** Drops the rest of the body (the connection is closed rather than drained) and stops the timers. */
  discard(): void {
    this.finish();
    if (this.responseValue) this.responseValue.cancel();
    else this.controller.abort();
  }

  /** Maps whatever a failed request threw to the error the caller should see. */
  translate(error: unknown): unknown {
    if (error instanceof LivemodError) return error;
    if (this.expired) return timeoutError(this.spec, this.expired, this.session.options, this.received);
    const signal = this.session.options.signal;
    if (signal?.aborted) return signal.reason;
    const failure = error as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
    const code = typeof failure.code === 'string' ? failure.code : typeof failure.cause?.code === 'string' ? failure.cause.code : undefined;
    // Transport messages can quote what the host sent (a malformed header): inert and short.
    const why = inert(code ?? String(failure.cause?.message ?? failure.message), 160);
    const { method, url } = this.spec;
    // Certificate failures have a fix of their own: a private CA or self-signed server certificate.
    const fix = /CERT|SSL|TLS|SELF_SIGNED/i.test(why)
      ? "the server's TLS certificate is not trusted: for a private CA or a self-signed certificate, start with NODE_EXTRA_CA_CERTS=<ca.pem>"
      : 'check the URL and that the server is up and reachable';
    return new LivemodError('sync', ErrorCodes.FETCH_FAILED, `${method} ${url} failed (${why}); ${fix}`, { url, transport: why }, { cause: error });
  }

  /**
   * The body as it arrives, at most `limit` bytes: past that it stops reading and throws
   * ERR_LIVEMOD_TOO_LARGE, saying `what` the limit is for and `hint`, the likely cause or fix.
   * The bytes up to the limit are yielded first, so a parser refuses a lying frame header by
   * name before the size limit is reached.
   */
  async *body(limit: number, what: string, hint: string): AsyncGenerator<Buffer> {
    const response = this.response;
    let complete = false;
    try {
      const declared = Number(response.headers.get('content-length') ?? NaN);
      // A declared length is the encoded size; with an encoding only the decoded count below is checked.
      if (!response.headers.has('content-encoding') && declared > limit) throw this.tooLarge(`declares ${declared} bytes`, limit, what, hint);
      for await (const chunk of response.body) {
        this.armStall();
        const room = limit - this.received;
        this.received += chunk.byteLength;
        this.session.bytes += chunk.byteLength;
        const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        if (bytes.length > room) {
          if (room > 0) yield bytes.subarray(0, room);
          throw this.tooLarge(`sent more than ${limit} bytes`, limit, what, hint);
        }
        yield bytes;
      }
      complete = true;
    } catch (error) {
      throw this.translate(error);
    } finally {
      // A consumer that stopped early (a refused frame, a limit) must not leave the socket reading.
      if (complete) this.finish();
      else this.discard();
    }
  }

  async readAll(limit: number, what: string, hint: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of this.body(limit, what, hint)) parts.push(chunk);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  private tooLarge(did: string, limit: number, what: string, hint: string): LivemodError {
    const { method, url } = this.spec;
    return new LivemodError('sync', ErrorCodes.TOO_LARGE, `${method} ${url} ${did}, over the ${limit}-byte limit ${what}; ${hint}`, { url, limit });
  }
}

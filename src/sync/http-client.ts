// The HTTP client of a sync: node:http and node:https, not the global fetch. A warm start makes
// one request (a 304), and loading fetch's client (undici) costs a Node process about 80 ms
// before that request leaves, where node:http is already part of Node's startup snapshot and
// the request itself takes about 1 ms on loopback. The modules are taken with
// process.getBuiltinModule: an ESM `import` of node:http builds a module facade over every one of
// its exports, which costs about 45 ms more.
//
// What fetch did for a sync, this does too: redirects are followed (at most 20; a 303, and a
// 301/302 of a POST, become a GET without a body), credentials (authorization, cookie) are
// dropped when a redirect leaves the origin, and gzip, deflate and br bodies are decoded (a host
// compresses only when asked, and the request asks, as fetch does).
import type * as NodeHttp from 'node:http';
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage, RequestOptions } from 'node:http';
import type { Transform } from 'node:stream';
import type { Inflate, InflateRaw } from 'node:zlib';
import { bareAllowed, bareNotModified } from './bare-revalidation.ts';

export interface HttpRequestInit {
  readonly method: 'GET' | 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly signal: AbortSignal;
  /**
   * A 304 is the likely answer (a start revalidating its stored manifest): over plain http the
   * request goes on a bare socket first (bare-revalidation.ts), and only another answer is asked
   * again through node:http.
   */
  readonly notModifiedLikely?: boolean;
  /** Called when a bare try answered otherwise and the request goes again, through node:http (a stall timer starts over). */
  readonly restarted?: () => void;
}

/** Response headers, read as fetch's Headers are (names in any case; repeated values joined). */
export class ResponseHeaders {
  private readonly raw: IncomingHttpHeaders;

  constructor(raw: IncomingHttpHeaders) {
    this.raw = raw;
  }

  get(name: string): string | null {
    const value = this.raw[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }

  has(name: string): boolean {
    return this.raw[name.toLowerCase()] !== undefined;
  }
}

export interface HttpResponse {
  readonly status: number;
  readonly statusText: string;
  /** The URL that answered: the one asked for, or where redirects led. */
  readonly url: string;
  readonly headers: ResponseHeaders;
  /** The body, decoded; iterate it once. */
  readonly body: AsyncIterable<Uint8Array>;
  /** Stops reading: the connection is closed, not drained. Idempotent. */
  cancel(): void;
}

const MAX_REDIRECTS = 20;
/** A 304's body: none. */
const NO_BODY: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true, value: undefined }) }) };
/** Request headers that carry credentials: never sent to an origin a redirect names. */
const CREDENTIALS = ['authorization', 'cookie', 'proxy-authorization'];

type HttpModule = typeof NodeHttp;
let http: HttpModule | undefined;
let https: HttpModule | undefined;

function moduleFor(protocol: string): HttpModule {
  if (protocol === 'http:') return (http ??= process.getBuiltinModule('node:http'));
  if (protocol === 'https:') return (https ??= process.getBuiltinModule('node:https') as unknown as HttpModule);
  throw Object.assign(new TypeError(`${protocol} is not http: or https:`), { code: 'ERR_INVALID_PROTOCOL' });
}

/** Sends a request and resolves once the final (non-redirect) response's headers arrived. */
export async function httpRequest(url: string, init: HttpRequestInit): Promise<HttpResponse> {
  let target = new URL(url);
  let method = init.method;
  let body = init.body;
  const headers: Record<string, string> = { 'accept-encoding': 'gzip, deflate, br' };
  for (const [name, value] of Object.entries(init.headers)) headers[name.toLowerCase()] = value;
  const origin = target.origin;
  if (init.notModifiedLikely === true && method === 'GET' && body === undefined && bareAllowed(target, headers)) {
    const head = await bareNotModified(target, headers, init.signal);
    if (head) return { status: 304, statusText: head.statusText, url: target.href, headers: new ResponseHeaders(head.headers), body: NO_BODY, cancel: () => {} };
    init.restarted?.();
  }
  for (let redirects = 0; ; redirects += 1) {
    const message = await send(target, method, headers, body, init.signal);
    const status = message.statusCode ?? 0;
    const location = message.headers.location;
    if (![301, 302, 303, 307, 308].includes(status) || location === undefined) return respond(target.href, message, init.signal);
    message.destroy();
    if (redirects === MAX_REDIRECTS) throw Object.assign(new Error(`more than ${MAX_REDIRECTS} redirects`), { code: 'ERR_TOO_MANY_REDIRECTS' });
    target = new URL(location, target);
    if (target.protocol !== 'http:' && target.protocol !== 'https:') throw Object.assign(new Error(`a redirect to ${target.protocol}`), { code: 'ERR_INVALID_REDIRECT' });
    if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
      method = 'GET';
      body = undefined;
      delete headers['content-type'];
    }
    if (target.origin !== origin) for (const name of CREDENTIALS) delete headers[name];
  }
}

function send(target: URL, method: string, headers: Record<string, string>, body: string | undefined, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const options: RequestOptions = { method, headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) } };
    let request: ClientRequest;
    try {
      request = moduleFor(target.protocol).request(target, options);
    } catch (error) {
      reject(error);
      return;
    }
    // An abort during the body destroys the response too: its iteration then throws.
    const onAbort = (): void => {
      request.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    // `on`, not `once`: a socket error after the response is emitted here too (the response's
    // iteration reports it), and an unheard 'error' would end the process.
    request.on('error', (error) => {
      signal.removeEventListener('abort', onAbort);
      reject(error);
    });
    request.once('response', (message) => {
      message.once('close', () => signal.removeEventListener('abort', onAbort));
      resolve(message);
    });
    request.end(body);
  });
}

const DECODERS = new Set(['gzip', 'x-gzip', 'deflate', 'br']);

/**
 * One decoding stage. `deflate` is zlib-wrapped by the standard, but some servers send raw
 * deflate: as fetch does, the first byte decides (a zlib header's low nibble is 8).
 */
function decoderFor(coding: string): Transform {
  const zlib = process.getBuiltinModule('node:zlib');
  if (coding === 'br') return zlib.createBrotliDecompress();
  if (coding !== 'deflate') return zlib.createGunzip();
  const { Transform: TransformStream } = process.getBuiltinModule('node:stream');
  let inner: Inflate | InflateRaw | undefined;
  const outer: Transform = new TransformStream({
    transform(chunk: Buffer, _encoding, done) {
      if (!inner) {
        inner = (chunk[0]! & 0x0f) === 0x08 ? zlib.createInflate() : zlib.createInflateRaw();
        inner.on('data', (data: Buffer) => outer.push(data));
        inner.on('error', (error) => outer.destroy(error));
      }
      inner.write(chunk, done);
    },
    flush(done) {
      if (!inner) return done();
      inner.once('end', () => done());
      inner.end();
    },
  });
  return outer;
}

function respond(url: string, message: IncomingMessage, signal: AbortSignal): HttpResponse {
  const headers = new ResponseHeaders(message.headers);
  // Codings in the order they were applied (`gzip, br`: gzip first), so undone last to first.
  const codings = (headers.get('content-encoding') ?? '').split(',').map((coding) => coding.trim().toLowerCase()).filter((coding) => coding !== '' && coding !== 'identity');
  let body: AsyncIterable<Uint8Array> = message;
  let decoder: { destroy(): void } | undefined;
  // An unknown coding is passed through as it came: the hash check then refuses the bytes.
  if (codings.length > 0 && codings.length <= 4 && codings.every((coding) => DECODERS.has(coding))) {
    const stages = codings.reverse().map((coding) => decoderFor(coding));
    let stream = stages[0]!;
    for (const next of stages.slice(1)) {
      stream.on('error', (error) => next.destroy(error));
      stream = stream.pipe(next);
    }
    const first = stages[0]!;
    message.on('error', (error) => first.destroy(error));
    // The compressed stream can end before the response does (trailing bytes, a connection held
    // open): the response is then closed, or its socket would outlive the sync with no timer left.
    stream.once('end', () => {
      if (!message.complete) message.destroy();
    });
    // Once the response has arrived whole, destroying the request no longer reaches the decoder:
    // an abort (the caller's, or a timeout) stops it here.
    const onAbort = (): void => {
      stream.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => signal.removeEventListener('abort', onAbort));
    message.pipe(first);
    body = stream;
    decoder = { destroy: () => stages.forEach((stage) => stage.destroy()) };
  }
  return {
    status: message.statusCode ?? 0,
    statusText: message.statusMessage ?? '',
    url,
    headers,
    body,
    cancel(): void {
      decoder?.destroy();
      message.destroy();
    },
  };
}

// A non-2xx response as the error a user can act on. A livemod server's JSON error body carries
// a stable code and a one-line fix, which are kept (so callers match on the same code the server
// sent); a static host's bare status is mapped by what was asked for.
import { ErrorCodes, LivemodError, type ErrorCode } from '../errors.ts';
import { parseErrorBody } from '../protocol/index.ts';
import { inert, quoted } from '../text.ts';
import type { Exchange } from './transfer.ts';

/** An error body is a line of text; anything longer is not one, and is not read. */
const MAX_ERROR_BODY_BYTES = 16 * 1024;
const KNOWN_CODES = new Set<string>(Object.values(ErrorCodes));

async function serverError(exchange: Exchange): Promise<{ code: ErrorCode | undefined; message: string | undefined }> {
  const type = exchange.response.headers.get('content-type') ?? '';
  if (!type.includes('json')) {
    exchange.discard();
    return { code: undefined, message: undefined };
  }
  try {
    const error = parseErrorBody(JSON.parse((await exchange.readAll(MAX_ERROR_BODY_BYTES, 'for an error body', 'it is not an error message')).toString('utf8')));
    // The message is shown to a user: one line, inert, bounded.
    const message = error ? inert(error.message, 300) : undefined;
    return { code: error && KNOWN_CODES.has(error.code) ? (error.code as ErrorCode) : undefined, message };
  } catch {
    exchange.discard();
    return { code: undefined, message: undefined };
  }
}

/** What the request asked for, for the 404 message. */
export type Wanted = { readonly kind: 'manifest' } | { readonly kind: 'blob'; readonly module: string } | { readonly kind: 'pack' } | { readonly kind: 'batch' };

/** The host that answered, when a redirect took the request elsewhere than the URL asked for. */
function redirectedTo(exchange: Exchange): string | null {
  const final = exchange.response.url;
  if (!final || final === exchange.spec.url) return null;
  try {
    const answered = new URL(final);
    return answered.origin === new URL(exchange.spec.url).origin ? null : answered.host;
  } catch {
    return null;
  }
}

export async function httpError(exchange: Exchange, wanted: Wanted): Promise<LivemodError> {
  const { status } = exchange.response;
  // The reason phrase is the host's own text: inert, and short.
  const statusText = inert(exchange.response.statusText, 60);
  const { method, url } = exchange.spec;
  const elsewhere = redirectedTo(exchange);
  const server = await serverError(exchange);
  const said = server.message ? `: ${server.message}` : '';
  const details = { url, status, ...(server.code ? { serverCode: server.code } : {}), ...(elsewhere !== null ? { redirectedTo: elsewhere } : {}) };
  const error = (code: ErrorCode, message: string): LivemodError => new LivemodError('sync', code, message, details);

  if (status === 401 && elsewhere !== null) {
    return error(ErrorCodes.UNAUTHORIZED, `${method} ${url} was redirected to ${inert(elsewhere, 100)}, which answered 401: a token is sent only to the origin you named, never to the host a redirect names; run against ${inert(elsewhere, 100)} directly if you trust it, or fix the redirect`);
  }
  if (status === 401) return error(ErrorCodes.UNAUTHORIZED, `${method} ${url} answered 401: the server wants a token; pass one (--token, or the option headers: { authorization: 'Bearer <token>' })`);
  if (status === 403) return error(ErrorCodes.UNAUTHORIZED, `${method} ${url} answered 403: the token was refused${said}; check the token, or ask the publisher for access`);
  if (status === 404 && server.code === undefined) {
    switch (wanted.kind) {
      case 'manifest':
        return error(ErrorCodes.NOT_FOUND, `no livemod manifest at ${url}; check the URL: it must be a livemod server or the folder a snapshot was published to`);
      case 'blob':
        return error(ErrorCodes.NOT_FOUND, `${url} (blob of ${quoted(wanted.module)}) is missing on the host; the published snapshot is incomplete, so publish it again`);
      case 'pack':
        return error(ErrorCodes.NOT_FOUND, `${url} (the snapshot's pack) is missing on the host; the published snapshot is incomplete, so publish it again`);
      case 'batch':
        return error(ErrorCodes.NOT_FOUND, `${url} answered 404 although the manifest offered it for batches; the server is misconfigured, or a proxy does not pass POST requests on`);
      default:
        wanted satisfies never;
    }
  }
  if (server.code && server.message) return error(server.code, `${method} ${url} answered ${status}${said}`);
  const retry = status >= 500 ? 'try again later, or ask the publisher to check the server' : 'check the URL and options';
  return error(ErrorCodes.FETCH_FAILED, `${method} ${url} answered ${status}${statusText ? ` ${statusText}` : ''}${said}; ${retry}`);
}

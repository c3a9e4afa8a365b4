// Where things are, relative to a snapshot's base URL. The layout is the one `publishSnapshot`
// writes and `livemod serve` routes: BASE/manifest.json, BASE/blobs/<hash>, BASE/<pack path>.
// A base may sit under a path prefix (a static host's folder), so every name is resolved
// relative to it, never from the host's root.
import { ErrorCodes, LivemodError } from '../errors.ts';
import { HEADERS } from '../protocol/index.ts';

export interface Capabilities {
  /** Absolute URL of the server's `POST` batch route; absent on a static host. */
  readonly batch?: string;
  /** Absolute URL of the server's channel (push) route; absent on a static host. */
  readonly channel?: string;
}

/** The snapshot's folder URL, ending in `/`; a URL naming manifest.json itself is taken as its folder. */
export function snapshotBase(base: string | URL): URL {
  let url: URL;
  try {
    url = new URL(String(base));
  } catch {
    throw new LivemodError('sync', ErrorCodes.USAGE, `"${String(base).slice(0, 200)}" is not a URL; pass the server's or snapshot folder's address, e.g. http://127.0.0.1:8080/`, { url: String(base) });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new LivemodError('sync', ErrorCodes.USAGE, `${url.href} is not an http(s) URL; livemod fetches snapshots over http or https`, { url: url.href });
  }
  url.search = '';
  url.hash = '';
  if (url.pathname.endsWith('/manifest.json')) url.pathname = url.pathname.slice(0, -'manifest.json'.length);
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

export function manifestUrl(base: URL): string {
  return new URL('manifest.json', base).href;
}

export function blobUrl(base: URL, hash: string): string {
  return new URL(`blobs/${hash}`, base).href;
}

export function packUrl(base: URL, path: string): string {
  return new URL(path, base).href;
}

/**
 * Capability headers of a manifest response, resolved against its URL. A capability on another
 * origin is dropped: following it would send this client's token (and trust) to a host the user
 * never named.
 */
/**
 * Capability URLs from a manifest response. `from` is where the response came from (relative
 * values resolve against it); `trusted` is the URL the caller asked for. Only capabilities on
 * the trusted origin are kept: after a redirect to another host, the token (which fetch strips
 * on that redirect) must not be sent there through a batch route it advertises.
 */
export function readCapabilities(headers: { get(name: string): string | null }, from: string, trusted: string = from): Capabilities {
  const origin = new URL(trusted).origin;
  const resolve = (name: string): string | undefined => {
    const value = headers.get(name)?.trim();
    if (!value) return undefined;
    try {
      const url = new URL(value, from);
      return url.origin === origin ? url.href : undefined;
    } catch {
      return undefined;
    }
  };
  const batch = resolve(HEADERS.batch);
  const channel = resolve(HEADERS.channel);
  return { ...(batch ? { batch } : {}), ...(channel ? { channel } : {}) };
}

// Where a store lives and how names map to paths. Every path below the store's folder is
// derived from a hash (validated first) or from a fixed name: nothing from outside, neither a
// blob hash from the wire nor an origin URL, ever becomes a path segment as written.
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { isHash, sha256Hex } from '../snapshot/index.ts';

/** The folder names inside a store; docs/protocol.md "Client store" is the prose. */
export const LAYOUT: {
  readonly blobs: 'blobs';
  readonly origins: 'origins';
  readonly tmp: 'tmp';
  readonly lock: 'lock';
  readonly manifest: 'manifest.json';
  readonly state: 'state.json';
} = Object.freeze({
  blobs: 'blobs',
  origins: 'origins',
  tmp: 'tmp',
  lock: 'lock',
  manifest: 'manifest.json',
  state: 'state.json',
} as const);

/**
 * The store folder for an environment: `LIVEMOD_CACHE`, else `$XDG_CACHE_HOME/livemod`, else
 * `~/.cache/livemod` (`%LOCALAPPDATA%\livemod` on Windows). Empty values count as unset, and a
 * relative `XDG_CACHE_HOME` is ignored, as the XDG spec asks.
 * @example
 * defaultStoreDir({ LIVEMOD_CACHE: '/var/cache/tools' }); // '/var/cache/tools'
 */
export function defaultStoreDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.LIVEMOD_CACHE;
  if (explicit) return resolve(explicit);
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'livemod');
  if (process.platform === 'win32' && env.LOCALAPPDATA) return join(env.LOCALAPPDATA, 'livemod');
  return join(homedir(), '.cache', 'livemod');
}

let processDefault: string | undefined;

/** `defaultStoreDir(process.env)`, resolved once per process so every store in it agrees. */
export function processStoreDir(): string {
  processDefault ??= defaultStoreDir(process.env);
  return processDefault;
}

/**
 * The origin a manifest belongs to, as the store names it: lowercase scheme and host, no
 * default port, no credentials, query or fragment, and the path of the snapshot's folder
 * (ending in `/`). A URL naming `manifest.json` stands for its folder, and a path without a
 * trailing `/` for a folder of that name: the same rule as sync's `snapshotBase`, so a base
 * URL, its manifest URL and the user's spelling of either all land in one origin.
 * @example
 * normaliseOrigin('HTTP://Tools.Example:80/app/manifest.json?x=1'); // 'http://tools.example/app/'
 */
export function normaliseOrigin(origin: string | URL): string {
  let url: URL;
  try {
    url = new URL(String(origin));
  } catch {
    throw new LivemodError('store', ErrorCodes.USAGE, `"${String(origin).slice(0, 200)}" is not a URL; the store keys manifests by the snapshot's http(s) base URL`, { origin: String(origin).slice(0, 200) });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new LivemodError('store', ErrorCodes.USAGE, `${url.href} is not an http(s) URL; the store keys manifests by the snapshot's http(s) base URL`, { origin: url.href });
  }
  // WHATWG URL parsing already lowercases scheme and host and drops a default port.
  url.username = '';
  url.password = '';
  url.search = '';
  url.hash = '';
  if (url.pathname.endsWith('/manifest.json')) url.pathname = url.pathname.slice(0, -'manifest.json'.length);
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url.href;
}

/** The folder name of a normalised origin: 128 bits of its sha256, enough to never collide. */
export function originId(normalised: string): string {
  return sha256Hex(normalised).slice(0, 32);
}

export const ORIGIN_ID_PATTERN: RegExp = /^[0-9a-f]{32}$/;

/** Throws unless `hash` is a blob hash; the only way a hash becomes a path. */
export function requireHash(hash: unknown, what = 'blob hash'): string {
  if (!isHash(hash)) {
    const shown = typeof hash === 'string' ? JSON.stringify(hash.slice(0, 80)) : typeof hash;
    throw new LivemodError('store', ErrorCodes.USAGE, `${shown} is not a ${what} (64 lowercase hex digits of sha256); the store refuses it rather than turn it into a path`);
  }
  return hash;
}

export function blobPath(dir: string, hash: string): string {
  return join(dir, LAYOUT.blobs, hash.slice(0, 2), hash);
}

export function originPath(dir: string, id: string): string {
  return join(dir, LAYOUT.origins, id);
}

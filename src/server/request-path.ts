// Turns a request target into the path routes match on. It never resolves dot segments (that
// would let `/blobs/../manifest.json` reach another route); it refuses them and anything else
// not canonical, so each route is reachable by exactly one spelling plus percent-encoding.

export const MAX_URL_LENGTH = 4096;

export type PathResult = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly status: 400 | 414; readonly reason: string };

function hasControlOrBackslash(path: string): boolean {
  for (let index = 0; index < path.length; index += 1) {
    const code = path.charCodeAt(index);
    if (code < 0x20 || code === 0x7f || code === 0x5c) return true;
  }
  return false;
}

export function parseRequestPath(target: string | undefined): PathResult {
  if (target === undefined || target === '') return { ok: false, status: 400, reason: 'the request has no target path' };
  if (target.length > MAX_URL_LENGTH) return { ok: false, status: 414, reason: `the URL is ${target.length} characters, over the ${MAX_URL_LENGTH}-character limit` };
  let raw = target;
  // Absolute form (`GET http://host/path`), which some proxies send.
  const absolute = /^https?:\/\/[^/?#]*/i.exec(raw);
  if (absolute) raw = raw.slice(absolute[0].length) || '/';
  const end = raw.search(/[?#]/);
  if (end !== -1) raw = raw.slice(0, end);
  if (!raw.startsWith('/')) return { ok: false, status: 400, reason: 'the request target must be a path starting with "/"' };
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    return { ok: false, status: 400, reason: 'the path has malformed percent-encoding' };
  }
  if (hasControlOrBackslash(path)) return { ok: false, status: 400, reason: 'the path holds control characters or backslashes' };
  if (path !== '/' && path.slice(1).split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) {
    return { ok: false, status: 400, reason: 'the path has empty, "." or ".." segments' };
  }
  return { ok: true, path };
}

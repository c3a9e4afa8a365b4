// What a user names — `http://host/main.ts`, `https://cdn/app/`, `https://cdn/app/tools/menu.ts`
// — as candidate snapshot bases (deepest first) and the module path under each. A livemod
// server serves its manifest at the root; a static snapshot sits in some folder of a host, so
// the folders above the module are tried in turn until one answers with a manifest.
import { ErrorCodes, LivemodError } from '../errors.ts';

export interface Candidate {
  /** Snapshot base URL, ending with "/". */
  readonly base: string;
  /** Module path under the base, or null: the manifest's entry. */
  readonly module: string | null;
}

const MODULE_FILE = /\.(?:[mc]?[jt]sx?|json)$/;

export function parseRemoteTarget(target: string): URL {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new LivemodError('cli', ErrorCodes.USAGE, `"${target}" is not a URL or a local path; give http(s)://host[:port]/[module] or ./path/to/module.ts`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new LivemodError('cli', ErrorCodes.USAGE, `"${target}" uses ${url.protocol}; livemod fetches snapshots over http: or https:`);
  }
  if (url.username || url.password) throw new LivemodError('cli', ErrorCodes.USAGE, `"${url.host}": credentials in the URL are not sent; use --token`);
  url.hash = '';
  url.search = '';
  return url;
}

export function candidates(url: URL): Candidate[] {
  let segments: string[];
  try {
    segments = url.pathname.split('/').slice(1).map((segment) => decodeURIComponent(segment));
  } catch {
    throw new LivemodError('cli', ErrorCodes.USAGE, `"${url.href}" has a malformed %-escape in its path; fix the URL`);
  }
  const last = segments[segments.length - 1] ?? '';
  if (segments.slice(0, -1).includes('')) {
    throw new LivemodError('cli', ErrorCodes.USAGE, `"${url.href}" has an empty folder (//) in its path; remove the doubled slash`);
  }
  const out: Candidate[] = [];
  if (last === 'manifest.json' || last === '') {
    out.push({ base: new URL('./', url).href, module: null });
    return out;
  }
  if (!MODULE_FILE.test(last)) {
    // A folder named without its trailing slash.
    out.push({ base: new URL(`${url.pathname}/`, url).href, module: null });
  }
  for (let depth = segments.length - 1; depth >= 0; depth -= 1) {
    const base = new URL(`/${segments.slice(0, depth).map(encodeURIComponent).join('/')}${depth > 0 ? '/' : ''}`, url).href;
    out.push({ base, module: segments.slice(depth).join('/') });
  }
  return out;
}

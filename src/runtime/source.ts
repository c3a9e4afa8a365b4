// Where a registry gets its modules: a verified manifest, a base URL the module paths hang off
// (an origin for remote snapshots, a file URL for a local folder), and the bytes of blobs.
import { fileURLToPath } from 'node:url';
import type { Manifest } from '../snapshot/index.ts';

export interface ModuleSource {
  readonly manifest: Manifest;
  /** Ends with "/": a module's URL is `moduleUrl(path, base)`. */
  readonly base: string;
  /** A verified blob; throws a LivemodError when it cannot be had. */
  blob(hash: string): Buffer;
  /** A source map's text, or null when it cannot be had (stack traces then stay unmapped). */
  map(hash: string): string | null;
  /**
   * A source that holds only part of its tree (a local run builds what the entry reaches) can
   * grow: the same version with the module `specifier` names from `importer` (a module path;
   * null: the folder) built too, or null when it names no module there.
   */
  extend?(specifier: string, importer: string | null): ModuleSource | null;
  /**
   * Modules lazy imports name that this source left out of its manifest (a local build defers a
   * lazily imported graph free of top-level await): `extend` brings one at its first read.
   */
  readonly deferred?: ReadonlySet<string>;
  /** The packages those left-out graphs import: a start loads them, as it would have loaded them with the graphs. */
  readonly deferredExternals?: readonly { readonly specifier: string; readonly attributes?: Readonly<Record<string, string>> }[];
  /**
   * Makes the blobs of these modules available before they are instantiated (a remote source
   * fetches what it has not, in one batch): a client fetches only what runs. Rejects with a
   * LivemodError when they cannot be had (offline, never fetched).
   */
  ensure?(paths: readonly string[]): Promise<void>;
  /**
   * ensure() for a caller that cannot await (a lazily imported graph's first read): blocks until
   * the blobs are there. A source that has it lets a start skip lazily imported graphs.
   */
  ensureSync?(paths: readonly string[]): void;
  /** V8's code cache for module blobs (the store's code/ folder), by blob hash; absent: every start compiles. */
  readonly codeCache?: ModuleCodeCache;
  /** Where the modules come from, for stack traces and messages, when `base` is a folder they run from (a remote version laid out in the store). */
  readonly origin?: string;
  /**
   * The folder this version's files are at, as Node loads them (a file URL ending in "/"): its
   * CommonJS files load from there. Absent: `base` (a local folder).
   */
  readonly files?: string;
  /** Externals resolve as if imported from this folder (a file URL ending in "/"); else the registry's option. */
  readonly externalsFrom?: string;
  /**
   * Makes this version's files the ones the program sees (a remote program's view of the store is
   * re-pointed), before its modules evaluate in a swap; returns the undo, called on rollback.
   */
  activate?(): () => void;
}

/** Cached V8 data by blob hash (src/store/code-cache.ts). */
export interface ModuleCodeCache {
  get(hash: string): Buffer | undefined;
  put(hash: string, data: Buffer): void;
  drop(hash: string): void;
  /** Called once after a batch of put()s: the data of this start is complete. */
  done?(): void;
  /** A graph grown into the run (blobs by hash): its code cache is kept together from now on, as the start's is. */
  grow?(code: readonly string[], blobs: { get(hash: string): Buffer | undefined }): void;
}

/**
 * A module's URL: its path under `base`, with what a URL would read otherwise escaped (`%`, `#`,
 * `?`, control characters), as `pathToFileURL` escapes a file's name: `50%.js` and `a#b.js` are
 * files, not an escape and a fragment.
 */
export function moduleUrl(path: string, base: string): string {
  return new URL(path.replace(URL_SPECIAL, encodeURIComponent), base).href;
}

// eslint-disable-next-line no-control-regex
const URL_SPECIAL = /[%#?\u0000-\u001f]/g;

/**
 * The module path `url` names under `base` (moduleUrl's inverse): null when it lies elsewhere; a
 * reason when it lies under `base` but names no path moduleUrl makes — a query or a fragment (in
 * Node, another instance of the module; here there is one per module) or an encoded separator.
 * `file:` URLs are compared as the paths they name, so escapes written another way (`%5B` or `[`,
 * `%c3%a9` or `é`) name the same file, and one with a host (which Node refuses) names none here.
 */
export function pathUnder(url: URL, base: string): { path: string } | { reason: string } | null {
  let relative: string;
  if (url.protocol === 'file:' && base.startsWith('file:')) {
    if (url.host !== '') return null;
    let file: string;
    try {
      file = fileURLToPath(new URL(url.pathname, 'file:///'));
    } catch {
      // An encoded separator, which names no file.
      return url.pathname.startsWith(new URL(base).pathname) ? encodedSeparator(url) : null;
    }
    const root = fileURLToPath(base);
    if (!file.startsWith(root) || file.length === root.length) return null;
    relative = file.slice(root.length);
  } else {
    const bare = `${url.origin === 'null' ? `${url.protocol}//` : url.origin}${url.pathname}`;
    if (!bare.startsWith(base) || bare.length === base.length) return null;
    if (/%(?:2f|5c)/i.test(bare.slice(base.length))) return encodedSeparator(url);
    try {
      relative = decodeURIComponent(bare.slice(base.length));
    } catch {
      return { reason: `${url.href} has a malformed escape in its path` };
    }
  }
  if (url.search !== '' || url.hash !== '') return { reason: `${url.href} names a module of the program with a query or a fragment, which in Node loads another instance of it; livemod runs one instance per module: import it without` };
  return { path: relative };
}

function encodedSeparator(url: URL): { reason: string } {
  return { reason: `${url.href} has an encoded / or \\ in its path, which names no file` };
}

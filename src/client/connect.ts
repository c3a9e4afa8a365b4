// The two-line bootstrap: `const app = await connect(url, { publicKey })`, then
// `await app.import('main.ts')`. Also the local form, `openFolder('./src')`, which builds a
// folder in-process and runs it the same way.
import { existsSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { Registry, type Namespace } from '../runtime/index.ts';
import { appNameProblem, parsePublicKey, type Manifest } from '../snapshot/index.ts';
import type { BuildOptions } from '../build/index.ts';
import { openStore, type Store } from '../store/index.ts';
import type { RequestEvent } from '../sync/index.ts';
import { configPath, originConfig } from './config.ts';
import { DEFAULT_MAX_STALE_MS, DEFAULT_SYNC_TIMEOUT_MS, syncRemote, type SyncProgress, type SyncedFrom } from './remote.ts';
import { parseRemoteTarget } from './targets.ts';

export interface ConnectOptions {
  /** The publisher's public key, `ed25519:…` (default: env LIVEMOD_KEY, else the config file's entry for the URL). */
  readonly publicKey?: string;
  /** Sent as `Authorization: Bearer <token>` (default: env LIVEMOD_TOKEN, else the config file's entry). */
  readonly token?: string;
  /** Store folder (default: env LIVEMOD_CACHE, else the user's cache directory). */
  readonly cache?: string | Store;
  /**
   * The app the snapshot must be of (its manifest's `name`; default: the config file's entry).
   * Without it, a client still refuses another app than the one it accepted from this URL before.
   */
  readonly app?: string;
  /** Never touch the network: run what the cache holds. */
  readonly offline?: boolean;
  /**
   * Offline fallback: run a cached version only if its origin confirmed it within this many ms
   * (default 7 days); 0 never runs a version the origin did not confirm in this sync.
   */
  readonly maxStaleMs?: number;
  /** One deadline for the whole sync, every request in it (default 30 s). */
  readonly timeoutMs?: number;
  /** Externals resolve as if imported from this folder (a path or file URL; default: the working directory). */
  readonly externalsFrom?: string;
  readonly onProgress?: (progress: SyncProgress) => void;
  readonly onRequest?: (event: RequestEvent) => void;
  /** One-line notices (offline fallback, refetches); default: stderr. */
  readonly notice?: (line: string) => void;
}

export interface App {
  readonly manifest: Manifest;
  readonly version: number;
  /** The snapshot's base URL (a file URL for a local folder). */
  readonly base: string;
  /** Where this version came from now: fetched, confirmed unchanged (304), the cache while offline, or a local build. */
  readonly from: SyncedFrom | 'local';
  /** How long ago the origin last confirmed this version (0: just now). */
  readonly ageMs: number;
  /** The module the target named, else the manifest's entry (null if neither). */
  readonly entry: string | null;
  readonly registry: Registry;
  /** Imports a module of the snapshot by path (default: `entry`) and returns its namespace. */
  import(path?: string): Promise<Namespace>;
  close(): Promise<void>;
}

function duration(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw new LivemodError('cli', ErrorCodes.USAGE, `connect option ${name} is ${String(value)}; it must be a whole number of ms ≥ ${min}`);
  return value;
}

function folderUrl(path: string): string {
  if (path.startsWith('file:')) return path.endsWith('/') ? path : `${path}/`;
  return `${pathToFileURL(resolve(path)).href}/`;
}

function makeApp(registry: Registry, fields: Omit<App, 'registry' | 'import' | 'close' | 'version' | 'manifest'>): App {
  const manifest = registry.source.manifest;
  let closed: Promise<void> | undefined;
  return {
    ...fields,
    manifest,
    version: manifest.version,
    registry,
    import(path) {
      const target = path ?? fields.entry;
      if (!target) throw new LivemodError('runtime', ErrorCodes.USAGE, `the snapshot at ${fields.base} names no entry module; import one by path, e.g. app.import('main.ts')`);
      return registry.import(target);
    },
    close() {
      closed ??= Promise.resolve();
      return closed;
    },
  };
}

/**
 * Syncs a snapshot from a livemod server or a static host and returns the app, ready to import.
 * @example
 * const app = await connect('https://tools.example.com/', { publicKey: 'ed25519:…' });
 * await app.import('main.ts');
 */
export async function connect(target: string | URL, options: ConnectOptions = {}): Promise<App> {
  const url = target instanceof URL ? target : parseRemoteTarget(target);
  const configured = options.publicKey && options.token && options.app ? {} : originConfig(url);
  const publicKey = options.publicKey ?? process.env.LIVEMOD_KEY ?? configured.key;
  if (!publicKey) throw new LivemodError('sync', ErrorCodes.KEY_MISSING, `no publisher key to verify ${String(target)} with; pass --key ed25519:… (or publicKey, env LIVEMOD_KEY, or an entry in ${configPath()}): the key \`livemod serve\` or \`livemod keygen\` printed`);
  const key = parsePublicKey(publicKey);
  const token = options.token ?? process.env.LIVEMOD_TOKEN ?? configured.token;
  const app = options.app ?? configured.app;
  if (app !== undefined) {
    const problem = appNameProblem(app);
    if (problem !== null) throw new LivemodError('cli', ErrorCodes.USAGE, `the app to pin (--app, app) must be ${problem}: the name the publisher's manifest carries`);
  }
  const store = typeof options.cache === 'object' ? options.cache : openStore(options.cache ? { dir: options.cache } : {});
  const notice = options.notice ?? ((line: string) => process.stderr.write(`${line}\n`));
  const source = await syncRemote(url, {
    key,
    store,
    headers: token ? { authorization: `Bearer ${token}` } : {},
    offline: options.offline === true,
    ...(app !== undefined ? { app } : {}),
    maxStaleMs: duration('maxStaleMs', options.maxStaleMs, DEFAULT_MAX_STALE_MS, 0),
    timeoutMs: duration('timeoutMs', options.timeoutMs, DEFAULT_SYNC_TIMEOUT_MS, 1),
    ...(options.onRequest ? { onRequest: options.onRequest } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    notice,
  });
  const registry = new Registry(source, { externalsFrom: folderUrl(options.externalsFrom ?? process.cwd()) });
  return makeApp(registry, { base: source.base, from: source.from, ageMs: source.ageMs, entry: source.module ?? source.manifest.entry });
}

/** The folder a local module belongs to: the nearest one above it with a package.json, else its own. */
function localRoot(file: string): string {
  const dir = dirname(file);
  for (let up = dir; ; up = dirname(up)) {
    if (existsSync(join(up, 'package.json'))) return up;
    if (dirname(up) === up) return dir;
  }
}

/**
 * Builds a local folder (or the folder of a module file) in-process and returns it as an app.
 * @example
 * const app = await openFolder('./src/main.ts');
 * await app.import();
 */
export async function openFolder(path: string, options: { externalsFrom?: string; build?: Partial<BuildOptions> } = {}): Promise<App> {
  const absolute = resolve(path);
  let root = absolute;
  let module: string | null = null;
  try {
    if (statSync(absolute).isFile()) {
      root = localRoot(absolute);
      module = relative(root, absolute).split(sep).join('/');
    }
  } catch {
    throw new LivemodError('cli', ErrorCodes.DIR_INVALID, `${path} does not exist; give a module file or a folder of modules`, { path });
  }
  // Loaded here: the builder and its native parser are for local folders only, not for every client.
  const { localSource } = await import('./local.ts');
  let source = localSource(root, options.build);
  if (module !== null && !Object.hasOwn(source.manifest.modules, module) && root !== dirname(absolute)) {
    // The package folder leaves the file out (it sits in a dot folder or node_modules): build its own folder.
    root = dirname(absolute);
    module = relative(root, absolute).split(sep).join('/');
    source = localSource(root, options.build);
  }
  const registry = new Registry(source, { externalsFrom: folderUrl(options.externalsFrom ?? root) });
  return makeApp(registry, { base: source.base, from: 'local', ageMs: 0, entry: module ?? source.manifest.entry });
}

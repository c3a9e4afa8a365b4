// The two-line bootstrap: `const app = await connect(url, { publicKey })`, then
// `await app.import('main.ts')`. Also the local form, `openFolder('./src')`, which builds a
// folder in-process and runs it the same way. An app can follow new versions and swap to them
// in place (live.ts): through the server's channel, a poll of a static host, or a watched folder.
import { existsSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { Registry, replayResolutions, resolutionSignature, type ModuleCodeCache, type ModuleSource, type Namespace } from '../runtime/index.ts';
import { appNameProblem, carriesPackages, moduleBlobs, parsePublicKey, staticClosure, type LazyPolicy, type Manifest } from '../snapshot/index.ts';
import type { BuildOptions, BuildResult } from '../build/index.ts';
import { openStore, type ProgramView, type Store } from '../store/index.ts';
import type { RequestEvent } from '../sync/index.ts';
import { configPath, matchOrigin, originConfig, type OriginConfig } from './config.ts';
import type { EagerRules, LoadRecord } from '../runtime/index.ts';
import { ChannelClient } from './channel.ts';
import { Live, type SwapListener, type SwapRecord } from './live.ts';
import { DEFAULT_MAX_STALE_MS, DEFAULT_SYNC_TIMEOUT_MS, storedVersion, syncRemote, type RemoteSource, type SyncProgress, type SyncedFrom } from './remote.ts';
import { parseRemoteTarget } from './targets.ts';
import { registerProgram, type ChildTask } from './children.ts';

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
   * When to ask the origin whether the cached version is still the latest: `start` (default)
   * before anything runs; `background`: the verified cached version starts at once, the
   * conditional request runs beside it, and a newer version found is swapped in place (an app
   * not yet in the cache syncs first, as with `start`).
   */
  readonly revalidate?: 'start' | 'background';
  /**
   * When source maps are fetched: `first-use` (default), when a stack first needs one (the maps of
   * every module fetched so far, in one batch); `start`, with the code (offline stacks are then
   * mapped too, at the cost of about twice the blobs per cold start).
   */
  readonly maps?: 'first-use' | 'start';
  /**
   * Offline fallback: run a cached version only if its origin confirmed it within this many ms
   * (default 7 days); 0 never runs a version the origin did not confirm in this sync.
   */
  readonly maxStaleMs?: number;
  /** One deadline for the whole sync, every request in it (default 30 s). */
  readonly timeoutMs?: number;
  /** Externals resolve as if imported from this folder (a path or file URL; default: the working directory). */
  readonly externalsFrom?: string;
  /** `normal`: imports of live modules are evaluated at the first read of a binding; `all`: packages imported by name or default too (RegistryOptions.lazy); default `none`. */
  readonly lazy?: 'none' | 'normal' | 'all';
  /** With lazy: the imports that stay eager (RegistryOptions.eager). */
  readonly eager?: EagerRules;
  /** Record where, how long and how much heap each first-read load took, for `app.loadReport()` (RegistryOptions.report). */
  readonly loadReport?: boolean;
  /** Keys, tokens and apps by URL prefix (a project's livemod.config.ts): after explicit options and env, before the user's config file. */
  readonly origins?: Readonly<Record<string, OriginConfig>>;
  readonly onProgress?: (progress: SyncProgress) => void;
  readonly onRequest?: (event: RequestEvent) => void;
  /** One-line notices (offline fallback, refetches, failed swaps); default: stderr. */
  readonly notice?: (line: string) => void;
}

/** How an app follows new versions. */
export interface LiveOptions {
  /**
   * Follow new versions and swap to them in place: through the server's channel (a livemod
   * server), by polling every `pollMs` (a static host), or by watching the folder (openFolder).
   * Default false: the app runs the version it started with until `update()` is called.
   */
  readonly live?: boolean;
  /** Revalidate the manifest this often (a conditional GET), for hosts without a channel. */
  readonly pollMs?: number;
  /** Do not apply a change that no module accepts: the swap reports "unaccepted" (the caller restarts). */
  readonly restartOnUnaccepted?: boolean;
  /** Print every swap to the notice line (failures are always printed). */
  readonly logSwaps?: boolean;
}

export interface App {
  /** The manifest of the version running now (a swap changes it). */
  readonly manifest: Manifest;
  readonly version: number;
  /** The snapshot's base URL (a file URL for a local folder). */
  readonly base: string;
  /** Where this version came from now: fetched, confirmed unchanged (304), the cache while offline, or a local build. */
  readonly from: SyncedFrom | 'local' | 'parent';
  /** How long ago the origin last confirmed this version (0: just now). */
  readonly ageMs: number;
  /** The module the target named, else the manifest's entry (null if neither). */
  readonly entry: string | null;
  readonly registry: Registry;
  /** Imports a module of the snapshot by path (default: `entry`, as the program's main module) and returns its namespace. */
  import(path?: string): Promise<Namespace>;
  /** Syncs now and swaps to the newest version in place; the last swap made, or null when nothing was newer. */
  update(): Promise<SwapRecord | null>;
  /**
   * A URL app: fetches and stores the origin's current version without running it, so the next
   * start runs it (a cached version that failed at start); resolves with that version's number.
   */
  refresh?(): Promise<number>;
  /** Each swap, applied or not: its version, modules (old → new hash), duration and result. */
  on(event: 'swap', listener: SwapListener): void;
  off(event: 'swap', listener: SwapListener): void;
  /** The swap log: the last swaps, oldest first. */
  swaps(): SwapRecord[];
  /** How each module came to be loaded, or why it was not (lazy imports): `livemod run --report`. */
  loadReport(): LoadRecord[];
  /** Stops following new versions (channel, poll, watcher); the running code is untouched. */
  close(): Promise<void>;
}

/** The lazy policy a sync or a build defers by (none without a lazy mode), as `{ lazy }` to spread into its options. */
function lazyPolicy(options: { lazy?: 'none' | 'normal' | 'all'; eager?: EagerRules }): { lazy?: LazyPolicy } {
  return options.lazy !== undefined && options.lazy !== 'none' ? { lazy: { lazy: options.lazy, ...(options.eager ? { eager: options.eager } : {}) } } : {};
}

function sourceMapsMode(value: unknown): 'first-use' | 'start' {
  if (value === 'first-use' || value === 'start') return value;
  throw new LivemodError('cli', ErrorCodes.USAGE, `connect option maps is ${JSON.stringify(String(value)).slice(0, 40)}; it must be "first-use" or "start"`);
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

function makeApp(registry: Registry, live: Live, stop: () => Promise<void>, fields: Omit<App, 'registry' | 'import' | 'close' | 'version' | 'manifest' | 'update' | 'on' | 'off' | 'swaps' | 'loadReport'>): App {
  let closed: Promise<void> | undefined;
  return {
    ...fields,
    get manifest() {
      return registry.source.manifest;
    },
    get version() {
      return registry.source.manifest.version;
    },
    registry,
    import(path) {
      const target = path ?? fields.entry;
      if (!target) throw new LivemodError('runtime', ErrorCodes.USAGE, `the snapshot at ${fields.base} names no entry module; import one by path, e.g. app.import('main.ts')`);
      // The entry, imported as the program's start, is its main module (import.meta.main).
      return registry.import(target, { main: path === undefined });
    },
    update: () => live.update(),
    loadReport: () => registry.loadReport(),
    on(event, listener) {
      if (event === 'swap') live.on(listener);
    },
    off(event, listener) {
      if (event === 'swap') live.off(listener);
    },
    swaps: () => live.swaps(),
    close() {
      closed ??= (async () => {
        live.close();
        await stop();
      })();
      return closed;
    },
  };
}

/** What a client tells the server about itself: the version it runs and its last swap, under 4 KiB. */
function statusOf(live: Live): { type: 'status'; version: number; swap?: Record<string, unknown> } {
  const last = live.last();
  if (!last) return { type: 'status', version: live.version };
  return {
    type: 'status',
    version: live.version,
    swap: {
      at: last.at,
      status: last.status,
      version: last.version,
      previousVersion: last.previousVersion,
      modules: last.modules.slice(0, 20).map((module) => module.path.slice(0, 120)),
      durationMs: last.durationMs,
      ...(last.error !== undefined ? { error: last.error.split('\n').slice(0, 3).join(' | ').slice(0, 600) } : {}),
    },
  };
}

/**
 * Syncs a snapshot from a livemod server or a static host and returns the app, ready to import.
 * @example
 * const app = await connect('https://tools.example.com/', { publicKey: 'ed25519:…' });
 * await app.import('main.ts');
 */
export async function connect(target: string | URL, options: ConnectOptions & LiveOptions = {}): Promise<App> {
  const url = target instanceof URL ? target : parseRemoteTarget(target);
  const configured = options.publicKey && options.token && options.app ? {} : { ...originConfig(url), ...(options.origins ? matchOrigin(options.origins, url) : {}) };
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
  const pollMs = options.pollMs === undefined ? undefined : duration('pollMs', options.pollMs, 0, 100);
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const remote = {
    key,
    store,
    headers,
    ...(app !== undefined ? { app } : {}),
    maxStaleMs: duration('maxStaleMs', options.maxStaleMs, DEFAULT_MAX_STALE_MS, 0),
    timeoutMs: duration('timeoutMs', options.timeoutMs, DEFAULT_SYNC_TIMEOUT_MS, 1),
    ...(options.onRequest ? { onRequest: options.onRequest } : {}),
    ...(options.maps !== undefined ? { maps: sourceMapsMode(options.maps) } : {}),
    // Lazy mode: a start fetches what runs eagerly; a lazily imported graph comes at its first read.
    ...lazyPolicy(options),
    notice,
  };
  // A version that carries its program runs through this process's view of the store: live
  // modules get file: URLs there, and a swap re-points the view at the new version's folder.
  let view: ProgramView | undefined;
  let shown: string | null = null;
  const viewed = (synced: RemoteSource): ModuleSource => {
    const tree = synced.tree;
    if (tree === null) return synced;
    if (!view) {
      try {
        view = store.openView(synced.base, tree);
      } catch (error) {
        if ((error as { code?: string }).code !== ErrorCodes.STORE_UNWRITABLE) throw error;
        // A read-only store: the version's own folder, without a view to re-point (a swap's new files show through new modules only).
        return { ...synced, base: `${pathToFileURL(tree).href}/`, origin: synced.base, ...(carriesPackages(synced.manifest) && options.externalsFrom === undefined ? { externalsFrom: `${pathToFileURL(tree).href}/` } : {}) };
      }
      shown = tree;
    }
    const base = `${pathToFileURL(view.path).href}/`;
    const at = view;
    return {
      ...synced,
      base,
      files: `${pathToFileURL(tree).href}/`,
      origin: synced.base,
      // Packages travelled: they resolve from the version's node_modules; else from where the user said.
      ...(carriesPackages(synced.manifest) && options.externalsFrom === undefined ? { externalsFrom: base } : {}),
      activate: () => {
        const before = shown;
        at.point(tree);
        shown = tree;
        return () => {
          if (before !== null) at.point(before);
          shown = before;
        };
      },
    };
  };
  if (options.revalidate !== undefined && options.revalidate !== 'start' && options.revalidate !== 'background') {
    throw new LivemodError('cli', ErrorCodes.USAGE, `connect option revalidate is ${JSON.stringify(String(options.revalidate)).slice(0, 40)}; it must be "start" or "background"`);
  }
  let synced: RemoteSource | undefined;
  let background = false;
  if (options.revalidate === 'background' && options.offline !== true) {
    // The cached version, verified, without a request; none (or too stale) → the usual sync.
    try {
      synced = await syncRemote(url, { ...remote, offline: true, fetchLater: true, notice: () => {} });
      background = true;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== ErrorCodes.NOT_CACHED && code !== ErrorCodes.TOO_STALE) throw error;
    }
  }
  synced ??= await syncRemote(url, { ...remote, offline: options.offline === true, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
  const source = viewed(synced);
  if (source.externalsFrom !== undefined) replayPackageResolutions(store, synced.tree);
  const registry = new Registry(source, { externalsFrom: folderUrl(options.externalsFrom ?? process.cwd()), lazy: options.lazy ?? 'none', ...(options.eager ? { eager: options.eager } : {}), report: options.loadReport === true });
  let channel: ChannelClient | undefined;
  /** The base the channel speaks for and the routes its host named (a pushed manifest comes without headers). */
  let origin = { base: synced.base, capabilities: synced.capabilities };
  let following: ((url: string) => void) | null = null;
  let poll: NodeJS.Timeout | undefined;
  const live = new Live({
    registry,
    // An update syncs online only: an origin that cannot be reached has nothing newer to give.
    resync: async (pushed) => {
      try {
        // What this process runs is fetched with the new version, so the swap needs no second round trip.
        // A manifest the channel pushed stands in for the manifest request if it verifies; the blobs use the routes the origin last named.
        const sync = (withPush: boolean): ReturnType<typeof syncRemote> => syncRemote(url, { ...remote, offline: false, fallback: false, expectStored: false, commitAfter: options.restartOnUnaccepted !== true, reach: registry.loaded(), ...(withPush && pushed ? { pushed: { base: origin.base, bytes: pushed, capabilities: origin.capabilities } } : {}) });
        let fresh;
        try {
          fresh = await sync(true);
        } catch (error) {
          // Behind a balancer the replica answering the blob request may lag the one that pushed:
          // then the version is had as without a push (the manifest request says what that replica serves).
          if (!pushed || (error as { code?: string }).code !== ErrorCodes.BLOB_UNKNOWN) throw error;
          fresh = await sync(false);
        }
        // The routes the origin names (a 304 names them too): what a later push's blob fetch uses.
        if (fresh.from !== 'offline' && Object.keys(fresh.capabilities).length > 0) origin = { base: fresh.base, capabilities: fresh.capabilities };
        // Started from the cache (background revalidation): the host's channel is known only now.
        if (fresh.capabilities.channel) following?.(fresh.capabilities.channel);
        return viewed(fresh);
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === ErrorCodes.TIMEOUT || code === ErrorCodes.FETCH_FAILED) return null;
        throw error;
      }
    },
    notice,
    ...(options.restartOnUnaccepted ? { restartOnUnaccepted: true } : {}),
    ...(options.logSwaps ? { logSwaps: true } : {}),
    reported: () => channel?.send(statusOf(live)),
  });
  let channelTimer: NodeJS.Timeout | undefined;
  let noChannelTimer: NodeJS.Timeout | undefined;
  const openChannel = (url: string): void => {
    if (channel) return;
    // A channel learnt from an update within the first second: the hint that there is none is not said.
    clearTimeout(noChannelTimer);
    const opening = new ChannelClient({ url, headers: remote.headers, onVersion: (version, hello, manifest) => live.hint(version, hello, manifest), status: () => statusOf(live), log: notice });
    channel = opening;
    // Opened a second after the start, on an unreferenced timer: a program that is done by then
    // (a command-line tool) never pays for loading the WebSocket client and its handshake (10–15 ms
    // of a 400 ms run when it opened after 100 ms); a long-lived one connects then and learns the
    // current version on connecting, so nothing is missed.
    channelTimer = setTimeout(() => opening.start(), 1000);
    channelTimer.unref();
  };
  following = options.live === true && options.offline !== true ? openChannel : null;
  // Revalidation beside the program: the one conditional request, and a swap if it finds a newer version.
  if (background) void live.update().catch((error: unknown) => notice(`[livemod run] revalidating in the background failed (still running cached version ${synced.manifest.version}): ${(error as Error).message}`));
  if (options.live === true && options.offline !== true) {
    if (synced.capabilities.channel) {
      openChannel(synced.capabilities.channel);
    } else if (pollMs === undefined && !background) {
      // Said a second in, as the channel opens: a program done by then (a command-line tool) follows nothing anyway.
      const base = synced.base;
      noChannelTimer = setTimeout(() => notice(`[livemod run] ${base} has no channel (a static host): pass --poll 30s (pollMs) to follow new versions`), 1000);
      noChannelTimer.unref();
    }
    if (pollMs !== undefined) {
      poll = setInterval(() => void live.update({ retryFailed: false }), pollMs);
      poll.unref();
    }
  }
  // Workers and forks of the program's own modules run them from the version running then.
  let manifestHash = synced.manifestHash;
  live.on((record) => {
    if (record.status === 'applied' || record.status === 'unchanged') manifestHash = (registry.source as Partial<RemoteSource>).manifestHash ?? manifestHash;
  });
  const unregister = registerProgram({
    folders: () => [...(view ? [view.path] : []), ...(shown ? [shown] : [])],
    task: (module) => {
      if (!view || manifestHash === null || !Object.hasOwn(registry.source.manifest.modules, module)) return null;
      return { module, spec: { kind: 'remote', store: store.dir, origin: synced.base, manifestHash, publicKey, app: registry.source.manifest.name, batch: synced.capabilities.batch ?? null, headers: remote.headers } };
    },
  });
  const stop = async (): Promise<void> => {
    clearTimeout(channelTimer);
    clearTimeout(noChannelTimer);
    channel?.close();
    clearInterval(poll);
    unregister();
  };
  const refresh = async (): Promise<number> => (await syncRemote(url, { ...remote, offline: false, fallback: false })).manifest.version;
  return makeApp(registry, live, stop, { base: synced.base, from: synced.from, ageMs: synced.ageMs, entry: synced.module ?? synced.manifest.entry, refresh });
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
export async function openFolder(path: string, options: { externalsFrom?: string; lazy?: 'none' | 'normal' | 'all'; eager?: EagerRules; loadReport?: boolean; build?: Partial<BuildOptions>; notice?: (line: string) => void; /** Store folder whose builds/ keeps transforms between runs (default: the user's store). */ cache?: string } & LiveOptions = {}): Promise<App> {
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
  const { builtSource, localSource } = await import('./local.ts');
  // Only what the program reaches is built (and more as it reaches further: import() of an
  // unbuilt module builds it then).
  // Transforms are kept in the store's builds/ folder: a second start transforms nothing.
  const [{ defaultStoreDir, openStore, runPackKey }, { transformCache }] = await Promise.all([import('../store/index.ts'), import('../build/index.ts')]);
  const storeDir = options.cache !== undefined ? resolve(options.cache) : defaultStoreDir();
  const cache = transformCache(join(storeDir, 'builds'));
  // V8's code cache for the built modules, in the same store: the start's run pack (one read for
  // its modules' code cache), else an entry per module. A store that cannot be opened only means none.
  const { startCache } = await import('./start-cache.ts');
  const codeCache = (built: BuildResult): ModuleCodeCache | undefined => {
    if (process.env.LIVEMOD_CODE_CACHE === '0') return undefined;
    try {
      const store = openStore({ dir: storeDir });
      const start = module ?? built.content.entry;
      const modules = built.content.modules;
      const reached = staticClosure({ modules }, start === null ? [] : [start]);
      const code = [...new Set([...reached].map((path) => modules[path]!.blob.hash))];
      const key = runPackKey(code);
      // The local build has the blobs: only the pack's code cache is read, and no blob hashed.
      return startCache(store, store.readRunPack(key, { blobs: false }), key, code, built.content.blobs);
    } catch {
      return undefined;
    }
  };
  // Lazy mode: a lazily imported graph is built at its first read, not at start (build.ts).
  const build = (): ReturnType<typeof localSource> => localSource(root, { reach: module === null ? [] : [module], cache, ...lazyPolicy(options), ...options.build }, codeCache);
  let source = build();
  if (module !== null && !Object.hasOwn(source.manifest.modules, module) && root !== dirname(absolute)) {
    // The package folder leaves the file out (it sits in a dot folder or node_modules): build its own folder.
    root = dirname(absolute);
    module = relative(root, absolute).split(sep).join('/');
    source = build();
  }
  const registry = new Registry(source, { externalsFrom: folderUrl(options.externalsFrom ?? root), lazy: options.lazy ?? 'none', ...(options.eager ? { eager: options.eager } : {}), report: options.loadReport === true });
  const notice = options.notice ?? ((line: string) => process.stderr.write(`${line}\n`));
  // The watcher's last build not swapped to yet: rebuilds coalesce, the last save wins.
  let pending: ReturnType<typeof builtSource> | null = null;
  const live = new Live({
    registry,
    resync: async () => {
      const next = pending;
      pending = null;
      return next;
    },
    notice,
    ...(options.restartOnUnaccepted ? { restartOnUnaccepted: true } : {}),
    ...(options.logSwaps ? { logSwaps: true } : {}),
  });
  let stop = async (): Promise<void> => {};
  if (options.live === true) {
    const { watchFolder } = await import('../build/index.ts');
    const { builder, keyId } = source;
    const watch = watchFolder({
      builder,
      broken: source.build.broken.map((item) => item.path),
      onBuild: (result) => {
        pending = builtSource(builder, result, keyId, Math.max(registry.source.manifest.version, pending?.manifest.version ?? 0));
        void live.update();
      },
      onError: (error) => notice(`[livemod watch] ${(error as Error).message.replace(/^\[livemod \w+\] /, '')} — still running version ${registry.source.manifest.version}`),
    });
    await watch.ready;
    stop = () => watch.close();
  }
  const folder = root;
  const unregister = registerProgram({
    folders: () => [folder],
    // A worker's file is rarely imported, so it may not be built yet: any module file of the folder counts.
    // Not a package's own worker (node_modules) nor a dot folder's: those start natively, as the build leaves them out.
    task: (path) => (/\.(?:ts|tsx|mts|js|jsx|mjs)$/.test(path) && !/\.d\.[mc]?ts$/.test(path) && !path.split('/').some((part) => part === 'node_modules' || part.startsWith('.')) && existsSync(join(folder, ...path.split('/'))) ? { module: path, spec: { kind: 'local', folder } } : null),
  });
  const stopWatch = stop;
  stop = async () => {
    unregister();
    await stopWatch();
  };
  return makeApp(registry, live, stop, { base: source.base, from: 'local', ageMs: 0, entry: module ?? source.manifest.entry });
}

/**
 * The packages a version carries resolve inside their laid-out folder as Node answered on an
 * earlier start, without asking it again (runtime/resolutions.ts).
 */
function replayPackageResolutions(store: Store, tree: string | null): void {
  const signature = resolutionSignature();
  if (tree === null || signature === null) return;
  const record = store.packageResolutions(tree, signature);
  if (record !== null) replayResolutions(record);
}

/**
 * The program of a worker or forked child (children.ts): the module the parent named, from the
 * version the parent ran — read from the store and verified again (remote), or built from the
 * same folder (local). Not live: the parent follows new versions, a child runs the one it got.
 */
export async function openChild(task: ChildTask): Promise<App> {
  const { spec } = task;
  if (spec.kind === 'local') return openFolder(join(spec.folder, ...task.module.split('/')));
  const store = openStore({ dir: spec.store });
  const version = storedVersion(store, { manifestHash: spec.manifestHash, publicKey: parsePublicKey(spec.publicKey), app: spec.app, origin: spec.origin });
  // A view of its own on the version it runs (the parent's is re-pointed by the parent's swaps,
  // and goes when the parent exits); the version's folder itself in a read-only store.
  let folder: string | null = version.tree;
  if (version.tree !== null) {
    try {
      folder = store.openView(spec.origin, version.tree).path;
    } catch {
      folder = version.tree;
    }
  }
  const base = folder === null ? spec.origin : `${pathToFileURL(folder).href}/`;
  const source: ModuleSource = {
    manifest: version.manifest,
    base,
    origin: spec.origin,
    ...(carriesPackages(version.manifest) && folder !== null ? { externalsFrom: base } : {}),
    blob: (hash) => version.blob(hash),
    map: (hash) => version.map(hash),
    // A worker's module is seldom reached from the entry, so the parent may never have fetched it: fetched now, verified, from the same version.
    ensure: async (paths) => {
      const absent = store.missingBlobs(moduleBlobs(version.manifest, paths).map((ref) => ref.hash));
      if (absent.length === 0) return;
      const { fetchBlobs } = await import('../sync/index.ts');
      await fetchBlobs(spec.origin, version.manifest, absent, spec.batch ? { batch: spec.batch } : {}, { headers: spec.headers, timeoutMs: 30_000, deadline: Date.now() + 30_000, onBlob: (hash, bytes) => store.writeBlob(hash, bytes, { verified: true }) });
    },
  };
  if (source.externalsFrom !== undefined) replayPackageResolutions(store, version.tree);
  const registry = new Registry(source, { externalsFrom: folderUrl(process.cwd()) });
  const live = new Live({ registry, resync: async () => null, notice: (line) => process.stderr.write(`${line}\n`) });
  const unregister = registerProgram({
    folders: () => (folder === null ? [] : [folder]),
    task: (module) => (Object.hasOwn(version.manifest.modules, module) ? { module, spec } : null),
  });
  return makeApp(registry, live, async () => unregister(), { base: spec.origin, from: 'parent', ageMs: 0, entry: task.module });
}

// A remote snapshot as a module source: sync (conditional manifest GET, verify, fetch what the
// store lacks in one batch or one multi-range request), then serve blobs from the store.
// Offline — the origin unreachable, or `offline` asked for — the last manifest accepted from
// that origin runs, verified again, and the caller is told its age.
import { ErrorCodes, LivemodError, isLivemodError } from '../errors.ts';
import type { ModuleSource } from '../runtime/index.ts';
import { blobsToRun, carriesProgram, eagerClosure, manifestBlobs, moduleBlobs, openManifest, packagesRange, reopenManifest, staticClosure, sha256Hex, type LazyPolicy, type Manifest, type VerifyKey } from '../snapshot/index.ts';
import { runPackKey, type RunPackEntry, type Store } from '../store/index.ts';
import { startCache } from './start-cache.ts';
import { fetchSync } from './fetch-sync.ts';
import { servedHere } from '../served-here.ts';
import { checkFreshness, fetchBlobs, fetchManifest, type Capabilities, type RequestEvent } from '../sync/index.ts';
import { quoted } from '../text.ts';
import { formatAge } from '../format.ts';
import { candidates, type Candidate } from './targets.ts';

export interface SyncProgress {
  readonly done: number;
  readonly total: number;
  readonly bytes: number;
  readonly totalBytes: number;
}

export interface RemoteOptions {
  readonly key: VerifyKey;
  readonly store: Store;
  readonly headers: Readonly<Record<string, string>>;
  /** Never touch the network. */
  readonly offline: boolean;
  /**
   * With `offline`: start from the cached version without a request, but fetch what it never
   * fetched when it is needed (an import() graph): background revalidation, not --offline.
   */
  readonly fetchLater?: boolean;
  /** Run a cached version (offline fallback) only if its origin confirmed it within this many ms; 0: never. */
  readonly maxStaleMs: number;
  /** One deadline for the whole sync, every request in it. */
  readonly timeoutMs: number;
  /**
   * The stored version is the likely answer (a start; default true): it is verified while the
   * manifest request is out. An update, which expects a newer one, passes false.
   */
  readonly expectStored?: boolean;
  /** Run the cached version when the origin cannot be reached (default true); false: throw instead (an update has nothing to swap to then). */
  readonly fallback?: boolean;
  /**
   * Commit the new manifest to the store after returning, not before: a live update swaps the
   * verified blobs it holds in memory first, and the store's fsyncs (12 ms here) happen while
   * the new code already runs. A crash in between only means the next start syncs it again.
   */
  readonly commitAfter?: boolean;
  /** Modules to fetch besides what the start reaches (an update: the modules the process runs). */
  readonly reach?: readonly string[];
  /**
   * The registry's lazy policy: a start fetches what its roots reach through imports the policy
   * does not make lazy; a lazily imported graph is fetched at its first read (ensureSync).
   */
  readonly lazy?: LazyPolicy;
  /**
   * When source maps are fetched: `first-use` (the default), when a stack first needs one (every
   * map of the modules fetched so far, in one batch, while the stack waits); `start`, with the
   * code. A client whose origin may be a server of its own process takes them at start.
   */
  readonly maps?: 'first-use' | 'start';
  /** The app the manifest must name (pinned by the user); else the one the store accepted from the origin, if any. */
  readonly app?: string;
  /**
   * A signed manifest the origin's channel pushed with an announcement (protocol.md, "The
   * channel"), and the routes the origin named at the last manifest request. For that base it
   * stands in for the manifest request when it verifies as a fetched one would (signature, app,
   * expiry, no rollback) and is newer than the version stored; else the manifest is fetched.
   */
  readonly pushed?: { readonly base: string; readonly bytes: Buffer; readonly capabilities: Capabilities };
  readonly onRequest?: (event: RequestEvent) => void;
  readonly onProgress?: (progress: SyncProgress) => void;
  /** One-line notices for the user (offline fallback, refetched blobs). */
  readonly notice: (line: string) => void;
  readonly now?: () => number;
}

export type SyncedFrom = 'network' | 'not-modified' | 'offline';

/** The offline fallback runs a cached version only if its origin confirmed it within a week. */
export const DEFAULT_MAX_STALE_MS: number = 7 * 24 * 3600 * 1000;
/** One sync, every request in it, ends within this by default. */
export const DEFAULT_SYNC_TIMEOUT_MS = 30_000;

export interface RemoteSource extends ModuleSource {
  readonly from: SyncedFrom;
  /** Module named in the target URL, or null for the manifest's entry. */
  readonly module: string | null;
  /** How long ago the manifest was last confirmed by its origin (0 when just now). */
  readonly ageMs: number;
  readonly capabilities: Capabilities;
  /**
   * The version's folder in the store (its files and node_modules, see store/program.ts), or null
   * when the manifest carries no program or the store could not lay it out (read-only).
   */
  readonly tree: string | null;
  /** sha256 of the signed manifest's bytes, kept in the store as a blob: a worker or child opens this exact version by it. */
  readonly manifestHash: string | null;
}

/** HTTP statuses that say a gateway could not reach the origin: the same as no connection. */
const GATEWAY_DOWN = new Set([502, 503, 504]);

function httpStatus(error: LivemodError): number | undefined {
  const status = error.details.status;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Errors that mean "the origin cannot be reached now", after which the cache may run: no
 * connection, a timeout, or a gateway saying the origin is down. Any other answer is the
 * origin speaking, and whatever code its body claims, it does not get to pick the fallback.
 */
function unreachable(error: unknown): boolean {
  if (!isLivemodError(error)) return false;
  const status = httpStatus(error);
  if (error.code === ErrorCodes.TIMEOUT) return status === undefined;
  if (error.code === ErrorCodes.FETCH_FAILED) return status === undefined || GATEWAY_DOWN.has(status);
  return status !== undefined && GATEWAY_DOWN.has(status);
}

/** How the origin failed, for the fallback's notice: the code, and the gateway's status if one answered. */
function failure(error: LivemodError): string {
  const status = httpStatus(error);
  return status === undefined ? error.code : `${error.code}, answered ${status}`;
}

/** A 404 for the manifest: no snapshot at this candidate base, try the next one. */
function noManifestHere(error: unknown): boolean {
  return isLivemodError(error) && httpStatus(error) === 404;
}

/**
 * The ETag to revalidate with, only while it still belongs to the stored bytes: the state file
 * is not signed, so a cache holding an older signed manifest beside the newer one's ETag would
 * otherwise get a 304 and run the older one. A livemod server's ETag is the sha256 of the bytes
 * themselves; any other host's is trusted only with the stored hash of the bytes it came with.
 */
function boundEtag(stored: Stored): string | null {
  const { etag, manifestHash } = stored.state;
  if (!etag) return null;
  // The store hands out only bytes that hash to the state's manifestHash (origins.ts checks it).
  const content = /^"([0-9a-f]{64})"$/.exec(etag);
  return !content || content[1] === manifestHash ? etag : null;
}

/**
 * The stored manifest opened with the pinned key: its signature checked, unless the store knows
 * these very bytes as opened with that key by an earlier start (origins.ts), then re-opened.
 */
/**
 * What the confirmation records of the stored manifest this start opened: the file, the key,
 * and where its packages value lies (found once, the first time, by walking its bytes: 1-2 ms;
 * a manifest without one, of modules alone, is not walked at every start to find none).
 */
function openedRecord(stored: Stored, manifest: Manifest, key: VerifyKey, base: string): { key: string; identity: string; packages: readonly [number, number] | null } {
  const known = stored.openedWith === key.publicKeyString ? stored.packagesAt : null;
  // `in`, not a read: a re-opened manifest's packages are a getter that would parse them.
  const packages = known ?? ('packages' in manifest ? packagesRange(stored.manifestBytes, `the cache (${base})`) : null);
  return { key: key.publicKeyString, identity: stored.identity!, packages };
}

function openStored(stored: Stored, key: VerifyKey, base: string): Manifest {
  const source = `the cache (${base})`;
  if (stored.openedWith === key.publicKeyString) {
    try {
      return reopenManifest(stored.manifestBytes, key, source, stored.packagesAt);
    } catch {
      // Bytes that opened before and no longer parse were damaged without their file changing
      // (the disk): the full check says what is wrong with them.
    }
  }
  return openManifest(stored.manifestBytes, key, source);
}

interface Chosen {
  readonly candidate: Candidate;
  readonly manifest: Manifest;
  readonly from: SyncedFrom;
  readonly ageMs: number;
  readonly capabilities: Capabilities;
  /** The origin's record as this sync found it, for a fallback if the network fails later. */
  readonly stored: Stored | null;
  readonly commit?: { bytes: Buffer; etag: string | null };
}

type Stored = NonNullable<ReturnType<Store['readOrigin']>>;

/** What every request of one sync shares: headers, the one deadline, the request log. */
interface Transfer {
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly deadline: number;
  readonly onRequest?: (event: RequestEvent) => void;
}

function wrongApp(base: string, pinned: string, recorded: string): LivemodError {
  return new LivemodError('sync', ErrorCodes.WRONG_APP, `--app pins ${quoted(pinned)} for ${base}, but the cache accepted app ${quoted(recorded)} from there; refused: check the URL and the pin (if the publisher really moved app ${quoted(pinned)} there, run \`livemod cache forget ${base}\` first)`, { origin: base, name: recorded, expected: pinned });
}

/** The app a manifest from this origin must name: the one pinned, else the one the store accepted there. */
function expectedApp(candidate: Candidate, options: RemoteOptions, stored: Stored | null): string | undefined {
  const recorded = stored?.state.name ?? undefined;
  if (options.app !== undefined && recorded !== undefined && recorded !== options.app) throw wrongApp(candidate.base, options.app, recorded);
  return options.app ?? recorded;
}

/**
 * The stored manifest opened (signature, structure) while a conditional request for it is out:
 * its answer (on loopback, 8 ms of a warm start that were idle) comes meanwhile. One turn of the
 * event loop first, so the request is connected and written before the thread is busy. Returns
 * what openManifest would: the manifest, or its error thrown when it is asked for.
 */
async function openWhileAsking(stored: Stored, key: VerifyKey, base: string): Promise<() => Manifest> {
  await new Promise((resolve) => setImmediate(resolve));
  try {
    const manifest = openStored(stored, key, base);
    return () => manifest;
  } catch (error) {
    return () => {
      throw error;
    };
  }
}

function fromCache(candidate: Candidate, options: RemoteOptions, why: string, stored: Stored | null, opened?: () => Manifest): Chosen | null {
  if (!stored) return null;
  const now = options.now?.() ?? Date.now();
  const ageMs = Math.max(0, now - stored.state.checkedAt);
  if (options.maxStaleMs === 0) {
    throw new LivemodError('sync', ErrorCodes.TOO_STALE, `${why}, and --max-stale 0 never runs a version its origin has not just confirmed; reconnect, or allow cached code with --max-stale (e.g. 1d)`, { origin: candidate.base, ageMs });
  }
  if (ageMs > options.maxStaleMs) {
    throw new LivemodError('sync', ErrorCodes.TOO_STALE, `${why}, and the cached version of ${candidate.base} was last confirmed ${formatAge(ageMs)} ago, longer than the ${formatAge(options.maxStaleMs)} --max-stale allows; reconnect, or raise --max-stale`, { origin: candidate.base, ageMs, maxStaleMs: options.maxStaleMs });
  }
  const manifest = opened ? opened() : openStored(stored, options.key, candidate.base);
  const app = expectedApp(candidate, options, stored);
  if (app !== undefined && manifest.name !== app) {
    throw new LivemodError('sync', ErrorCodes.WRONG_APP, `${why}, and the cached snapshot of ${candidate.base} is of app ${quoted(manifest.name)}, not of app ${quoted(app)}; refused`, { origin: candidate.base, name: manifest.name, expected: app });
  }
  options.notice(`[livemod sync] ${why}: running cached version ${manifest.version} of ${candidate.base}, last confirmed ${formatAge(ageMs)} ago${Date.parse(manifest.expires) < now ? ' (its signature has expired since)' : ''}`);
  return { candidate, manifest, from: 'offline', ageMs, capabilities: {}, stored };
}

/**
 * The manifest the channel pushed, for its base (`candidate`), as a fetched one: verified the same
 * way, and used only when it is newer than the stored version of that base and the origin's routes are known. A push
 * that fails a check is said once and the manifest is fetched instead: the channel is a hint.
 */
function fromPush(candidate: Candidate, options: RemoteOptions, stored: Stored | null, app: string | undefined): Chosen | null {
  const pushed = options.pushed;
  if (!pushed || !stored || Object.keys(pushed.capabilities).length === 0) return null;
  const source = `the channel of ${candidate.base}`;
  let manifest: Manifest;
  try {
    manifest = openManifest(pushed.bytes, options.key, source);
    checkFreshness(manifest, source, { now: options.now?.() ?? Date.now(), minVersion: stored.state.version, ...(app !== undefined ? { app } : {}) });
  } catch (error) {
    options.notice(`[livemod channel] the manifest pushed with an announcement was refused (${(error as Error).message.replace(/^\[livemod \w+\] /, '')}); fetching it instead`);
    return null;
  }
  if (manifest.version <= stored.state.version) return null;
  // A livemod server's ETag is the quoted sha256 of the manifest's bytes: the next request revalidates with it.
  return { candidate, manifest, from: 'network', ageMs: 0, capabilities: pushed.capabilities, stored, commit: { bytes: pushed.bytes, etag: `"${sha256Hex(pushed.bytes)}"` } };
}

async function choose(list: readonly Candidate[], options: RemoteOptions, transfer: Transfer): Promise<Chosen> {
  if (options.offline) {
    for (const candidate of list) {
      const cached = fromCache(candidate, options, 'offline (--offline)', options.store.readOrigin(candidate.base));
      if (cached) return cached;
    }
    throw new LivemodError('sync', ErrorCodes.NOT_CACHED, `--offline, but nothing from ${list[0]!.base} is in the cache (${options.store.dir}); run once online first`, { origin: list[0]!.base });
  }
  // A manifest the channel pushed is for the base the client follows: taken before any request (the deeper bases of a module URL included).
  const pushedFor = options.pushed ? list.find((candidate) => candidate.base === options.pushed!.base) : undefined;
  if (pushedFor) {
    const stored = options.store.readOrigin(pushedFor.base);
    const chosen = fromPush(pushedFor, options, stored, expectedApp(pushedFor, options, stored));
    if (chosen) return chosen;
  }
  let lastNotFound: unknown;
  for (const candidate of list) {
    const stored = options.store.readOrigin(candidate.base);
    const app = expectedApp(candidate, options, stored);
    const etag = stored ? boundEtag(stored) : null;
    const answer = fetchManifest(candidate.base, {
      key: options.key,
      etag,
      unchangedLikely: options.expectStored !== false,
      ...transfer,
      ...(stored ? { minVersion: stored.state.version } : {}),
      ...(app !== undefined ? { app } : {}),
    });
    // Awaited below; a failure that comes while the stored manifest is verified is not unhandled meanwhile.
    answer.catch(() => {});
    // The stored manifest is verified while the request is out: a start most often gets a 304 and runs it.
    const opened = stored && etag !== null && options.expectStored !== false ? await openWhileAsking(stored, options.key, candidate.base) : undefined;
    let result;
    try {
      result = await answer;
    } catch (error) {
      if (noManifestHere(error)) {
        lastNotFound = error;
        continue;
      }
      if (unreachable(error) && options.fallback !== false) {
        const cached = fromCache(candidate, options, `${candidate.base} is unreachable (${failure(error as LivemodError)})`, stored, opened);
        if (cached) return cached;
      }
      throw error;
    }
    const now = options.now?.() ?? Date.now();
    if (result.status === 'not-modified') {
      if (!stored) throw new LivemodError('sync', ErrorCodes.PROTOCOL, `${candidate.base} answered 304 to a request without If-None-Match`, { origin: candidate.base });
      const manifest = opened ? opened() : openStored(stored, options.key, candidate.base);
      checkFreshness(manifest, candidate.base, { now, minVersion: stored.state.version, ...(app !== undefined ? { app } : {}) });
      try {
        options.store.touchOrigin(candidate.base, { checkedAt: now, read: stored.state, ...(stored.identity ? { opened: openedRecord(stored, manifest, options.key, candidate.base) } : {}) });
      } catch (error) {
        // A read-only shared cache cannot record the check; the version confirmed is what runs.
        if (!isLivemodError(error) || error.code !== ErrorCodes.STORE_UNWRITABLE) throw error;
      }
      return { candidate, manifest, from: 'not-modified', ageMs: 0, capabilities: result.capabilities, stored };
    }
    return { candidate, manifest: result.manifest, from: 'network', ageMs: 0, capabilities: result.capabilities, stored, commit: { bytes: result.bytes, etag: result.etag } };
  }
  throw lastNotFound;
}

/**
 * Every code blob, verified: the ones this sync fetched (verified on arrival) as they are, the
 * rest read from the store, which re-hashes them; a missing or corrupt one is counted for a refetch.
 */
function readVerified(store: Store, hashes: readonly string[], fetched: ReadonlyMap<string, Buffer>, pack: ReadonlyMap<string, RunPackEntry> | null = null): { blobs: Map<string, Buffer>; bad: string[] } {
  const blobs = new Map<string, Buffer>();
  const bad: string[] = [];
  for (const hash of hashes) {
    // A run pack's blobs were re-hashed as it was read.
    const bytes = fetched.get(hash) ?? pack?.get(hash)?.blob ?? store.readBlob(hash);
    if (bytes) blobs.set(hash, bytes);
    else bad.push(hash);
  }
  return { blobs, bad };
}

/** Store errors at commit time that another process explains, and how they are answered. */
function commitConflict(error: unknown): 'newer' | 'incomplete' | null {
  if (!isLivemodError(error)) return null;
  if (error.code === ErrorCodes.ROLLBACK) return 'newer';
  if (error.code === ErrorCodes.STORE_INCOMPLETE) return 'incomplete';
  return null;
}

/** The chosen manifest's blobs, fetched where missing and verified, committed: the module source. */
async function materialise(chosen: Chosen, options: RemoteOptions, transfer: Transfer): Promise<RemoteSource> {
  const { manifest, candidate } = chosen;
  const { store } = options;
  // Only what runs: the modules the start reaches statically (the module named, else the entry,
  // and what this process runs already when it is an update), their maps, and the program's
  // files and packages. Every import() graph is fetched in one batch when it is first needed
  // (`ensure`, below). A new manifest plans its fetch (missingBlobs also marks present blobs in
  // use for prune); one the store committed before (304, offline) reads its code verified
  // below, and what it never fetched, or lost, is fetched then.
  const start = candidate.module ?? manifest.entry;
  const roots = [...(start === null ? [] : [start]), ...(options.reach ?? [])];
  // Lazy graphs wait for their first read, which fetches them while it waits; not when the origin
  // may be a server of this process, which could not answer a thread that waits (served-here.ts).
  const fetchAtRead = options.lazy !== undefined && options.lazy.lazy !== 'none' && !servedHere(candidate.base);
  const reached = fetchAtRead ? eagerClosure(manifest, roots, options.lazy!) : staticClosure(manifest, roots);
  // Source maps come when a stack first needs one (half the blobs of a start are maps), or with the code.
  const mapsAtStart = options.maps === 'start' || servedHere(candidate.base);
  // Needed only by a new manifest (its fetch and commit): a start of a stored one, with a
  // program of 1,700 package files, skips this list and the two below (~2 ms).
  let wantedList: string[] | null = null;
  const wanted = (): string[] => (wantedList ??= blobsToRun(manifest, reached, { maps: mapsAtStart }).map((ref) => ref.hash));
  const missing = chosen.from === 'network' ? store.missingBlobs(wanted()) : [];
  const code = [...new Set([...reached].map((path) => manifest.modules[path]!.blob.hash))];

  // A 304 carries no capability headers; when blobs are missing after one (the cache lost some),
  // one unconditional manifest request tells whether the host has a batch route.
  let known: Capabilities | undefined = chosen.from === 'network' ? chosen.capabilities : undefined;
  const capabilities = async (): Promise<Capabilities> => {
    if (known) return known;
    const fresh = await fetchManifest(candidate.base, { key: options.key, ...transfer, minVersion: manifest.version, app: manifest.name });
    known = fresh.status === 'ok' ? fresh.capabilities : {};
    return known;
  };

  const fetched = new Map<string, Buffer>();
  const fetchedFiles = new Set<string>();
  // Which fetched blobs are module code (kept in memory, packed) and which are files: made at the first fetch.
  let kinds: { moduleHashes: Set<string>; fileHashes: Set<string>; sizes: Map<string, number> } | null = null;
  const blobKinds = (): NonNullable<typeof kinds> =>
    (kinds ??= {
      moduleHashes: new Set(moduleBlobs(manifest, Object.keys(manifest.modules)).map((ref) => ref.hash)),
      fileHashes: new Set(blobsToRun(manifest, []).map((ref) => ref.hash)),
      sizes: new Map(manifestBlobs(manifest).map((ref) => [ref.hash, ref.size])),
    });
  /** The modules this process has fetched or asked for, whose maps a stack may need. */
  const running = new Set(reached);
  const refuseOffline = (hashes: readonly string[], what: string): void => {
    if (chosen.from === 'offline' && (options.offline && !options.fetchLater)) {
      throw new LivemodError('sync', ErrorCodes.NOT_CACHED, `running offline, but ${what} of cached version ${manifest.version} ${what.startsWith('module') || hashes.length === 1 ? 'is' : 'are'} not in the cache (${store.dir}): never fetched, since no run online needed it yet; run once online`, { missing: hashes.length });
    }
  };
  // What of `paths` was never fetched, and how to name it in a message.
  const notFetched = (paths: readonly string[]): { hashes: string[]; what: string } => {
    for (const path of paths) running.add(path);
    const needed = moduleBlobs(manifest, paths, { maps: mapsAtStart }).filter((ref) => !blobs.has(ref.hash) && !fetched.has(ref.hash)).map((ref) => ref.hash);
    const hashes = store.missingBlobs(needed);
    const names = paths.filter((path) => hashes.includes(manifest.modules[path]!.blob.hash));
    return { hashes, what: names.length > 0 ? `module ${quoted(names[0]!)}${names.length > 1 ? ` (and ${names.length - 1} more)` : ''}` : `${hashes.length} blob(s)` };
  };
  const fetch = async (hashes: string[], during: Transfer = transfer, what = `${hashes.length} blob(s)`): Promise<void> => {
    if (hashes.length === 0) return;
    refuseOffline(hashes, what);
    const { moduleHashes, fileHashes, sizes } = blobKinds();
    const totalBytes = hashes.reduce((sum, hash) => sum + (sizes.get(hash) ?? 0), 0);
    let done = 0;
    let bytes = 0;
    options.onProgress?.({ done, total: hashes.length, bytes, totalBytes });
    // Module code and maps arrive into one pack (store/packs.ts), written when the fetch ends,
    // however it ends (a sync cut short keeps what it got), and each second before that (a sync
    // killed on a slow link keeps most of it); the program's files are blob files at once, which
    // version folders hard-link.
    let packed = new Map<string, Buffer>();
    const flush = (): void => {
      if (packed.size === 0) return;
      const batch = packed;
      packed = new Map();
      try {
        store.writeBlobs(batch);
      } catch (error) {
        // Kept for the next write (the final one reports a failure).
        for (const [hash, blob] of batch) packed.set(hash, blob);
        throw error;
      }
    };
    const flushing = setInterval(() => {
      try {
        flush();
      } catch {
        // Written again at the end, where a failure is reported.
      }
    }, 1000);
    flushing.unref();
    let failure: { error: unknown } | null = null;
    try {
      await fetchBlobs(candidate.base, manifest, hashes, await capabilities(), {
        ...during,
        onBlob: (hash, blob) => {
          if (moduleHashes.has(hash) && !fileHashes.has(hash)) packed.set(hash, blob);
          // Every caller fetches what missingBlobs listed; fetchBlobs hands over only blobs it verified.
          else store.writeBlob(hash, blob, { absent: true, verified: true });
          // Module code and maps are kept for this process; files and package files only as verified hashes (layout links them).
          if (moduleHashes.has(hash)) fetched.set(hash, blob);
          else fetchedFiles.add(hash);
          done += 1;
          bytes += blob.byteLength;
          options.onProgress?.({ done, total: hashes.length, bytes, totalBytes });
        },
      });
    } catch (error) {
      failure = { error };
    }
    clearInterval(flushing);
    try {
      flush();
    } catch (error) {
      // The fetch's own error says more; this one would hide it.
      if (failure === null) throw error;
    }
    if (failure !== null) throw failure.error;
  };

  const commit = async (input: { bytes: Buffer; etag: string | null }): Promise<void> => {
    for (let attempt = 1; ; attempt += 1) {
      try {
        store.commitManifest(candidate.base, { bytes: input.bytes, manifest, etag: input.etag, needed: wanted() });
        return;
      } catch (error) {
        const conflict = commitConflict(error);
        // Another process committed a newer version meanwhile: this one still verified, so it runs; the store keeps the newer.
        if (conflict === 'newer') return;
        // A prune in another process removed blobs between our fetch and commit: fetch them again, once.
        if (conflict !== 'incomplete' || attempt > 1) throw error;
        await fetch(store.missingBlobs(wanted()));
      }
    }
  };

  await fetch(missing);
  store.takeEvents();
  // A start of a version the store ran before reads its modules and their code cache in one file.
  // Keyed by the blobs it holds, not the manifest: a re-signed or otherwise changed manifest whose reached modules are the same keeps it.
  const packKey = process.env.LIVEMOD_CODE_CACHE !== '0' ? runPackKey(code) : null;
  const pack = packKey !== null && chosen.from !== 'network' ? store.readRunPack(packKey) : null;
  let { blobs, bad } = readVerified(store, code, fetched, pack);
  if (bad.length > 0) {
    // A blob that failed its check was removed and recorded; one that is absent was never fetched (a start that reached less).
    const damaged = store.takeEvents().filter((event) => event.type === 'blob-removed').length;
    if (damaged > 0) options.notice(`[livemod store] ${damaged} cached blob(s) failed their hash check (and were removed); refetching them`);
    await fetch(bad);
    ({ blobs, bad } = readVerified(store, code, fetched));
    if (bad.length > 0) throw new LivemodError('store', ErrorCodes.HASH_MISMATCH, `blob ${bad[0]} still fails its hash check after a refetch; the cache at ${store.dir} cannot be trusted: run \`livemod cache verify\``, { hash: bad[0] });
  }
  let tree: string | null = null;
  if (carriesProgram(manifest)) {
    for (let attempt = 1; ; attempt += 1) {
      try {
        // A stored manifest (304, offline) was committed with its folder ids: not hashed from its file lists again.
        tree = store.layoutProgram(manifest, new Set([...fetched.keys(), ...fetchedFiles]), chosen.from === 'network' ? null : (chosen.stored?.state.layout ?? null));
        break;
      } catch (error) {
        if (isLivemodError(error) && error.code === ErrorCodes.STORE_UNWRITABLE) {
          options.notice(`[livemod store] cannot lay out version ${manifest.version}'s files in the read-only store at ${store.dir}: its modules run from ${candidate.base}, and file idioms (import.meta.dirname, reading files beside a module, packages) need a writable store (LIVEMOD_CACHE)`);
          break;
        }
        if (!isLivemodError(error) || error.code !== ErrorCodes.STORE_INCOMPLETE || attempt > 1) throw error;
        const lost = (error.details.missing as string[]) ?? [];
        if (chosen.from !== 'offline') options.notice(`[livemod store] ${lost.length} cached file blob(s) were missing or failed their hash check; refetching them`);
        await fetch(lost);
      }
    }
  }
  // The signed bytes, kept as a blob: children of the program open this very version (and verify it again).
  const manifestBytes = chosen.commit?.bytes ?? chosen.stored?.manifestBytes ?? null;
  let manifestHash: string | null = null;
  if (manifestBytes) {
    // A stored record's bytes were hashed as they were read (the store matched them to its state).
    const hash = !chosen.commit && chosen.stored ? chosen.stored.state.manifestHash : sha256Hex(manifestBytes);
    try {
      if (!store.hasBlob(hash)) store.writeBlob(hash, manifestBytes);
      manifestHash = hash;
    } catch (error) {
      if (!isLivemodError(error)) throw error;
    }
  }
  if (chosen.commit) {
    const input = chosen.commit;
    if (options.commitAfter) {
      setImmediate(() => {
        commit(input).catch((error: unknown) => options.notice(`[livemod store] version ${manifest.version} runs but could not be saved to the cache: ${(error as Error).message}`));
      });
    } else {
      await commit(input);
    }
  }

  // V8's code cache beside the blobs: a warm start deserialises instead of compiling (LIVEMOD_CODE_CACHE=0: off).
  const codeCache = process.env.LIVEMOD_CODE_CACHE === '0' ? undefined : startCache(store, pack, packKey, code, blobs);
  // A graph fetched after the start (an import() or a lazy first read) keeps its code cache as one run pack too.
  const grown = (paths: readonly string[]): void => {
    codeCache?.grow?.([...new Set(paths.map((path) => manifest.modules[path]!.blob.hash))], { get: (hash) => blobs.get(hash) ?? fetched.get(hash) ?? store.readBlob(hash) ?? undefined });
  };
  // Blobs of `paths` fetched while this thread waits (fetch-sync.ts).
  const fetchNow = (paths: readonly string[], hashes: string[]): void => {
    fetchSync({
      base: candidate.base,
      manifest: { ...manifest, modules: Object.fromEntries(paths.map((path) => [path, manifest.modules[path]!])) },
      hashes,
      capabilities: known ?? null,
      publicKey: options.key.publicKeyString,
      headers: transfer.headers,
      timeoutMs: transfer.timeoutMs,
      storeDir: store.dir,
    });
  };
  // A lazily imported graph at its first read: the same batch as ensure's, fetched while the read waits.
  const ensureSync = (paths: readonly string[]): void => {
    const { hashes, what } = notFetched(paths);
    grown(paths);
    if (hashes.length === 0) return;
    refuseOffline(hashes, what);
    try {
      fetchNow(paths, hashes);
    } catch (error) {
      // The origin did not answer: the stack of the read's error (and any until a fetch succeeds) does not wait for it again for maps.
      mapsPaused = true;
      throw error;
    }
    mapsPaused = false;
  };
  // A map a stack needs and the start did not fetch: every missing map of the modules fetched so
  // far comes in one batch, while the stack waits. Offline, or once such a fetch failed, the stack stays unmapped.
  let mapsFailed = mapsAtStart || (chosen.from === 'offline' && options.offline && !options.fetchLater);
  let mapsPaused = false;
  const fetchMaps = (): void => {
    if (mapsFailed || mapsPaused) return;
    const paths = [...running].filter((path) => manifest.modules[path]?.map);
    const hashes = store.missingBlobs(moduleBlobs(manifest, paths, { code: false }).map((ref) => ref.hash));
    if (hashes.length === 0) return;
    try {
      fetchNow(paths, hashes);
    } catch (error) {
      mapsFailed = true;
      options.notice(`[livemod sync] source maps could not be fetched (${(error as Error).message.replace(/^\[livemod \w+\] /, '')}); stacks show the compiled code's lines`);
    }
  };
  return {
    manifest,
    base: candidate.base,
    module: candidate.module,
    from: chosen.from,
    ageMs: chosen.ageMs,
    capabilities: chosen.capabilities,
    tree,
    manifestHash,
    ...(codeCache ? { codeCache } : {}),
    async ensure(paths) {
      // An import() graph (or a module imported by path) not fetched yet: its code and maps in one batch, under a deadline of its own.
      // The files and packages were laid out at the start: only the modules' code and maps can be missing.
      const { hashes, what } = notFetched(paths);
      await fetch(hashes, { ...transfer, deadline: Date.now() + transfer.timeoutMs }, what);
      grown(paths);
    },
    // Lazily imported graphs (lazy mode) and the live modules a CommonJS file requires wait for it;
    // not when the origin may be a server of this process, which could not answer a thread that waits.
    ...(servedHere(candidate.base) ? {} : { ensureSync }),
    blob(hash) {
      const bytes = blobs.get(hash) ?? store.readBlob(hash);
      if (!bytes) throw new LivemodError('store', ErrorCodes.HASH_MISMATCH, `blob ${hash} is missing or corrupt in the cache at ${store.dir}; run again to refetch it`, { hash });
      return bytes;
    },
    map(hash) {
      const stored = store.readBlob(hash);
      if (stored) return stored.toString('utf8');
      fetchMaps();
      return store.readBlob(hash)?.toString('utf8') ?? null;
    },
  };
}

/**
 * A version already in the store, opened without the network for a worker or forked child of
 * the program running it: the manifest blob verified with the publisher's key again, its app
 * checked, every blob re-hashed as it is read.
 */
export function storedVersion(store: Store, spec: { manifestHash: string; publicKey: VerifyKey; app: string; origin: string }): { manifest: Manifest; tree: string | null; blob(hash: string): Buffer; map(hash: string): string | null } {
  const bytes = store.readBlob(spec.manifestHash);
  if (!bytes) throw new LivemodError('store', ErrorCodes.NOT_CACHED, `the version of ${spec.origin} the parent process runs is no longer in the cache at ${store.dir} (pruned?); start the program again`, { origin: spec.origin });
  const manifest = openManifest(bytes, spec.publicKey, `the cache (${spec.origin})`);
  if (manifest.name !== spec.app) throw new LivemodError('sync', ErrorCodes.WRONG_APP, `the cached manifest ${spec.manifestHash.slice(0, 12)} is of app ${quoted(manifest.name)}, not ${quoted(spec.app)}; refused`, { origin: spec.origin });
  return {
    manifest,
    tree: carriesProgram(manifest) ? store.layoutProgram(manifest) : null,
    blob(hash) {
      const blob = store.readBlob(hash);
      if (!blob) throw new LivemodError('store', ErrorCodes.HASH_MISMATCH, `blob ${hash} is missing or corrupt in the cache at ${store.dir}; start the program again to refetch it`, { hash });
      return blob;
    },
    map(hash) {
      return store.readBlob(hash)?.toString('utf8') ?? null;
    },
  };
}

/**
 * Syncs `url` through the store. One deadline (`timeoutMs`) covers every request the sync makes;
 * when the origin stops answering — before the manifest, or after it while blobs are fetched —
 * the last version accepted from it runs instead, within `maxStaleMs` of its last confirmation.
 */
export async function syncRemote(url: URL, options: RemoteOptions): Promise<RemoteSource> {
  const transfer: Transfer = {
    headers: options.headers,
    timeoutMs: options.timeoutMs,
    deadline: Date.now() + options.timeoutMs,
    ...(options.onRequest ? { onRequest: options.onRequest } : {}),
  };
  const chosen = await choose(candidates(url), options, transfer);
  try {
    return await materialise(chosen, options, transfer);
  } catch (error) {
    if (chosen.from !== 'network' || !unreachable(error) || options.fallback === false) throw error;
    const cached = fromCache(chosen.candidate, options, `${chosen.candidate.base} stopped answering while version ${chosen.manifest.version} was fetched (${failure(error as LivemodError)})`, chosen.stored);
    if (!cached) throw error;
    return materialise(cached, options, transfer);
  }
}

// A snapshot: one signed manifest plus every blob it references, held in memory.
// The server serves it; `publish` writes it to disk; tests make them directly.
import type { PublisherKey } from './keys.ts';
import { MANIFEST_SCHEMA, MODULE_FORMAT, appNameProblem, type Manifest, type ModuleRecord } from './manifest.ts';
import { sealManifest, type SealedManifest } from './seal.ts';

export interface Snapshot {
  readonly manifest: Manifest;
  readonly sealed: SealedManifest;
  /** hash → bytes, for every blob (code and source maps) the manifest references. */
  readonly blobs: ReadonlyMap<string, Buffer>;
}

export interface SnapshotContent {
  /** The app's name (the builder takes it from package.json or the folder); SignOptions.name overrides it. */
  readonly name?: string;
  readonly modules: Readonly<Record<string, ModuleRecord>>;
  readonly entry: string | null;
  readonly blobs: ReadonlyMap<string, Buffer>;
  readonly pack?: Manifest['pack'];
  /** What travels besides the modules (see Manifest): the folder's files and its npm packages. */
  readonly files?: Manifest['files'];
  readonly packages?: Manifest['packages'];
  readonly layout?: Manifest['layout'];
  readonly links?: Manifest['links'];
  readonly externals?: Manifest['externals'];
}

export interface SignOptions {
  /** The app name the manifest binds to (default: the content's). */
  readonly name?: string;
  /** Last version this publisher issued; the new one is strictly greater. */
  readonly previousVersion?: number;
  /** Force a version (must still exceed previousVersion). */
  readonly version?: number;
  /** How long clients may trust the manifest, in ms. */
  readonly ttlMs?: number;
  readonly now?: number;
}

/** How long a published (static) manifest may be trusted: clients refuse it past that (freeze). */
export const DEFAULT_TTL_MS: number = 30 * 24 * 3600 * 1000;
/**
 * `livemod serve` re-signs at half-life, so its manifests can be short-lived at no cost: a day
 * bounds how long a replayed old manifest can fool a client that has no version floor yet.
 */
export const DEFAULT_SERVE_TTL_MS: number = 24 * 3600 * 1000;

/**
 * Versions are wall-clock milliseconds, bumped past the previous version: strictly increasing
 * per publisher across restarts, and comparable between two servers of one publisher.
 */
export function nextVersion(previous: number | undefined, now: number = Date.now()): number {
  return Math.max(Math.floor(now), (previous ?? 0) + 1);
}

export function signSnapshot(content: SnapshotContent, key: PublisherKey, options: SignOptions = {}): Snapshot {
  const manifest = snapshotManifest(content, key.keyId, options);
  return { manifest, sealed: sealManifest(manifest, key), blobs: content.blobs };
}

function sortedKeys<T>(record: Readonly<Record<string, T>>): Record<string, T> {
  const sorted: Record<string, T> = {};
  for (const key of Object.keys(record).sort()) sorted[key] = record[key]!;
  return sorted;
}

/**
 * The manifest of a snapshot, unsigned: what a local run needs (nothing verifies it there, and
 * signing a 2,000-module manifest on every save costs more than the rebuild).
 */
export function snapshotManifest(content: SnapshotContent, keyId: string, options: SignOptions = {}): Manifest {
  const now = options.now ?? Date.now();
  const version = options.version ?? nextVersion(options.previousVersion, now);
  if (options.previousVersion !== undefined && version <= options.previousVersion) {
    throw new RangeError(`version ${version} must exceed the previous version ${options.previousVersion}`);
  }
  const name = options.name ?? content.name;
  const problem = appNameProblem(name);
  if (problem !== null) throw new TypeError(`a snapshot needs an app name (${problem}): give the content a name or pass options.name`);
  const sortedModules: Record<string, ModuleRecord> = {};
  for (const path of Object.keys(content.modules).sort()) sortedModules[path] = content.modules[path]!;
  const manifest: Manifest = {
    schema: MANIFEST_SCHEMA,
    format: MODULE_FORMAT,
    version,
    name: name!,
    created: new Date(now).toISOString(),
    expires: new Date(now + (options.ttlMs ?? DEFAULT_TTL_MS)).toISOString(),
    keyId,
    entry: content.entry,
    modules: sortedModules,
    ...(content.pack ? { pack: content.pack } : {}),
    ...(content.files ? { files: sortedKeys(content.files) } : {}),
    ...(content.packages ? { packages: sortedKeys(content.packages) } : {}),
    ...(content.layout ? { layout: sortedKeys(content.layout) } : {}),
    ...(content.links ? { links: sortedKeys(content.links) } : {}),
    ...(content.externals ? { externals: sortedKeys(content.externals) } : {}),
  };
  return manifest;
}

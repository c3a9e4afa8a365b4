// A snapshot: one signed manifest plus every blob it references, held in memory.
// The server serves it; `publish` writes it to disk; tests make them directly.
import type { PublisherKey } from './keys.ts';
import { MANIFEST_SCHEMA, MODULE_FORMAT, type Manifest, type ModuleRecord } from './manifest.ts';
import { sealManifest, type SealedManifest } from './seal.ts';

export interface Snapshot {
  readonly manifest: Manifest;
  readonly sealed: SealedManifest;
  /** hash → bytes, for every blob (code and source maps) the manifest references. */
  readonly blobs: ReadonlyMap<string, Buffer>;
}

export interface SnapshotContent {
  readonly modules: Readonly<Record<string, ModuleRecord>>;
  readonly entry: string | null;
  readonly blobs: ReadonlyMap<string, Buffer>;
  readonly pack?: Manifest['pack'];
}

export interface SignOptions {
  /** Last version this publisher issued; the new one is strictly greater. */
  readonly previousVersion?: number;
  /** Force a version (must still exceed previousVersion). */
  readonly version?: number;
  /** How long clients may trust the manifest, in ms. */
  readonly ttlMs?: number;
  readonly now?: number;
}

export const DEFAULT_TTL_MS: number = 30 * 24 * 3600 * 1000;

/**
 * Versions are wall-clock milliseconds, bumped past the previous version: strictly increasing
 * per publisher across restarts, and comparable between two servers of one publisher.
 */
export function nextVersion(previous: number | undefined, now: number = Date.now()): number {
  return Math.max(Math.floor(now), (previous ?? 0) + 1);
}

export function signSnapshot(content: SnapshotContent, key: PublisherKey, options: SignOptions = {}): Snapshot {
  const now = options.now ?? Date.now();
  const version = options.version ?? nextVersion(options.previousVersion, now);
  if (options.previousVersion !== undefined && version <= options.previousVersion) {
    throw new RangeError(`version ${version} must exceed the previous version ${options.previousVersion}`);
  }
  const sortedModules: Record<string, ModuleRecord> = {};
  for (const path of Object.keys(content.modules).sort()) sortedModules[path] = content.modules[path]!;
  const manifest: Manifest = {
    schema: MANIFEST_SCHEMA,
    format: MODULE_FORMAT,
    version,
    created: new Date(now).toISOString(),
    expires: new Date(now + (options.ttlMs ?? DEFAULT_TTL_MS)).toISOString(),
    keyId: key.keyId,
    entry: content.entry,
    modules: sortedModules,
    ...(content.pack ? { pack: content.pack } : {}),
  };
  return { manifest, sealed: sealManifest(manifest, key), blobs: content.blobs };
}

// A local folder as a module source: built in-process with the same builder `serve` uses, so
// `livemod run ./src/main.ts` runs exactly what would be published — without a server, a key
// or a store. Nothing verifies a local build, so its manifest is not signed and no key is made
// (a random key id, one per process, fills the field), but every module source then has the
// same shape. With watching, each rebuild is a new source, a version above the last, for the
// registry to swap to.
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { snapshotManifest, type Manifest } from '../snapshot/index.ts';
import { SnapshotBuilder, type BuildOptions, type BuildResult } from '../build/index.ts';
import type { ModuleCodeCache, ModuleSource } from '../runtime/index.ts';
import { ErrorCodes, LivemodError } from '../errors.ts';

export interface LocalSource extends ModuleSource {
  readonly builder: SnapshotBuilder;
  readonly build: BuildResult;
  /** The manifest's key id: random, as no key signs a local build (making an Ed25519 pair cost ~1.5 ms of every local start). */
  readonly keyId: string;
}

/** Each local builder's code cache (the store's code/ folder), shared by every source built from it. */
const codeCaches = new WeakMap<SnapshotBuilder, ModuleCodeCache>();

/**
 * The module source of one build of `builder`'s folder. In reach mode it can grow (`extend`):
 * the builder builds the module asked for as well, and the result is the same version with
 * more modules.
 */
export function builtSource(builder: SnapshotBuilder, build: BuildResult, keyId: string, previousVersion?: number, version?: number): LocalSource {
  const manifest: Manifest = snapshotManifest(build.content, keyId, version !== undefined ? { version } : previousVersion !== undefined ? { previousVersion } : {});
  const blobs = build.content.blobs;
  const blob = (hash: string): Buffer => {
    const bytes = blobs.get(hash);
    if (!bytes) throw new LivemodError('runtime', ErrorCodes.MODULE_NOT_FOUND, `blob ${hash} is not in the local build of ${builder.root}`);
    return bytes;
  };
  return {
    builder,
    build,
    keyId,
    manifest,
    base: `${pathToFileURL(builder.root).href}/`,
    blob,
    map: (hash) => blobs.get(hash)?.toString('utf8') ?? null,
    ...(codeCaches.has(builder) ? { codeCache: codeCaches.get(builder)! } : {}),
    ...(build.deferred ? { deferred: new Set(build.deferred) } : {}),
    ...(build.deferredExternals ? { deferredExternals: build.deferredExternals } : {}),
    ...(builder.options.reach !== null
      ? {
          extend(specifier: string, importer: string | null): LocalSource | null {
            const path = builder.resolve(specifier, importer);
            if (path === null) return null;
            builder.extend([path]);
            const grown = builder.build({ hold: true });
            // What this growth added keeps its code cache as one run pack, as the start's.
            const added = grown.changed.filter((each) => !Object.hasOwn(manifest.modules, each) && Object.hasOwn(grown.content.modules, each));
            codeCaches.get(builder)?.grow?.([...new Set(added.map((each) => grown.content.modules[each]!.blob.hash))], grown.content.blobs);
            return builtSource(builder, grown, keyId, undefined, manifest.version);
          },
        }
      : {}),
  };
}

/**
 * The first build of `dir` as a module source. `codeCache` is asked, once the first build is
 * made, for the code cache of the builder's sources (a start's run pack is named by the blobs
 * it runs).
 */
export function localSource(dir: string, options: Partial<BuildOptions> = {}, codeCache?: (build: BuildResult) => ModuleCodeCache | undefined): LocalSource {
  const builder = new SnapshotBuilder(dir, options);
  const build = builder.build();
  const cache = codeCache?.(build);
  if (cache) codeCaches.set(builder, cache);
  return builtSource(builder, build, randomBytes(8).toString('hex'));
}

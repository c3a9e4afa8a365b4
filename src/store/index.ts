// The store subsystem's only door. In: blobs and manifests that sync has already verified, and
// origin URLs. Out: blobs re-verified on every read, the last accepted manifest (exact bytes)
// and state of each origin, and maintenance (list, verify, prune). On disk: a content-addressed
// cache shared by every livemod process of a user (layout in docs/protocol.md, "Client store");
// every write is atomic (temp file, fsync, rename) and commits are serialised by a lock file.
export { openStore, type Store } from './store.ts';
export { DEFAULT_STORE_OPTIONS, STORE_CHANNEL, type StoreEvent, type StoreOptions } from './context.ts';
export { defaultStoreDir, normaliseOrigin, originId, LAYOUT } from './location.ts';
export type { OriginState } from './records.ts';
export type { ProgramView } from './program.ts';
export { openCodeCache, type CodeCache } from './code-cache.ts';
export { runPackKey, type RunPackEntry } from './run-pack.ts';
export type { PackageResolutions } from './resolutions.ts';
export type { CommitInput, StoredOrigin, TouchFields } from './origins.ts';
export {
  DEFAULT_PRUNE_GRACE_MS,
  type OriginSummary, type PruneOptions, type PruneReport, type StoreListing, type VerifyReport,
} from './maintenance.ts';

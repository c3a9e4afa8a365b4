// The sync subsystem's only door. In: a snapshot's base URL (a livemod server or a static host),
// the publisher's pinned key, and limits. Out: a verified manifest (signature, structure, expiry,
// no rollback) and blobs that each hashed to what it says, fetched in as few requests as the
// host allows. Nothing here touches the disk: the store and the runtime build on these.
export { fetchManifest, checkFreshness, type FetchManifestOptions, type ManifestResult } from './manifest.ts';
export { fetchBlobs } from './blobs.ts';
export { fetchSnapshot, refreshSnapshot, type FetchSnapshotOptions, type FetchedSnapshot } from './snapshot.ts';
export { snapshotBase, type Capabilities } from './urls.ts';
export { SYNC_CHANNEL } from './transfer.ts';
export type { BlobOptions, ManifestOptions, RequestEvent, TransferOptions } from './options.ts';

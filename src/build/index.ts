// The build subsystem's only door: a folder → snapshot content (per-file transform to the module
// format, in-tree resolution, incremental rebuilds), and writing a static snapshot to a folder
// or an S3 bucket (whose SDK is imported only when one is opened). Only
// publishers load it: its parser and transformer are native addons a client never needs.
export {
  SnapshotBuilder, DEFAULT_BUILD_OPTIONS, formatBroken, formatUnresolved,
  type BrokenModule, type BuildOptions, type BuildResult, type UnresolvedImport,
} from './build.ts';
export type { SkippedFile } from './files.ts';
export { publishSnapshot, type PublishResult } from './publish.ts';
export { folderTarget, type SnapshotTarget } from './target.ts';
export { openS3Target, parseS3Url, s3HttpUrl, CACHE_CONTROL, type S3Location, type S3Options, type S3Target } from './s3.ts';
export { transformModule, type ModuleTransform, type ImportSite } from './transform.ts';
export { watchFolder, type FolderWatch, type WatchOptions } from './watch.ts';
export { transformCache, type TransformCache } from './cache.ts';

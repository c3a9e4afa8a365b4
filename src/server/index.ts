// The module server's only door. In: resolved options and snapshots (publish). Out: the HTTP
// protocol (manifest, blobs, batch, status, page) and the channel that pushes each new version.
// Also the bare request handler and snapshot store, to serve in-process or under another server,
// and watch mode (folder edits → rebuilt snapshot, which the caller publishes).
export { createModuleServer, type ModuleServer } from './server.ts';
export { resolveServerOptions, type ServerOptions, type ResolvedServerOptions, type TlsOptions } from './options.ts';
export { createRequestHandler } from './handler.ts';
export type { HandlerContext } from './context.ts';
export { SnapshotStore, type PublishedSnapshot } from './snapshots.ts';
export type { ClientInfo, ServerStatus } from '../protocol/index.ts';

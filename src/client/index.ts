// The client's only door: connect to a remote snapshot (sync through the store, then run it in
// a registry) or open a local folder the same way (the builder loads only then).
export { connect, openFolder, type App, type ConnectOptions } from './connect.ts';
export type { SyncProgress, SyncedFrom } from './remote.ts';
export { formatAge } from '../format.ts';
export { parseRemoteTarget } from './targets.ts';

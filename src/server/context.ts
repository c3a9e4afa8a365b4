// What the request handler reads: resolved options, the servable snapshots, and the channel
// clients. Passing these in (rather than a server) is what lets the handler run in-process.
import { STATUS_CLIENT_LIMIT, type ClientInfo, type ClusterStatus, type ServerStatus } from '../protocol/index.ts';
import type { ResolvedServerOptions } from './options.ts';
import type { SnapshotStore } from './snapshots.ts';

export interface HandlerContext {
  readonly options: ResolvedServerOptions;
  readonly snapshots: SnapshotStore;
  /** Connected channel clients; none when the handler runs without a channel. */
  readonly clients?: (limit: number) => readonly ClientInfo[];
  readonly clientCount?: () => number;
  readonly replicaCount?: () => number;
  /** `Date.now()` when serving began, for uptime; default: when the handler was created. */
  readonly startedAt?: number;
  /** The server's place in a fleet, when it is in one. */
  cluster?: () => ClusterStatus;
}

export function buildStatus(context: HandlerContext, startedAt: number): ServerStatus {
  const current = context.snapshots.current;
  const manifest = current?.snapshot.manifest;
  return {
    version: manifest?.version ?? null,
    etag: current?.snapshot.sealed.etag ?? null,
    created: manifest?.created ?? null,
    expires: manifest?.expires ?? null,
    keyId: manifest?.keyId ?? null,
    modules: current?.moduleCount ?? 0,
    bytes: current?.blobBytes ?? 0,
    clients: context.clients?.(STATUS_CLIENT_LIMIT) ?? [],
    clientCount: context.clientCount?.() ?? 0,
    replicaCount: context.replicaCount?.() ?? 0,
    uptimeMs: Date.now() - startedAt,
    published: context.snapshots.published,
    ...(context.cluster ? { cluster: context.cluster() } : {}),
  };
}

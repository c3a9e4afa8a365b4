// The body of `GET /status`: what a publisher (or `livemod status`) sees of a running server.

export interface ClientInfo {
  /** Unique for the server's lifetime. */
  readonly id: string;
  /** Remote `address:port` as the server's socket sees it (a proxy's, behind one). */
  readonly address: string;
  /** ISO 8601. */
  readonly connectedAt: string;
  /** The version the client last reported running. */
  readonly version?: number;
  /** ISO 8601 time of the client's last status message. */
  readonly lastStatusAt?: string;
  /** The client's last swap report, as it sent it. */
  readonly swap?: Readonly<Record<string, unknown>>;
  /** 'replica': a server replica following this one, not a program. */
  readonly role?: 'replica';
}

/** A server's place in a fleet (`serve --cluster`, `--follow`). */
export interface ClusterStatus {
  /** 'origin': builds and announces versions; 'replica': follows a source. */
  readonly role: 'origin' | 'replica';
  /** The broker's URL (without credentials), or null when the replica follows without one. */
  readonly broker: string | null;
  readonly brokerConnected: boolean;
  /** A replica's source and its last look at it. */
  readonly source?: string;
  readonly lastLookAt?: string | null;
  readonly lastChangeAt?: string | null;
  readonly lastError?: string | null;
}

/** Snapshot fields are null until the first publish. */
export interface ServerStatus {
  readonly version: number | null;
  readonly etag: string | null;
  readonly created: string | null;
  readonly expires: string | null;
  readonly keyId: string | null;
  /** Module count of the current snapshot. */
  readonly modules: number;
  /** Total bytes of the current snapshot's blobs (code and source maps). */
  readonly bytes: number;
  /** Up to STATUS_CLIENT_LIMIT of the connected channel clients; `clientCount` is all of them. */
  readonly clients: readonly ClientInfo[];
  readonly clientCount: number;
  /** Of `clientCount`, the server replicas following this server (the rest are programs). */
  readonly replicaCount: number;
  readonly uptimeMs: number;
  /** How many snapshots were published since the server started. */
  readonly published: number;
  /** Present when the server is part of a fleet. */
  readonly cluster?: ClusterStatus;
}

/** /status and the page list at most this many channel clients. */
export const STATUS_CLIENT_LIMIT = 200;

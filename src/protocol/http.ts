// The HTTP surface as names, so the server routes and the clients request the same strings.
// docs/protocol.md "HTTP and channel protocol" is the prose for every constant here.

/** Bumped only for a change an older peer would misread; sent in the channel's hello. */
export const PROTOCOL_VERSION = 1;

export const PATHS = {
  page: '/',
  healthz: '/healthz',
  manifest: '/manifest.json',
  /** Followed by the blob's 64-digit hash. */
  blobs: '/blobs/',
  batch: '/batch',
  channel: '/channel',
  status: '/status',
} as const;

/**
 * Capability headers on the manifest response. A static host (nginx, a CDN) lacks them, which
 * tells a client to fetch blobs one by one and poll instead of subscribing.
 */
export const HEADERS = {
  batch: 'livemod-batch',
  channel: 'livemod-channel',
} as const;

export const CONTENT_TYPES = {
  json: 'application/json',
  blob: 'application/octet-stream',
  batch: 'application/vnd.livemod.batch',
  html: 'text/html; charset=utf-8',
  text: 'text/plain; charset=utf-8',
} as const;

export function blobPath(hash: string): string {
  return PATHS.blobs + hash;
}

/** The body of `POST /batch`. */
export interface BatchRequest {
  readonly hashes: readonly string[];
}

// Every error livemod throws on purpose is a LivemodError with a stable `code`.
// Callers match on `code`, never on `instanceof`: hot swap can make two copies of a class.

export const ErrorCodes = {
  USAGE: 'ERR_LIVEMOD_USAGE',
  /** Printed by bin/livemod.js on a Node older than 24 (it cannot load this module there). */
  NODE_VERSION: 'ERR_LIVEMOD_NODE_VERSION',
  KEY_EXISTS: 'ERR_LIVEMOD_KEY_EXISTS',
  KEY_INVALID: 'ERR_LIVEMOD_KEY_INVALID',
  KEY_MISSING: 'ERR_LIVEMOD_KEY_MISSING',
  /** A private key file that group or others may read. */
  KEY_PERMISSIONS: 'ERR_LIVEMOD_KEY_PERMISSIONS',
  DIR_INVALID: 'ERR_LIVEMOD_DIR_INVALID',
  BUILD_FAILED: 'ERR_LIVEMOD_BUILD_FAILED',
  UNRESOLVED_IMPORT: 'ERR_LIVEMOD_UNRESOLVED_IMPORT',
  TOO_LARGE: 'ERR_LIVEMOD_TOO_LARGE',
  NATIVE_PACKAGE: 'ERR_LIVEMOD_NATIVE_PACKAGE',
  MANIFEST_INVALID: 'ERR_LIVEMOD_MANIFEST_INVALID',
  SIGNATURE_INVALID: 'ERR_LIVEMOD_SIGNATURE_INVALID',
  WRONG_KEY: 'ERR_LIVEMOD_WRONG_KEY',
  /** The manifest is another app's snapshot than the one pinned for (or accepted from) its origin. */
  WRONG_APP: 'ERR_LIVEMOD_WRONG_APP',
  ROLLBACK: 'ERR_LIVEMOD_ROLLBACK',
  EXPIRED: 'ERR_LIVEMOD_EXPIRED',
  HASH_MISMATCH: 'ERR_LIVEMOD_HASH_MISMATCH',
  FETCH_FAILED: 'ERR_LIVEMOD_FETCH_FAILED',
  TIMEOUT: 'ERR_LIVEMOD_TIMEOUT',
  OUT_INVALID: 'ERR_LIVEMOD_OUT_INVALID',
  /**
   * An object store (publish --out s3://…) could not be used: unreachable, no such bucket, access
   * denied, no credentials, or a write it refused. `details.reason` says which.
   */
  STORAGE: 'ERR_LIVEMOD_STORAGE',
  SERVE_FAILED: 'ERR_LIVEMOD_SERVE_FAILED',
  MODULE_NOT_FOUND: 'ERR_LIVEMOD_MODULE_NOT_FOUND',
  TOO_STALE: 'ERR_LIVEMOD_TOO_STALE',
  NOT_CACHED: 'ERR_LIVEMOD_NOT_CACHED',
  CONFIG_INVALID: 'ERR_LIVEMOD_CONFIG_INVALID',
  // HTTP and channel protocol (src/server, src/protocol): one code per thing a client can act on.
  BAD_REQUEST: 'ERR_LIVEMOD_BAD_REQUEST',
  UNAUTHORIZED: 'ERR_LIVEMOD_UNAUTHORIZED',
  NOT_FOUND: 'ERR_LIVEMOD_NOT_FOUND',
  METHOD_NOT_ALLOWED: 'ERR_LIVEMOD_METHOD_NOT_ALLOWED',
  NO_SNAPSHOT: 'ERR_LIVEMOD_NO_SNAPSHOT',
  BLOB_UNKNOWN: 'ERR_LIVEMOD_BLOB_UNKNOWN',
  PROTOCOL: 'ERR_LIVEMOD_PROTOCOL',
  // Client store (src/store): the disk cache shared by every livemod process of a user.
  STORE_UNWRITABLE: 'ERR_LIVEMOD_STORE_UNWRITABLE',
  STORE_FULL: 'ERR_LIVEMOD_STORE_FULL',
  STORE_LOCKED: 'ERR_LIVEMOD_STORE_LOCKED',
  STORE_INCOMPLETE: 'ERR_LIVEMOD_STORE_INCOMPLETE',
  STORE_IO: 'ERR_LIVEMOD_STORE_IO',
  // Service manager (src/service): named programs kept running, state in SQLite.
  /** No service of that name. */
  SERVICE_UNKNOWN: 'ERR_LIVEMOD_SERVICE_UNKNOWN',
  /** A service of that name exists already. */
  SERVICE_EXISTS: 'ERR_LIVEMOD_SERVICE_EXISTS',
  /** The state database cannot be used: corrupt, from a newer livemod, or not writable. */
  SERVICE_STATE: 'ERR_LIVEMOD_SERVICE_STATE',
  /** A log file that cannot be opened for appending. */
  SERVICE_LOG: 'ERR_LIVEMOD_SERVICE_LOG',
  /** A service that did not start, or did not stop, within its bound. */
  SERVICE_START: 'ERR_LIVEMOD_SERVICE_START',
  /** A live service's in-place reload failed (its old code keeps running). */
  SERVICE_RELOAD: 'ERR_LIVEMOD_SERVICE_RELOAD',
  /** A new version changes the program's npm packages, which a running process cannot take in place: a restart runs it. */
  SWAP_PACKAGES: 'ERR_LIVEMOD_SWAP_PACKAGES',
  /** A lazily imported module failed at its first read (`--lazy`); the next read tries it again. */
  LAZY_LOAD: 'ERR_LIVEMOD_LAZY_LOAD',
  /** A module left unbuilt for its first read (a local `--lazy` run) has gained top-level await, which a read cannot wait for. */
  LAZY_AWAIT: 'ERR_LIVEMOD_LAZY_AWAIT',
  // Scale-out (src/cluster): server replicas that learn of new versions through a message broker.
  /** The broker cannot be reached, or its URL is not one livemod can use. */
  CLUSTER: 'ERR_LIVEMOD_CLUSTER',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export type Subsystem = 'build' | 'snapshot' | 'publish' | 'serve' | 'sync' | 'keygen' | 'cli' | 'store' | 'runtime' | 'service' | 'cluster';

export class LivemodError extends Error {
  readonly code: ErrorCode;
  readonly subsystem: Subsystem;
  /** Extra machine-readable facts (paths, hashes, limits) for `--json` output. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(subsystem: Subsystem, code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(`[livemod ${subsystem}] ${message}`, options);
    this.name = 'LivemodError';
    this.code = code;
    this.subsystem = subsystem;
    this.details = Object.freeze({ ...details });
  }
}

export function isLivemodError(error: unknown): error is LivemodError {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('ERR_LIVEMOD_');
}

const LINK_ERROR = Symbol.for('livemod.linkError');

/**
 * Marks an error the registry raised while loading or linking modules (a module not found, a
 * missing export, a module that does not parse): Node's own kinds of error, with Node's messages,
 * that the command line prints as one line, without the registry's frames.
 */
export function markLinkError<T extends Error>(error: T): T {
  Object.defineProperty(error, LINK_ERROR, { value: true });
  return error;
}

export function isLinkError(error: unknown): error is Error {
  return error instanceof Error && (error as unknown as Record<symbol, unknown>)[LINK_ERROR] === true;
}

// What the store keeps per origin, read back defensively: state.json is parsed into a checked
// OriginState or refused, and a stored manifest is parsed for what the store itself needs
// (version, key id, the blobs it references). The store holds no publisher key: it never
// vouches for a manifest's signature, the caller re-opens the bytes with its pinned key.
import { ErrorCodes, LivemodError } from '../errors.ts';
import { appNameProblem, carriesProgram, isHash, manifestBlobs, readManifestUnverified, type BlobRef } from '../snapshot/index.ts';
import { modulesId, treeId } from './program.ts';

/** The record of the last manifest accepted for an origin (state.json). */
export interface OriginState {
  /** The normalised origin (see normaliseOrigin). */
  readonly origin: string;
  readonly version: number;
  /**
   * The app that manifest names: a later manifest from this origin must name the same one, as
   * its version must not go lower. Null in a record written before manifests named their app.
   */
  readonly name: string | null;
  /** ETag the host sent with that manifest, for the next conditional fetch; null if none. */
  readonly etag: string | null;
  readonly keyId: string;
  /** sha256 of manifest.json's exact bytes: ties the two files together (a torn commit shows). */
  readonly manifestHash: string;
  /** When the manifest was committed, in ms since the epoch. */
  readonly acceptedAt: number;
  /** When the host last confirmed it (a commit or a 304), in ms since the epoch. */
  readonly checkedAt: number;
  /**
   * The ids of that manifest's laid-out folders (store/program.ts), when it carries its program:
   * functions of its bytes, computed once at commit, so a start of the stored version does not
   * hash its file lists again (7 ms for 1,700 package files). Absent in older records: computed.
   */
  readonly layout?: LayoutIds;
}

/** A program's folder ids: its tree, and the node_modules folder it links (null: no packages). */
export interface LayoutIds {
  readonly tree: string;
  readonly modules: string | null;
}

/** What the store reads out of a stored manifest. */
export interface StoredManifest {
  readonly version: number;
  readonly name: string;
  readonly keyId: string;
  readonly modules: number;
  /** Every blob it references (code and maps), deduplicated. */
  readonly blobs: readonly BlobRef[];
  /** The ids of its laid-out folders (store/program.ts), when it carries its program. */
  readonly layout: LayoutIds | null;
}

/** state.json is a few hundred bytes; anything much larger is not ours. */
export const MAX_STATE_BYTES: number = 64 * 1024;
export const MAX_ETAG_LENGTH: number = 1024;

const FOLDER_ID = /^[0-9a-f]{32}$/;

/** A record's layout ids: absent, or both well-formed (anything else is not a state of ours). */
function layoutIds(value: unknown): LayoutIds | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) return null;
  const { tree, modules } = value as Record<string, unknown>;
  if (typeof tree !== 'string' || !FOLDER_ID.test(tree)) return null;
  if (modules !== null && (typeof modules !== 'string' || !FOLDER_ID.test(modules))) return null;
  return Object.freeze({ tree, modules });
}

function timestamp(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** The state a file holds, or null if it is not a well-formed state of `origin`. */
export function parseState(bytes: Uint8Array, origin: string): OriginState | null {
  if (bytes.byteLength > MAX_STATE_BYTES) return null;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const record = value as Record<string, unknown>;
  const { version, etag, keyId, manifestHash, acceptedAt, checkedAt } = record;
  const name = record.name ?? null;
  if (record.origin !== origin) return null;
  if (name !== null && appNameProblem(name) !== null) return null;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) return null;
  if (etag !== null && (typeof etag !== 'string' || etag.length > MAX_ETAG_LENGTH)) return null;
  if (typeof keyId !== 'string' || keyId.length === 0 || keyId.length > 256) return null;
  if (!isHash(manifestHash) || !timestamp(acceptedAt) || !timestamp(checkedAt)) return null;
  const layout = layoutIds(record.layout);
  if (layout === null) return null;
  return Object.freeze({ origin, version, name: name as string | null, etag, keyId, manifestHash, acceptedAt, checkedAt, ...(layout ? { layout } : {}) });
}

/** The origin named by a state file, whatever else it holds; for listing a store's folders. */
export function stateOrigin(bytes: Uint8Array): string | null {
  if (bytes.byteLength > MAX_STATE_BYTES) return null;
  try {
    const value = JSON.parse(Buffer.from(bytes).toString('utf8')) as { origin?: unknown } | null;
    return typeof value?.origin === 'string' ? value.origin : null;
  } catch {
    return null;
  }
}

export function serialiseState(state: OriginState): Buffer {
  const { origin, version, name, etag, keyId, manifestHash, acceptedAt, checkedAt, layout } = state;
  return Buffer.from(`${JSON.stringify({ origin, version, name, etag, keyId, manifestHash, acceptedAt, checkedAt, ...(layout ? { layout: { tree: layout.tree, modules: layout.modules } } : {}) }, null, 2)}\n`);
}

/**
 * Parses manifest bytes for the store's own needs: the envelope and the structure are checked in
 * full (the same code clients run), the signature is not (no key here; the bytes were verified
 * before they were committed). Throws MANIFEST_INVALID.
 */
export function parseStoredManifest(bytes: Uint8Array, source: string): StoredManifest {
  let manifest;
  try {
    manifest = readManifestUnverified(bytes, source);
  } catch (error) {
    if (!(error instanceof LivemodError)) throw error;
    throw new LivemodError('store', ErrorCodes.MANIFEST_INVALID, error.message.replace(/^\[livemod snapshot\] /, ''), { source });
  }
  return { version: manifest.version, name: manifest.name, keyId: manifest.keyId, modules: Object.keys(manifest.modules).length, blobs: manifestBlobs(manifest), layout: carriesProgram(manifest) ? { tree: treeId(manifest), modules: modulesId(manifest) } : null };
}

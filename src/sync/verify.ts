// Blob checks. Nothing leaves sync that does not hash to what the signed manifest says, and every
// refusal names the module the blob belongs to, so a user knows what was tampered with.
import { ErrorCodes, LivemodError } from '../errors.ts';
import { eachBlob, nodeCrypto, shortHash, type BlobRef, type Manifest } from '../snapshot/index.ts';
import { quoted } from '../text.ts';

export interface BlobEntry {
  readonly ref: BlobRef;
  /** A module path, `<path> (source map)`, `file <path>` or `package <key>: <path>`: for messages. */
  readonly module: string;
}

/** hash → the first module (by path) whose code or source map it is, else the file or package file. */
export function blobIndex(manifest: Manifest): Map<string, BlobEntry> {
  const index = new Map<string, BlobEntry>();
  eachBlob(manifest, (ref, module) => {
    if (!index.has(ref.hash)) index.set(ref.hash, { ref, module });
  });
  return index;
}

/** Throws ERR_LIVEMOD_HASH_MISMATCH unless `bytes` are exactly the blob `entry` describes. */
export function verifyBlob(entry: BlobEntry, bytes: Uint8Array, source: string): void {
  const { hash, size } = entry.ref;
  // crypto.hash: one call per blob, no Hash object; a cold fetch checks thousands of small blobs.
  const actual = bytes.byteLength === size ? nodeCrypto().hash('sha256', bytes, 'hex') : null;
  if (actual === hash) return;
  const got = actual === null ? `${bytes.byteLength} bytes, not ${size}` : `bytes hashing to ${shortHash(actual)}`;
  throw new LivemodError('sync', ErrorCodes.HASH_MISMATCH, `blob ${shortHash(hash)} for ${quoted(entry.module)} from ${source} failed its hash check (got ${got}); it was changed on the way or on the host and was not used: run again, and tell the publisher if it repeats`, { module: entry.module, hash, source });
}

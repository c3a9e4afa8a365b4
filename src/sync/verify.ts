// Blob checks. Nothing leaves sync that does not hash to what the signed manifest says, and every
// refusal names the module the blob belongs to, so a user knows what was tampered with.
import { hash as digest } from 'node:crypto';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { shortHash, type BlobRef, type Manifest } from '../snapshot/index.ts';
import { quoted } from '../text.ts';

export interface BlobEntry {
  readonly ref: BlobRef;
  /** A module path, or `<path> (source map)`: for messages. */
  readonly module: string;
}

/** hash → the first module (by path) whose code or source map it is. */
export function blobIndex(manifest: Manifest): Map<string, BlobEntry> {
  const index = new Map<string, BlobEntry>();
  for (const path of Object.keys(manifest.modules).sort()) {
    const record = manifest.modules[path]!;
    if (!index.has(record.blob.hash)) index.set(record.blob.hash, { ref: record.blob, module: path });
    if (record.map && !index.has(record.map.hash)) index.set(record.map.hash, { ref: record.map, module: `${path} (source map)` });
  }
  return index;
}

/** Throws ERR_LIVEMOD_HASH_MISMATCH unless `bytes` are exactly the blob `entry` describes. */
export function verifyBlob(entry: BlobEntry, bytes: Uint8Array, source: string): void {
  const { hash, size } = entry.ref;
  // crypto.hash: one call per blob, no Hash object; a cold fetch checks thousands of small blobs.
  const actual = bytes.byteLength === size ? digest('sha256', bytes, 'hex') : null;
  if (actual === hash) return;
  const got = actual === null ? `${bytes.byteLength} bytes, not ${size}` : `bytes hashing to ${shortHash(actual)}`;
  throw new LivemodError('sync', ErrorCodes.HASH_MISMATCH, `blob ${shortHash(hash)} for ${quoted(entry.module)} from ${source} failed its hash check (got ${got}); it was changed on the way or on the host and was not used: run again, and tell the publisher if it repeats`, { module: entry.module, hash, source });
}

import { createHash } from 'node:crypto';

/** Blob and manifest hashes: lowercase hex sha256 of the exact bytes served. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export const HASH_PATTERN: RegExp = /^[0-9a-f]{64}$/;

export function isHash(value: unknown): value is string {
  return typeof value === 'string' && HASH_PATTERN.test(value);
}

/** Short form for messages: the first 12 hex digits are unique enough for a human. */
export function shortHash(hash: string): string {
  return `${hash.slice(0, 12)}…`;
}

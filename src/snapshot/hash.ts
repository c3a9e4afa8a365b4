import type * as Crypto from 'node:crypto';
import { sha256HexJs } from './sha256.ts';

type NodeCrypto = typeof Crypto;

let loaded: NodeCrypto | null = null;

/**
 * node:crypto, loaded on first use. Loading it costs a start 6-10 ms (OpenSSL's set-up and some
 * twenty internal modules); a warm start of a stored version needs none of it (a signature
 * checked when the manifest was stored is not checked again, origins.ts), so no module of the
 * run path imports it at load.
 */
export function nodeCrypto(): NodeCrypto {
  return (loaded ??= process.getBuiltinModule('node:crypto'));
}

/**
 * Bytes hashed in JavaScript before node:crypto is loaded: the short inputs of a warm start
 * (folder ids, the host tag, a key id) come to a few hundred bytes. Cold, the JavaScript hash
 * runs at about 2 MB/s (a millisecond per 2 KiB), so past this budget, or for one larger input,
 * node:crypto is loaded and every hash after that goes through it: a start that needs
 * node:crypto anyway (a cold one checks a signature) wastes at most a millisecond on this.
 */
const JS_BUDGET = 2 * 1024;
const JS_LARGEST = 1024;
let jsBytes = 0;

/** Blob and manifest hashes: lowercase hex sha256 of the exact bytes served. */
export function sha256Hex(data: string | Uint8Array): string {
  if (loaded === null) {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (bytes.byteLength <= JS_LARGEST && jsBytes + bytes.byteLength <= JS_BUDGET) {
      jsBytes += bytes.byteLength;
      return sha256HexJs(bytes);
    }
    return nodeCrypto().hash('sha256', bytes, 'hex');
  }
  return loaded.hash('sha256', data, 'hex');
}

export const HASH_PATTERN: RegExp = /^[0-9a-f]{64}$/;

export function isHash(value: unknown): value is string {
  return typeof value === 'string' && HASH_PATTERN.test(value);
}

/** Short form for messages: the first 12 hex digits are unique enough for a human. */
export function shortHash(hash: string): string {
  return `${hash.slice(0, 12)}…`;
}

// Publisher keys: ed25519 from node:crypto. The private key lives in a PEM file (mode 0600);
// the public key travels as one copy-pasteable string, `ed25519:<base64url of the 32 raw bytes>`,
// which clients pin. The key id is derived from the public key, so it cannot be forged apart from it.
import type { KeyObject } from 'node:crypto';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { quoted } from '../text.ts';
import { nodeCrypto, sha256Hex } from './hash.ts';

const PUBLIC_PREFIX = 'ed25519:';
/** A pinned public key as written: `ed25519:` and the 32 raw bytes in base64url. */
export const PUBLIC_KEY_PATTERN: RegExp = /^ed25519:[A-Za-z0-9_-]{43}$/;
// DER prefix of an ed25519 SubjectPublicKeyInfo; the 32 raw key bytes follow it.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface PublisherKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** `ed25519:…`, what `keygen` prints and clients pin. */
  readonly publicKeyString: string;
  readonly keyId: string;
}

export interface VerifyKey {
  readonly publicKey: KeyObject;
  readonly publicKeyString: string;
  readonly keyId: string;
}

function rawPublicKey(publicKey: KeyObject): Buffer {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return der.subarray(SPKI_PREFIX.length);
}

function describe(raw: Buffer): { publicKeyString: string; keyId: string } {
  return { publicKeyString: PUBLIC_PREFIX + raw.toString('base64url'), keyId: sha256Hex(raw).slice(0, 16) };
}

export function generatePublisherKey(): PublisherKey {
  const { privateKey, publicKey } = nodeCrypto().generateKeyPairSync('ed25519');
  return { privateKey, publicKey, ...describe(rawPublicKey(publicKey)) };
}

export function privateKeyToPem(key: PublisherKey): string {
  return key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Parses a private key file's text. `source` names the file in errors. */
export function parsePrivateKeyPem(pem: string, source: string): PublisherKey {
  let privateKey: KeyObject;
  try {
    privateKey = nodeCrypto().createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new LivemodError('snapshot', ErrorCodes.KEY_INVALID, `${source} is not a PEM private key; make one with \`livemod keygen --out ${source}\``, { source });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new LivemodError('snapshot', ErrorCodes.KEY_INVALID, `${source} holds a ${privateKey.asymmetricKeyType} key, but publisher keys are ed25519; make one with \`livemod keygen\``, { source });
  }
  const publicKey = nodeCrypto().createPublicKey(privateKey);
  return { privateKey, publicKey, ...describe(rawPublicKey(publicKey)) };
}

/** Parses a pinned public key string (`ed25519:…`). */
export function parsePublicKey(text: string): VerifyKey {
  const trimmed = text.trim();
  const raw = PUBLIC_KEY_PATTERN.test(trimmed) ? Buffer.from(trimmed.slice(PUBLIC_PREFIX.length), 'base64url') : Buffer.alloc(0);
  if (raw.length !== 32) {
    throw new LivemodError('snapshot', ErrorCodes.KEY_INVALID, `public key ${quoted(trimmed, 60)} is not of the form ed25519:<43 base64url characters>; copy it whole from \`livemod keygen\` or \`livemod serve\` output`);
  }
  // Described from the bytes given, not exported back from a key object (a millisecond of every
  // start), and the key object made when a signature is first checked: a start that re-opens a
  // manifest verified when it was stored checks none, and does not load node:crypto for it.
  const { publicKeyString, keyId } = describe(raw);
  let publicKey: KeyObject | undefined;
  return {
    get publicKey(): KeyObject {
      return (publicKey ??= nodeCrypto().createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' }));
    },
    publicKeyString,
    keyId,
  };
}

export function signBytes(key: PublisherKey, data: Uint8Array): string {
  return nodeCrypto().sign(null, data, key.privateKey).toString('base64url');
}

export function verifyBytes(key: VerifyKey, data: Uint8Array, signature: string): boolean {
  if (!/^[A-Za-z0-9_-]{86}$/.test(signature)) return false;
  const raw = Buffer.from(signature, 'base64url');
  // The last character carries 4 unused bits: only the canonical spelling is accepted, so a
  // signature has one text and a changed byte of it is always a failed check.
  if (raw.toString('base64url') !== signature) return false;
  return nodeCrypto().verify(null, data, key.publicKey, raw);
}

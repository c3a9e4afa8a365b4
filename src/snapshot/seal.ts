// Signing and opening manifests. `seal` is the publisher side, `openManifest` the client side:
// parse → signature by the pinned key → structure → (the caller checks version and expiry).
import { createHash } from 'node:crypto';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { canonicalJson } from './canonical.ts';
import { sha256Hex } from './hash.ts';
import { signBytes, verifyBytes, type PublisherKey, type VerifyKey } from './keys.ts';
import { SIGNATURE_CONTEXT, type Manifest, type SignedManifest } from './manifest.ts';
import { validateManifest } from './validate.ts';

/** A manifest as served: the envelope, its exact bytes, and the ETag derived from them. */
export interface SealedManifest {
  readonly envelope: SignedManifest;
  readonly bytes: Buffer;
  /** sha256 hex of `bytes`. */
  readonly hash: string;
  /** Strong HTTP ETag: the quoted hash. */
  readonly etag: string;
}

/** Refuse manifest documents above this many bytes before parsing them. */
export const MAX_MANIFEST_BYTES: number = 64 * 1024 * 1024;

/**
 * What the key signs: the context string and the sha256 of the canonical text. Hash-then-sign
 * keeps ed25519's own two SHA-512 passes off a megabyte-sized manifest on every rebuild and
 * every start; SHA-256's collision resistance is what the blob hashes rest on already.
 */
function signingInput(manifestJson: string | Uint8Array): Buffer {
  return Buffer.from(SIGNATURE_CONTEXT + createHash('sha256').update(manifestJson).digest('hex'));
}

const SIGNATURE_LENGTH = 86;

// Module records are frozen and reused across rebuilds, so their bytes are encoded once.
const recordBytes = new WeakMap<object, Buffer>();

/**
 * canonicalJson(manifest) as byte chunks: each module record's bytes come from the cache, so a
 * rebuild after one edit encodes one record, not a megabyte-long string of 2,000.
 */
function manifestChunks(manifest: Manifest): Buffer[] {
  const chunks: Buffer[] = [];
  let first = true;
  for (const key of Object.keys(manifest).sort()) {
    const value = (manifest as unknown as Record<string, unknown>)[key];
    if (value === undefined) continue;
    const lead = `${first ? '{' : ','}${JSON.stringify(key)}:`;
    first = false;
    if (key !== 'modules') {
      chunks.push(Buffer.from(lead + canonicalJson(value)));
      continue;
    }
    const modules = value as Manifest['modules'];
    let text = `${lead}{`;
    let separator = '';
    for (const path of Object.keys(modules).sort()) {
      const record = modules[path]!;
      let bytes = recordBytes.get(record);
      if (!bytes) {
        bytes = Buffer.from(canonicalJson(record));
        if (Object.isFrozen(record)) recordBytes.set(record, bytes);
      }
      chunks.push(Buffer.from(`${text}${separator}${JSON.stringify(path)}:`), bytes);
      text = '';
      separator = ',';
    }
    chunks.push(Buffer.from(`${text}}`));
  }
  chunks.push(Buffer.from(first ? '{}' : '}'));
  return chunks;
}

/**
 * Signs a manifest. Its structure is not validated here: the builder makes records by
 * construction, tests hold them to the JSON Schema, and every client validates what it gets.
 */
export function sealManifest(manifest: Manifest, key: PublisherKey): SealedManifest {
  if (manifest.keyId !== key.keyId) throw new TypeError(`manifest keyId ${manifest.keyId} is not that of the signing key ${key.keyId}`);
  // The envelope is assembled once, with a placeholder of the signature's fixed length that the
  // signature then overwrites: the signed text is hashed as bytes, never re-encoded. Keys in
  // canonical order: "signatures" sorts before "signed", "keyId" before "sig".
  const head = `{"signatures":[{"keyId":"${key.keyId}","sig":"`;
  const middle = '"}],"signed":';
  const bytes = Buffer.concat([Buffer.from(`${head}${'A'.repeat(SIGNATURE_LENGTH)}${middle}`), ...manifestChunks(manifest), Buffer.from('}')]);
  const signedStart = head.length + SIGNATURE_LENGTH + middle.length;
  const sig = signBytes(key, signingInput(bytes.subarray(signedStart, bytes.length - 1)));
  bytes.write(sig, head.length, 'latin1');
  const envelope: SignedManifest = { signed: manifest, signatures: [{ keyId: key.keyId, sig }] };
  const hash = sha256Hex(bytes);
  return { envelope, bytes, hash, etag: `"${hash}"` };
}

/**
 * Fast path: an envelope written by sealManifest holds the signed text verbatim after its
 * signatures, so the signature is checked over those bytes — the text of `signed` the envelope
 * parsed to, since a signed text is one whole JSON value — without serialising 2,000 module
 * records again. Any other layout (whitespace, key order) takes the canonical path.
 */
const SIGNED_MARKER = Buffer.from('],"signed":');
const ENVELOPE_START = Buffer.from('{"signatures":[');

function verifySigned(bytes: Buffer, signed: unknown, key: VerifyKey, sig: string, source: string): boolean {
  const at = bytes.indexOf(SIGNED_MARKER);
  if (at !== -1 && bytes.subarray(0, ENVELOPE_START.length).equals(ENVELOPE_START) && bytes[bytes.length - 1] === 0x7d) {
    if (verifyBytes(key, signingInput(bytes.subarray(at + SIGNED_MARKER.length, bytes.length - 1)), sig)) return true;
  }
  let input: Buffer;
  try {
    input = signingInput(canonicalJson(signed));
  } catch {
    throw new LivemodError('snapshot', ErrorCodes.MANIFEST_INVALID, `manifest from ${source} holds values canonical JSON cannot represent`, { source });
  }
  return verifyBytes(key, input, sig);
}

/**
 * Parses and verifies manifest bytes against a pinned key. Checks signature and structure only:
 * rollback and expiry depend on what the client accepted before, so the caller checks them.
 */
export function openManifest(bytes: Uint8Array, key: VerifyKey, source: string): Manifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new LivemodError('snapshot', ErrorCodes.TOO_LARGE, `manifest from ${source} is ${bytes.byteLength} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit; this is not a livemod manifest`, { source });
  }
  let parsed: unknown;
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    parsed = JSON.parse(buffer.toString('utf8'));
  } catch {
    throw new LivemodError('snapshot', ErrorCodes.MANIFEST_INVALID, `manifest from ${source} is not JSON; check that the URL points at a livemod server or published snapshot`, { source });
  }
  const envelope = parsed as Partial<SignedManifest> | null;
  if (typeof envelope !== 'object' || envelope === null || typeof envelope.signed !== 'object' || envelope.signed === null || !Array.isArray(envelope.signatures)) {
    throw new LivemodError('snapshot', ErrorCodes.MANIFEST_INVALID, `manifest from ${source} is not a signed envelope {signed, signatures}; check that the URL points at a livemod server or published snapshot`, { source });
  }
  const signature = envelope.signatures.find((entry) => typeof entry === 'object' && entry !== null && entry.keyId === key.keyId);
  if (!signature) {
    const ids = envelope.signatures.map((entry) => String((entry as { keyId?: unknown })?.keyId)).join(', ') || 'none';
    throw new LivemodError('snapshot', ErrorCodes.WRONG_KEY, `manifest from ${source} is signed by key id ${ids}, not by the pinned key ${key.keyId}; pin the publisher's key (--key) or ask the publisher which key they use`, { source, keyId: key.keyId });
  }
  if (typeof signature.sig !== 'string' || !verifySigned(buffer, envelope.signed, key, signature.sig, source)) {
    throw new LivemodError('snapshot', ErrorCodes.SIGNATURE_INVALID, `manifest from ${source} fails its signature check with key ${key.keyId}: it was changed after signing or signed by someone else; do not run it, and tell the publisher`, { source, keyId: key.keyId });
  }
  const manifest = validateManifest(envelope.signed, source);
  if (manifest.keyId !== key.keyId) {
    throw new LivemodError('snapshot', ErrorCodes.WRONG_KEY, `manifest from ${source} names key id ${manifest.keyId} but is signed by ${key.keyId}`, { source });
  }
  return manifest;
}

// Signing and opening manifests. `seal` is the publisher side, `openManifest` the client side:
// parse → signature by the pinned key → structure → (the caller checks version and expiry).
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

function signingInput(manifestJson: string): Buffer {
  return Buffer.from(SIGNATURE_CONTEXT + manifestJson);
}

// Module records are frozen and reused across rebuilds, so their text is computed once.
const recordText = new WeakMap<object, string>();

/**
 * Signs a manifest. Its structure is not validated here: the builder makes records by
 * construction, tests hold them to the JSON Schema, and every client validates what it gets.
 */
export function sealManifest(manifest: Manifest, key: PublisherKey): SealedManifest {
  if (manifest.keyId !== key.keyId) throw new TypeError(`manifest keyId ${manifest.keyId} is not that of the signing key ${key.keyId}`);
  const manifestJson = canonicalJson(manifest, recordText);
  const signatures = [{ keyId: key.keyId, sig: signBytes(key, signingInput(manifestJson)) }];
  const envelope: SignedManifest = { signed: manifest, signatures };
  // Keys in canonical order: "signatures" sorts before "signed".
  const bytes = Buffer.from(`{"signatures":${canonicalJson(signatures)},"signed":${manifestJson}}`);
  const hash = sha256Hex(bytes);
  return { envelope, bytes, hash, etag: `"${hash}"` };
}

/**
 * Fast path: an envelope written by sealManifest holds the signed text verbatim after its
 * signatures, so the signature is checked over those bytes — the text of `signed` the envelope
 * parsed to, since a signed text is one whole JSON value — without serialising 2,000 module
 * records again. Any other layout (whitespace, key order) takes the canonical path.
 */
function verifySigned(text: string, signed: unknown, key: VerifyKey, sig: string, source: string): boolean {
  const marker = '],"signed":';
  const at = text.indexOf(marker);
  if (text.startsWith('{"signatures":[') && at !== -1 && text.endsWith('}')) {
    if (verifyBytes(key, signingInput(text.slice(at + marker.length, -1)), sig)) return true;
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
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  try {
    parsed = JSON.parse(text);
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
  if (typeof signature.sig !== 'string' || !verifySigned(text, envelope.signed, key, signature.sig, source)) {
    throw new LivemodError('snapshot', ErrorCodes.SIGNATURE_INVALID, `manifest from ${source} fails its signature check with key ${key.keyId}: it was changed after signing or signed by someone else; do not run it, and tell the publisher`, { source, keyId: key.keyId });
  }
  const manifest = validateManifest(envelope.signed, source);
  if (manifest.keyId !== key.keyId) {
    throw new LivemodError('snapshot', ErrorCodes.WRONG_KEY, `manifest from ${source} names key id ${manifest.keyId} but is signed by ${key.keyId}`, { source });
  }
  return manifest;
}

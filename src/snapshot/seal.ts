// Signing and opening manifests. `seal` is the publisher side, `openManifest` the client side:
// header → signature by the pinned key over the raw signed bytes → bounded parse → structure →
// (the caller checks app, version and expiry). Nothing a host sends is parsed as JSON before its
// signature verifies: the header has a fixed layout read with one anchored regex, so a body of
// sixteen megabytes of brackets costs a prefix compare, not a gigabyte of parse tree.
//
// The bytes of an envelope, exactly (docs/protocol.md, "Manifest"):
//   {"envelope":"livemod/envelope@2","signatures":[{"keyId":"<16 hex>","sig":"<86 base64url>"}(,…){0,3}],"signed":<S>}
// where <S> is the signed manifest's JSON and the last byte is the envelope's closing brace.
import { ErrorCodes, LivemodError } from '../errors.ts';
import { listed } from '../text.ts';
import { canonicalJson } from './canonical.ts';
import { nodeCrypto, sha256Hex } from './hash.ts';
import { signBytes, verifyBytes, type PublisherKey, type VerifyKey } from './keys.ts';
import { ENVELOPE_FORMAT, MAX_SIGNATURES, SIGNATURE_CONTEXT, type Manifest, type ManifestSignature, type SignedManifest } from './manifest.ts';
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
 * What the key signs: the context string and the sha256 of the signed bytes. Hash-then-sign
 * keeps ed25519's own two SHA-512 passes off a megabyte-sized manifest on every rebuild and
 * every start; SHA-256's collision resistance is what the blob hashes rest on already.
 */
function signingInput(manifestJson: string | Uint8Array): Buffer {
  return signingInputOf(nodeCrypto().hash('sha256', manifestJson, 'hex'));
}

/** The same, from the hex digest of the signed bytes (hashed as they streamed in). */
function signingInputOf(digest: string): Buffer {
  return Buffer.from(SIGNATURE_CONTEXT + digest);
}

const SIGNATURE_LENGTH = 86;

const HEADER_START = Buffer.from(`{"envelope":"${ENVELOPE_FORMAT}","signatures":[`);
const HEADER_END = '],"signed":';
/** A version-1 envelope (`{"signatures":[…],"signed":…}`), which was parsed whole before it was checked. */
const V1_START = Buffer.from('{"signatures":[');
const SIGNATURE_ENTRY = /\{"keyId":"([0-9a-f]{16})","sig":"([A-Za-z0-9_-]{86})"\}/y;
/** Longer than any valid header (MAX_SIGNATURES entries of 113 bytes plus the frame): the only bytes read before verifying. */
export const MAX_HEADER_BYTES = 1024;

/** Depth and value limits for parsing a verified manifest (real ones nest 7 deep and hold ~60 values per module). */
export const MAX_MANIFEST_DEPTH = 32;
export const MAX_MANIFEST_VALUES = 2_000_000;

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

/** The parts of an envelope, split without parsing anything: the signatures from its header, and the raw signed bytes. */
export interface Envelope {
  readonly signatures: readonly ManifestSignature[];
  /** The exact bytes of `signed`, which the signatures cover. */
  readonly signed: Buffer;
}

function invalid(source: string, what: string): LivemodError {
  return new LivemodError('snapshot', ErrorCodes.MANIFEST_INVALID, `manifest from ${source} ${what}`, { source });
}

function startsLike(buffer: Buffer, prefix: Buffer): boolean {
  const length = Math.min(buffer.length, prefix.length);
  return buffer.subarray(0, length).equals(prefix.subarray(0, length));
}

/**
 * Refuses bytes that cannot begin an envelope, from as few as have arrived: a fetch calls it on
 * the first bytes, so a body that is not a manifest is cut after a few dozen bytes, not 16 MiB.
 */
export function checkEnvelopeStart(prefix: Uint8Array, source: string): void {
  const buffer = Buffer.from(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  if (startsLike(buffer, HEADER_START)) return;
  if (buffer.length >= V1_START.length && startsLike(buffer, V1_START)) {
    throw invalid(source, `is a version-1 manifest, which this livemod no longer reads (it reads ${ENVELOPE_FORMAT}); the publisher must publish or serve it again with this livemod version (a cache holding one is brought up to date by the next sync online)`);
  }
  throw invalid(source, `does not start with a livemod envelope ({"envelope":"${ENVELOPE_FORMAT}",…); check that the URL points at a livemod server or published snapshot`);
}

interface Header {
  readonly signatures: readonly ManifestSignature[];
  /** Offset of the signed bytes. */
  readonly signedStart: number;
}

/**
 * The header from the first bytes of an envelope, or null while more are needed (`ended`: no
 * more will come). Only the first MAX_HEADER_BYTES are ever looked at.
 */
function parseHeader(buffer: Buffer, source: string, ended: boolean): Header | null {
  checkEnvelopeStart(buffer, source);
  const text = buffer.subarray(0, MAX_HEADER_BYTES).toString('latin1');
  const close = text.indexOf(HEADER_END, HEADER_START.length);
  if (close === -1) {
    if (!ended && buffer.length < MAX_HEADER_BYTES) return null;
    throw invalid(source, buffer.length < MAX_HEADER_BYTES ? 'ends inside its envelope header (it was cut short)' : `has no end of its signature header within ${MAX_HEADER_BYTES} bytes; it was damaged, or not written by livemod`);
  }
  const signatures: ManifestSignature[] = [];
  let at = HEADER_START.length;
  while (true) {
    SIGNATURE_ENTRY.lastIndex = at;
    const match = SIGNATURE_ENTRY.exec(text);
    if (!match || SIGNATURE_ENTRY.lastIndex > close) throw invalid(source, 'has a malformed signature header (each entry must be {"keyId":"<16 hex digits>","sig":"<86 base64url characters>"}); it was damaged, or not written by livemod');
    signatures.push({ keyId: match[1]!, sig: match[2]! });
    at = SIGNATURE_ENTRY.lastIndex;
    if (at === close) break;
    if (text[at] !== ',' || signatures.length === MAX_SIGNATURES) {
      throw invalid(source, `has a malformed signature header (at most ${MAX_SIGNATURES} entries, then ${JSON.stringify(HEADER_END)}); it was damaged, or not written by livemod`);
    }
    at += 1;
  }
  return { signatures, signedStart: close + HEADER_END.length };
}

/** Splits an envelope into its signatures and signed bytes, reading only the fixed-layout header. */
export function readEnvelope(bytes: Uint8Array, source: string): Envelope {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length > MAX_MANIFEST_BYTES) {
    throw new LivemodError('snapshot', ErrorCodes.TOO_LARGE, `manifest from ${source} is ${buffer.length} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit; this is not a livemod manifest`, { source });
  }
  const { signatures, signedStart } = parseHeader(buffer, source, true)!;
  if (buffer.length < signedStart + 3 || buffer[buffer.length - 1] !== 0x7d || buffer[signedStart] !== 0x7b) {
    throw invalid(source, 'does not hold a signed object that ends with the envelope (it was cut short, or has bytes after it)');
  }
  return { signatures, signed: buffer.subarray(signedStart, buffer.length - 1) };
}

/** The signature by `key` among an envelope's, or ERR_LIVEMOD_WRONG_KEY naming (a few of) the ones there are. */
function signatureBy(signatures: readonly ManifestSignature[], key: VerifyKey, source: string): ManifestSignature {
  const signature = signatures.find((entry) => entry.keyId === key.keyId);
  if (signature) return signature;
  const ids = signatures.map((entry) => entry.keyId);
  throw new LivemodError('snapshot', ErrorCodes.WRONG_KEY, `manifest from ${source} is signed by key id${ids.length > 1 ? 's' : ''} ${listed(ids)}, not by the pinned key ${key.keyId}; pin the publisher's key (--key) or ask the publisher which key they use`, { source, keyId: key.keyId });
}

function namesOtherKey(source: string, manifest: Manifest | null, key: VerifyKey): LivemodError {
  return new LivemodError('snapshot', ErrorCodes.WRONG_KEY, `manifest from ${source} names key id ${manifest?.keyId} but is signed by ${key.keyId}`, { source });
}

function badSignature(source: string, key: VerifyKey): LivemodError {
  return new LivemodError('snapshot', ErrorCodes.SIGNATURE_INVALID, `manifest from ${source} fails its signature check with key ${key.keyId}: it was changed after signing or signed by someone else; do not run it, and tell the publisher`, { source, keyId: key.keyId });
}

/**
 * The checks of openManifest up to the signature, run on a body as it arrives: the header as
 * soon as its bytes are in (a wrong key or a malformed header ends the download there), the
 * signed part hashed chunk by chunk, never copied. A hostile body of 16 MiB then costs its own
 * chunks and a hash; only a body that verifies is joined and parsed (by openManifest).
 */
export class EnvelopeCheck {
  private readonly key: VerifyKey;
  private readonly source: string;
  private head: Buffer = Buffer.alloc(0);
  private signature: ManifestSignature | null = null;
  private readonly hash = nodeCrypto().createHash('sha256');
  /** The last byte seen: it closes the envelope and is not signed, so it is hashed only once another follows. */
  private last = -1;
  private signedBytes = 0;

  constructor(key: VerifyKey, source: string) {
    this.key = key;
    this.source = source;
  }

  push(chunk: Buffer): void {
    if (this.signature) return this.feed(chunk);
    // Until the header is complete the prefix is at most MAX_HEADER_BYTES plus one chunk.
    this.head = this.head.length === 0 ? chunk : Buffer.concat([this.head, chunk]);
    const header = parseHeader(this.head, this.source, false);
    if (!header) return;
    this.signature = signatureBy(header.signatures, this.key, this.source);
    const rest = this.head.subarray(header.signedStart);
    this.head = Buffer.alloc(0);
    this.feed(rest);
  }

  private feed(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (this.last !== -1) this.hash.update(Buffer.of(this.last));
    this.hash.update(bytes.subarray(0, bytes.length - 1));
    this.last = bytes[bytes.length - 1]!;
    this.signedBytes += bytes.length;
  }

  /** After the last chunk: throws unless the body is an envelope whose signature by the pinned key verifies. */
  end(): void {
    if (!this.signature) {
      parseHeader(this.head, this.source, true);
      throw invalid(this.source, 'ends inside its envelope header (it was cut short)');
    }
    if (this.last !== 0x7d || this.signedBytes < 3) throw invalid(this.source, 'does not hold a signed object that ends with the envelope (it was cut short, or has bytes after it)');
    if (!verifyBytes(this.key, signingInputOf(this.hash.digest('hex')), this.signature.sig)) throw badSignature(this.source, this.key);
  }
}

/**
 * JSON.parse of verified bytes, after a check that bounds their nesting and value count: a
 * signed manifest is the publisher's word, but a key holder's bug (or a stolen key) must not be
 * able to make every client build a parse tree of a gigabyte.
 */
export function parseVerified(bytes: Buffer, source: string): unknown {
  // Decoded after the bound when the bytes are bounded: a refusal of 64 MiB then decodes nothing.
  let text: string | undefined;
  let structure: string | null = null;
  if (bytes.length <= BOUND_BY_EXPRESSION) {
    text = bytes.toString('utf8');
    try {
      structure = text.replace(NOT_STRUCTURE, '$1');
    } catch (error) {
      // Escapes that overflow the expression's backtrack stack (millions in one string: no real manifest).
      if (!(error instanceof RangeError)) throw error;
    }
  }
  if (structure === null) boundBytes(bytes, source);
  else boundStructure(structure, source);
  try {
    return JSON.parse(text ?? bytes.toString('utf8'));
  } catch {
    throw invalid(source, 'is not JSON inside its signed part; it was not written by livemod');
  }
}

/**
 * Texts up to this size are bounded through NOT_STRUCTURE, larger ones by the byte loop. Every
 * start reads a manifest, once, so the loop runs in V8's interpreter until it is compiled: 2 ms
 * for a 33 KB manifest (50 modules), 5.7 ms with the parse for 333 KB (500 modules), against 0.5
 * and 3.5 ms through the expression. From about 1 MiB (some 5,000 files) the compiled loop is the
 * faster (1.3 MB: 15 against 17 ms), and it stops at the first value over the limit where the
 * expression reads its whole text first (a hostile 64 MiB of `a,a,…`: 8 ms against 4 s).
 */
const BOUND_BY_EXPRESSION = 1024 * 1024;

/**
 * What is not structure, for one pass that deletes it: a JSON string (a backslash escapes the next
 * character), unrolled; a string that runs to the end of the text without closing, whose opening
 * quote is kept (group 1) to say so; any run of characters that are neither brackets, commas nor
 * quotes. The second choice matters for more than the message: without it, a string that never
 * closes would be tried again from each quote inside it, each try running to the end of the text
 * (quadratic: 10^12 steps for a million escaped quotes). One pass, so the only string it makes is
 * the brackets and commas (7% of a manifest of 500 modules).
 */
const NOT_STRUCTURE = /"[^"\\]*(?:\\[\s\S][^"\\]*)*"|(")[^"\\]*(?:\\[\s\S][^"\\]*)*\\?$|[^[\]{},"]+/g;

function tooDeep(source: string): LivemodError {
  return invalid(source, `nests deeper than ${MAX_MANIFEST_DEPTH} levels; no livemod manifest does, so it is refused unparsed: tell the publisher`);
}

function tooMany(source: string): LivemodError {
  return invalid(source, `holds more than ${MAX_MANIFEST_VALUES} values; it is refused unparsed: tell the publisher`);
}

function unterminated(source: string): LivemodError {
  return invalid(source, 'is not JSON inside its signed part (a string does not end)');
}

/** The nesting and value count of the brackets and commas NOT_STRUCTURE left (a quote: a string that does not end). */
function boundStructure(structure: string, source: string): void {
  let depth = 0;
  let values = 1;
  for (let index = 0; index < structure.length; index += 1) {
    const char = structure.charCodeAt(index);
    if (char === 0x7b || char === 0x5b) {
      depth += 1;
      if (depth > MAX_MANIFEST_DEPTH) throw tooDeep(source);
    } else if (char === 0x7d || char === 0x5d) {
      depth -= 1;
    } else if (char === 0x2c) {
      values += 1;
      if (values > MAX_MANIFEST_VALUES) throw tooMany(source);
    } else {
      throw unterminated(source);
    }
  }
}

/** The same bound in one pass over the bytes, stepping over strings. */
function boundBytes(bytes: Buffer, source: string): void {
  let depth = 0;
  let values = 1;
  for (let index = 0; index < bytes.length; index += 1) {
    const byte = bytes[index]!;
    if (byte === 0x22) {
      // Skip to the closing quote, stepping over each escape (a plain loop: a native indexOf per
      // string cost more in calls than it saved, for a manifest of 100,000 short strings).
      let end = index + 1;
      for (; end < bytes.length; end += 1) {
        const inner = bytes[end]!;
        if (inner === 0x5c) end += 1;
        else if (inner === 0x22) break;
      }
      if (end >= bytes.length) throw unterminated(source);
      index = end;
    } else if (byte === 0x7b || byte === 0x5b) {
      depth += 1;
      if (depth > MAX_MANIFEST_DEPTH) throw tooDeep(source);
    } else if (byte === 0x7d || byte === 0x5d) {
      depth -= 1;
    } else if (byte === 0x2c) {
      values += 1;
      if (values > MAX_MANIFEST_VALUES) throw tooMany(source);
    }
  }
}

/** The envelope header for these signatures, ending where the signed bytes begin. */
function envelopeHeader(signatures: readonly ManifestSignature[]): Buffer {
  return Buffer.from(`${HEADER_START.toString('latin1')}${signatures.map((entry) => `{"keyId":"${entry.keyId}","sig":"${entry.sig}"}`).join(',')}${HEADER_END}`);
}

/** Signs `signed` (a manifest's JSON bytes, taken as they are) and returns the whole envelope. */
export function sealBytes(signed: Uint8Array, key: PublisherKey): Buffer {
  const sig = signBytes(key, signingInput(signed));
  return Buffer.concat([envelopeHeader([{ keyId: key.keyId, sig }]), signed, Buffer.from('}')]);
}

/**
 * Signs a manifest. Its structure is not validated here: the builder makes records by
 * construction, tests hold them to the JSON Schema, and every client validates what it gets.
 * The bytes are canonical JSON of the envelope (keys sort "envelope" < "signatures" < "signed").
 */
export function sealManifest(manifest: Manifest, key: PublisherKey): SealedManifest {
  if (manifest.keyId !== key.keyId) throw new TypeError(`manifest keyId ${manifest.keyId} is not that of the signing key ${key.keyId}`);
  // Assembled once, with a placeholder of the signature's fixed length that the signature then
  // overwrites: the signed text is hashed as bytes in place, never copied again.
  const head = envelopeHeader([{ keyId: key.keyId, sig: 'A'.repeat(SIGNATURE_LENGTH) }]);
  const bytes = Buffer.concat([head, ...manifestChunks(manifest), Buffer.from('}')]);
  const sig = signBytes(key, signingInput(bytes.subarray(head.length, bytes.length - 1)));
  bytes.write(sig, head.length - HEADER_END.length - SIGNATURE_LENGTH - 2, 'latin1');
  const envelope: SignedManifest = { envelope: ENVELOPE_FORMAT, signatures: [{ keyId: key.keyId, sig }], signed: manifest };
  const hash = sha256Hex(bytes);
  return { envelope, bytes, hash, etag: `"${hash}"` };
}

/**
 * Opens manifest bytes against a pinned key: the header, then the signature over the raw signed
 * bytes, and only then a bounded parse and the structure check. Rollback, expiry and the app
 * depend on what the client accepted before, so the caller checks them.
 */
export function openManifest(bytes: Uint8Array, key: VerifyKey, source: string): Manifest {
  const envelope = readEnvelope(bytes, source);
  const signature = signatureBy(envelope.signatures, key, source);
  if (!verifyBytes(key, signingInput(envelope.signed), signature.sig)) throw badSignature(source, key);
  const manifest = validateManifest(parseVerified(envelope.signed, source), source);
  if (manifest.keyId !== key.keyId) throw namesOtherKey(source, manifest, key);
  return manifest;
}

/**
 * Re-opens manifest bytes that openManifest opened with this very key on this machine before,
 * unchanged since (the store knows them by their file's identity: origins.ts): the header and
 * the key it names, then the parse alone. Their signature, the parse bounds and the structure
 * check held then and depend on nothing but the bytes and the key, so they are not run again;
 * this spares a warm start node:crypto (6-10 ms) and the structure walk (3 ms on 200 KB). Never
 * for bytes from the network, nor for bytes known only by their hash.
 *
 * `packages`, where the `packages` value lies in the signed part (packagesRange, recorded when
 * the bytes were first opened), leaves that value unparsed until something reads it: it is
 * nearly all of a program's manifest (206 of 208 KB for bench:deps: 5-7 ms of JSON.parse and
 * the scavenges its objects cost), and a start of a version laid out before never reads it.
 */
export function reopenManifest(bytes: Uint8Array, key: VerifyKey, source: string, packages: readonly [number, number] | null = null): Manifest {
  const envelope = readEnvelope(bytes, source);
  signatureBy(envelope.signatures, key, source);
  const { signed } = envelope;
  const lazy = packages !== null && holdsObject(signed, packages) ? packages : null;
  let manifest: Manifest;
  try {
    manifest = JSON.parse(lazy ? `${signed.toString('utf8', 0, lazy[0])}null${signed.toString('utf8', lazy[1])}` : signed.toString('utf8')) as Manifest;
  } catch {
    throw invalid(source, 'is not JSON inside its signed part; it was not written by livemod');
  }
  if (manifest?.keyId !== key.keyId) throw namesOtherKey(source, manifest, key);
  if (lazy) {
    const settle = (value: unknown): void => void Object.defineProperty(manifest, 'packages', { value, writable: true, enumerable: true, configurable: true });
    Object.defineProperty(manifest, 'packages', {
      enumerable: true,
      configurable: true,
      get() {
        const value: unknown = JSON.parse(signed.toString('utf8', lazy[0], lazy[1]));
        settle(value);
        return value;
      },
      set: settle,
    });
  }
  return manifest;
}

/** Whether `range` of `signed` can be an object value: in bounds, from a `{` to a `}`. */
function holdsObject(signed: Buffer, [start, end]: readonly [number, number]): boolean {
  return Number.isSafeInteger(start) && Number.isSafeInteger(end) && start > 0 && end > start + 1 && end < signed.length && signed[start] === 0x7b && signed[end - 1] === 0x7d;
}

const PACKAGES_KEY = Buffer.from('"packages"');

/**
 * Where the top-level `packages` value of verified manifest bytes lies in their signed part
 * (byte offsets, end excluded), or null when it has none or it is not an object: the
 * top-level members walked byte by byte, strings and their escapes skipped. Run once per
 * version and key, when a start has opened the bytes in full, for reopenManifest.
 */
export function packagesRange(bytes: Uint8Array, source: string): [number, number] | null {
  const { signed } = readEnvelope(bytes, source);
  let depth = 0;
  let expectKey = false;
  let start = -1;
  for (let at = 0; at < signed.length; at++) {
    const byte = signed[at]!;
    if (byte === 0x22) {
      let close = at + 1;
      while (close < signed.length && signed[close] !== 0x22) close += signed[close] === 0x5c ? 2 : 1;
      if (depth === 1 && expectKey) {
        expectKey = false;
        if (start === -1 && close + 1 - at === PACKAGES_KEY.length && signed.compare(PACKAGES_KEY, 0, PACKAGES_KEY.length, at, close + 1) === 0) {
          // Canonical JSON: the colon, then the value, with no blanks between.
          if (signed[close + 1] !== 0x3a || signed[close + 2] !== 0x7b) return null;
          start = close + 2;
        }
      }
      at = close;
    } else if (byte === 0x7b || byte === 0x5b) {
      depth += 1;
      if (depth === 1) expectKey = byte === 0x7b;
    } else if (byte === 0x7d || byte === 0x5d) {
      depth -= 1;
      if (start !== -1 && depth === 1) return [start, at + 1];
    } else if (byte === 0x2c && depth === 1) {
      expectKey = true;
    }
  }
  return null;
}

/**
 * The sealed form of manifest bytes that were verified already (openManifest): what a server
 * replica serves, byte for byte as its publisher signed them, so every replica's ETag agrees.
 */
export function sealedFromVerified(bytes: Buffer, manifest: Manifest, source: string): SealedManifest {
  const hash = sha256Hex(bytes);
  const envelope: SignedManifest = { envelope: ENVELOPE_FORMAT, signatures: readEnvelope(bytes, source).signatures, signed: manifest };
  return { envelope, bytes, hash, etag: `"${hash}"` };
}

/**
 * Reads a manifest without a key, for bytes this machine verified before they were written (the
 * store's records, a publisher's own output folder): never for bytes from the network.
 */
export function readManifestUnverified(bytes: Uint8Array, source: string): Manifest {
  return validateManifest(parseVerified(readEnvelope(bytes, source).signed, source), source);
}

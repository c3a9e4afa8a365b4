// The manifest request: a conditional GET, a bounded read, then the checks that decide whether
// the manifest may be used at all: its signature by the pinned key and its structure
// (openManifest), its expiry and that its version does not go back (checkFreshness).
import { ErrorCodes, LivemodError } from '../errors.ts';
import { CONTENT_TYPES } from '../protocol/index.ts';
import { EnvelopeCheck, openManifest, type Manifest, type VerifyKey } from '../snapshot/index.ts';
import { quoted } from '../text.ts';
import { httpError } from './http-errors.ts';
import { resolveManifestOptions, type ManifestOptions, type ResolvedManifestOptions } from './options.ts';
import { Session, type Exchange } from './transfer.ts';
import { manifestUrl, readCapabilities, snapshotBase, type Capabilities } from './urls.ts';

export type ManifestResult =
  | { readonly status: 'not-modified'; readonly capabilities: Capabilities }
  | {
      readonly status: 'ok';
      readonly manifest: Manifest;
      /** The exact bytes served, which the signature covers: what a store keeps. */
      readonly bytes: Buffer;
      /** The response's ETag, for the next conditional fetch; null when the host sent none. */
      readonly etag: string | null;
      readonly capabilities: Capabilities;
    };

export interface FetchManifestOptions extends Partial<ManifestOptions> {
  /** The publisher's pinned key. */
  readonly key: VerifyKey;
  /** ETag of the manifest the caller holds: an unchanged manifest answers `not-modified`. */
  readonly etag?: string | null;
  /**
   * The caller expects `not-modified` (a start holding a version): a plain-http origin is then
   * asked on a bare socket first, which costs less than node:http; another answer is asked again.
   */
  readonly unchangedLikely?: boolean;
}

/**
 * Refuses a manifest of another app than the one expected at its URL, past its expiry (a frozen
 * feed), or older than one accepted before (a rollback).
 */
export function checkFreshness(manifest: Manifest, source: string, options: { readonly now?: number; readonly minVersion?: number; readonly app?: string } = {}): void {
  if (options.app !== undefined && manifest.name !== options.app) {
    throw new LivemodError('sync', ErrorCodes.WRONG_APP, `manifest from ${source} is the snapshot of app ${quoted(manifest.name)}, not of app ${quoted(options.app)} expected there; refused: the host serves another app's snapshot at this URL (check the URL; if the publisher renamed the app, pin the new name with --app and run \`livemod cache forget <origin>\`)`, { source, name: manifest.name, expected: options.app });
  }
  const now = options.now ?? Date.now();
  if (Date.parse(manifest.expires) <= now) {
    throw new LivemodError('sync', ErrorCodes.EXPIRED, `manifest version ${manifest.version} from ${source} expired at ${manifest.expires}; a stale feed is refused, so the publisher must publish (or re-sign) a new snapshot`, { source, version: manifest.version, expires: manifest.expires });
  }
  if (options.minVersion !== undefined && manifest.version < options.minVersion) {
    throw new LivemodError('sync', ErrorCodes.ROLLBACK, `manifest from ${source} is version ${manifest.version}, older than version ${options.minVersion} this client already accepted; refused as a rollback: the host serves an old snapshot, tell the publisher`, { source, version: manifest.version, minVersion: options.minVersion });
  }
}

/** A key object, or parsePublicKey's getter that makes one when a signature is first checked (not called here). */
function keyObjectGiven(key: VerifyKey): boolean {
  const own = Object.getOwnPropertyDescriptor(key, 'publicKey');
  if (own?.get) return true;
  const value: unknown = own ? own.value : key.publicKey;
  return typeof value === 'object' && value !== null;
}

export function requireKey(key: VerifyKey | undefined): void {
  if (typeof key !== 'object' || key === null || typeof key.keyId !== 'string' || !keyObjectGiven(key)) {
    throw new LivemodError('sync', ErrorCodes.KEY_MISSING, "no publisher key to verify the manifest with; pin the publisher's key: parsePublicKey('ed25519:…') (the string `livemod keygen` prints)");
  }
}

/**
 * The body, bounded, checked as it arrives (EnvelopeCheck): a body that is not an envelope, or
 * not one signed by the pinned key, is refused at its first bytes; one whose signature fails is
 * refused once hashed, never having been copied or parsed.
 */
async function readEnvelopeBody(exchange: Exchange, key: VerifyKey, maxBytes: number, url: string): Promise<Buffer> {
  const check = new EnvelopeCheck(key, url);
  const parts: Buffer[] = [];
  let length = 0;
  // A throw inside the loop ends the body's iteration, which drops the connection.
  for await (const chunk of exchange.body(maxBytes, 'for a manifest', 'the URL does not serve a livemod manifest, or raise maxBytes for a huge one')) {
    check.push(chunk);
    parts.push(chunk);
    length += chunk.length;
  }
  check.end();
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
}

/** @internal One session's manifest fetch, shared by fetchManifest and fetchSnapshot. */
export async function requestManifest(session: Session, base: URL, key: VerifyKey, etag: string | null, options: ResolvedManifestOptions, unchangedLikely = false): Promise<ManifestResult> {
  const url = manifestUrl(base);
  const exchange = await session.open({
    kind: 'manifest',
    method: 'GET',
    url,
    headers: { accept: CONTENT_TYPES.json, ...(etag ? { 'if-none-match': etag } : {}) },
    ...(etag && unchangedLikely ? { notModifiedLikely: true } : {}),
  });
  const { status, headers } = exchange.response;
  if (status === 304 && etag) {
    exchange.discard();
    // A livemod server sends its capability headers with a 304 too: a warm client still learns its channel.
    return { status: 'not-modified', capabilities: readCapabilities(headers, exchange.response.url || url, url) };
  }
  if (status !== 200) throw await httpError(exchange, { kind: 'manifest' });
  const bytes = await readEnvelopeBody(exchange, key, options.maxBytes, url);
  const manifest = openManifest(bytes, key, url);
  checkFreshness(manifest, url, options);
  return { status: 'ok', manifest, bytes, etag: headers.get('etag'), capabilities: readCapabilities(headers, exchange.response.url || url, url) };
}

/**
 * Fetches and verifies a snapshot's manifest: signature by `key`, structure, expiry, and
 * (with `minVersion`) no rollback. With `etag`, an unchanged manifest costs a 304.
 * @example
 * const key = parsePublicKey('ed25519:…');
 * const first = await fetchManifest('https://tools.example/', { key });
 * if (first.status === 'ok') {
 *   const again = await fetchManifest('https://tools.example/', { key, etag: first.etag });
 * }
 */
export async function fetchManifest(baseUrl: string | URL, options: FetchManifestOptions): Promise<ManifestResult> {
  const { key, etag, unchangedLikely, ...rest } = options;
  requireKey(key);
  const resolved = resolveManifestOptions(rest);
  return requestManifest(new Session(resolved), snapshotBase(baseUrl), key, etag ?? null, resolved, unchangedLikely === true);
}

// Channel (WebSocket) messages, one JSON text frame each. Both directions are discriminated
// unions on `type`; peers parse what they receive with the functions below and ignore fields
// they do not know, so either side can add optional fields without a protocol bump.

/** First message on every channel: the version the server serves right now (null before any publish). */
export interface HelloMessage {
  readonly type: 'hello';
  readonly protocol: number;
  readonly version: number | null;
  readonly etag: string | null;
}

/** Sent on every publish: fetch the manifest (its ETag is `etag`) and sync to `version`. */
export interface VersionMessage {
  readonly type: 'version';
  readonly version: number;
  readonly etag: string;
  /** sha256 hex of the manifest bytes, so a client can tell a stale cache from the announced one. */
  readonly manifestHash: string;
  /**
   * The signed manifest itself (the envelope's exact text), when it is small enough to travel in
   * the frame (INLINE_MANIFEST_MAX_FRAME): a client verifies it as it would a fetched one and
   * needs no request for it. Absent: fetch it.
   */
  readonly manifest?: string;
}

/**
 * A version message carries its manifest only while the whole frame stays within this many
 * bytes, well under the 64 KiB a client accepts by default: a manifest of a few hundred modules.
 */
export const INLINE_MANIFEST_MAX_FRAME: number = 48 * 1024;

export interface PongMessage {
  readonly type: 'pong';
}

/** The server refused a client message; the channel stays open. */
export interface ErrorMessage {
  readonly type: 'error';
  readonly code: string;
  readonly message: string;
}

export type ServerMessage = HelloMessage | VersionMessage | PongMessage | ErrorMessage;

/** What the client runs now. `swap` is its report of the last swap, stored and shown as sent. */
export interface StatusMessage {
  readonly type: 'status';
  readonly version: number;
  readonly swap?: Readonly<Record<string, unknown>>;
  /** Sent by a server replica following this server: it is counted apart from the clients. */
  readonly role?: 'replica';
}

export interface PingMessage {
  readonly type: 'ping';
}

export type ClientMessage = StatusMessage | PingMessage;

export type ParseResult<T> = { readonly ok: true; readonly message: T } | { readonly ok: false; readonly reason: string };

type Fields = Record<string, unknown>;

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

function isVersion(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isPlainObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typed(value: unknown): { type: string; fields: Fields } | string {
  if (!isPlainObject(value)) return 'a message must be a JSON object';
  if (typeof value.type !== 'string') return 'a message must have a string "type"';
  return { type: value.type, fields: value };
}

/** Validates a decoded client → server message. */
export function parseClientMessage(value: unknown): ParseResult<ClientMessage> {
  const head = typed(value);
  if (typeof head === 'string') return fail(head);
  const { fields } = head;
  switch (head.type) {
    case 'ping':
      return { ok: true, message: { type: 'ping' } };
    case 'status': {
      if (!isVersion(fields.version)) return fail('"status" needs "version": the integer version the client runs (0 for none)');
      if (fields.swap !== undefined && !isPlainObject(fields.swap)) return fail('"status" field "swap" must be an object when present');
      if (fields.role !== undefined && fields.role !== 'replica') return fail('"status" field "role" must be "replica" when present');
      const swap = fields.swap as Fields | undefined;
      return { ok: true, message: { type: 'status', version: fields.version, ...(swap ? { swap } : {}), ...(fields.role === 'replica' ? { role: 'replica' as const } : {}) } };
    }
    default:
      return fail(`unknown message type ${JSON.stringify(head.type).slice(0, 40)}; this server understands "status" and "ping"`);
  }
}

/** Validates a decoded server → client message. */
export function parseServerMessage(value: unknown): ParseResult<ServerMessage> {
  const head = typed(value);
  if (typeof head === 'string') return fail(head);
  const { fields } = head;
  switch (head.type) {
    case 'hello': {
      const { protocol, version, etag } = fields;
      if (!isVersion(protocol)) return fail('"hello" needs an integer "protocol"');
      if (version !== null && !isVersion(version)) return fail('"hello" field "version" must be an integer or null');
      if (etag !== null && typeof etag !== 'string') return fail('"hello" field "etag" must be a string or null');
      return { ok: true, message: { type: 'hello', protocol, version, etag } };
    }
    case 'version': {
      const { version, etag, manifestHash, manifest } = fields;
      if (!isVersion(version) || typeof etag !== 'string' || typeof manifestHash !== 'string') {
        return fail('"version" needs an integer "version" and string "etag" and "manifestHash"');
      }
      if (manifest !== undefined && typeof manifest !== 'string') return fail('"version" field "manifest" must be a string (the signed manifest) when present');
      return { ok: true, message: { type: 'version', version, etag, manifestHash, ...(manifest !== undefined ? { manifest } : {}) } };
    }
    case 'pong':
      return { ok: true, message: { type: 'pong' } };
    case 'error': {
      const { code, message } = fields;
      if (typeof code !== 'string' || typeof message !== 'string') return fail('"error" needs string "code" and "message"');
      return { ok: true, message: { type: 'error', code, message } };
    }
    default:
      return fail(`unknown message type ${JSON.stringify(head.type).slice(0, 40)}`);
  }
}

/** JSON-decodes one text frame, then validates it with `parse`. */
export function decodeMessage<T>(text: string, parse: (value: unknown) => ParseResult<T>): ParseResult<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail('the frame is not JSON');
  }
  return parse(value);
}

export function encodeMessage(message: ServerMessage | ClientMessage): string {
  return JSON.stringify(message);
}

// The http server's 'upgrade' event: path and token are checked before the WebSocket handshake,
// so an unauthorized client gets a plain HTTP 401 and never an open channel.
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { ErrorCodes, type ErrorCode } from '../errors.ts';
import { CONTENT_TYPES, PATHS, type ErrorBody } from '../protocol/index.ts';
import type { TokenCheck } from './auth.ts';
import type { ChannelHub } from './channel.ts';
import { UNAUTHORIZED_MESSAGE } from './handler.ts';
import { parseRequestPath } from './request-path.ts';

function reject(socket: Duplex, status: number, code: ErrorCode, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ error: { code, message } } satisfies ErrorBody);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    'Connection: close',
    `Content-Type: ${CONTENT_TYPES.json}`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

export type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export function createUpgradeHandler(authorized: TokenCheck, hub: ChannelHub): UpgradeListener {
  return (req, socket, head) => {
    // A client that resets mid-handshake must not become an unhandled 'error'.
    socket.on('error', () => socket.destroy());
    const target = parseRequestPath(req.url);
    if (!target.ok) {
      reject(socket, target.status, target.status === 414 ? ErrorCodes.TOO_LARGE : ErrorCodes.BAD_REQUEST, `malformed request target: ${target.reason}`);
    } else if (!authorized(req.headers.authorization)) {
      reject(socket, 401, ErrorCodes.UNAUTHORIZED, UNAUTHORIZED_MESSAGE, { 'WWW-Authenticate': 'Bearer' });
    } else if (target.path !== PATHS.channel) {
      reject(socket, 404, ErrorCodes.NOT_FOUND, `only ${PATHS.channel} accepts upgrades`);
    } else if (hub.isClosed) {
      reject(socket, 503, ErrorCodes.SERVE_FAILED, 'the server is shutting down; reconnect to its replacement');
    } else {
      hub.accept(req, socket, head);
    }
  };
}

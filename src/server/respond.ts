// Response helpers: every error is the protocol's JSON error body, every response says
// `nosniff`, and a HEAD response carries the GET headers without the body.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { ErrorCode } from '../errors.ts';
import { CONTENT_TYPES, type ErrorBody, type WireError } from '../protocol/index.ts';

export type Response = ServerResponse<IncomingMessage>;

export function send(req: IncomingMessage, res: Response, status: number, headers: OutgoingHttpHeaders, body?: string | Buffer): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { 'x-content-type-options': 'nosniff', ...headers, ...(bytes ? { 'content-length': bytes.byteLength } : {}) });
  if (req.method === 'HEAD' || !bytes) res.end();
  else res.end(bytes);
}

export function sendError(req: IncomingMessage, res: Response, status: number, code: ErrorCode, message: string, headers: OutgoingHttpHeaders = {}, extra: Partial<WireError> = {}): void {
  const body: ErrorBody = { error: { ...extra, code, message } };
  send(req, res, status, { 'content-type': CONTENT_TYPES.json, 'cache-control': 'no-store', ...headers }, JSON.stringify(body));
}

// GET/HEAD /status: the ServerStatus JSON.
import type { IncomingMessage } from 'node:http';
import { CONTENT_TYPES, type ServerStatus } from '../../protocol/index.ts';
import { send, type Response } from '../respond.ts';

export function serveStatus(req: IncomingMessage, res: Response, status: ServerStatus): void {
  send(req, res, 200, { 'content-type': CONTENT_TYPES.json, 'cache-control': 'no-store' }, JSON.stringify(status));
}

// GET/HEAD /manifest.json: the current snapshot's exact signed bytes, revalidated by ETag.
import type { IncomingMessage } from 'node:http';
import { ErrorCodes } from '../../errors.ts';
import { CONTENT_TYPES, HEADERS, PATHS } from '../../protocol/index.ts';
import type { HandlerContext } from '../context.ts';
import { noneMatch } from '../etag.ts';
import { send, sendError, type Response } from '../respond.ts';

export function serveManifest(req: IncomingMessage, res: Response, context: HandlerContext): void {
  const current = context.snapshots.current;
  if (!current) {
    sendError(req, res, 503, ErrorCodes.NO_SNAPSHOT, 'no snapshot is published yet (the server is still building it); retry shortly', { 'retry-after': '1' });
    return;
  }
  const { sealed } = current.snapshot;
  // no-cache, not no-store: caches keep it but revalidate, so an update is seen at once and costs a 304.
  const headers = {
    etag: sealed.etag,
    'cache-control': 'no-cache',
    [HEADERS.batch]: PATHS.batch,
    [HEADERS.channel]: PATHS.channel,
  };
  if (noneMatch(req.headers['if-none-match'], sealed.etag)) {
    send(req, res, 304, headers);
    return;
  }
  send(req, res, 200, { ...headers, 'content-type': CONTENT_TYPES.json }, sealed.bytes);
}

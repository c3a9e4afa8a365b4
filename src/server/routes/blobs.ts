// GET/HEAD /blobs/<hash>: one blob from the servable snapshots. A hash names its bytes forever,
// so the response is immutable; with tokens it is `private`, since a shared cache would hand
// it to anyone who knows the hash.
import type { IncomingMessage } from 'node:http';
import { ErrorCodes } from '../../errors.ts';
import { CONTENT_TYPES } from '../../protocol/index.ts';
import { HASH_PATTERN, shortHash } from '../../snapshot/index.ts';
import type { HandlerContext } from '../context.ts';
import { noneMatch } from '../etag.ts';
import { send, sendError, type Response } from '../respond.ts';

export function serveBlob(req: IncomingMessage, res: Response, context: HandlerContext, hash: string): void {
  if (!HASH_PATTERN.test(hash)) {
    sendError(req, res, 400, ErrorCodes.BAD_REQUEST, `${JSON.stringify(hash.slice(0, 80))} is not a blob hash; blob paths are /blobs/<64 lowercase hex digits (sha256)>`);
    return;
  }
  const bytes = context.snapshots.blob(hash);
  if (!bytes) {
    sendError(req, res, 404, ErrorCodes.BLOB_UNKNOWN, `blob ${shortHash(hash)} is in none of the last ${context.options.keepVersions} snapshots this server published; fetch /manifest.json again and request the blobs it lists`);
    return;
  }
  const etag = `"${hash}"`;
  const headers = {
    etag,
    'cache-control': `${context.options.tokens.length > 0 ? 'private' : 'public'}, max-age=31536000, immutable`,
  };
  if (noneMatch(req.headers['if-none-match'], etag)) {
    send(req, res, 304, headers);
    return;
  }
  send(req, res, 200, { ...headers, 'content-type': CONTENT_TYPES.blob }, bytes);
}

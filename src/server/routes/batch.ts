// POST /batch: many blobs in one response, so a cold client needs the manifest plus one request.
// Blobs are looked up before the first byte is sent, so the response is one consistent set even
// if a publish lands while it streams; a slow reader is cut at responseTimeoutMs.
import type { IncomingMessage } from 'node:http';
import { ErrorCodes } from '../../errors.ts';
import { CONTENT_TYPES, batchResponseLength } from '../../protocol/index.ts';
import { shortHash } from '../../snapshot/index.ts';
import { parseBatchRequest } from '../batch-request.ts';
import { writeBatch, type BatchItem } from '../batch-writer.ts';
import { readBody } from '../body.ts';
import type { HandlerContext } from '../context.ts';
import { sendError, type Response } from '../respond.ts';

const LISTED_UNKNOWN = 10;

export async function serveBatch(req: IncomingMessage, res: Response, context: HandlerContext): Promise<void> {
  const { options, snapshots } = context;
  const body = await readBody(req, options.maxRequestBodyBytes);
  if (!body.ok) {
    if (body.reason === 'aborted') res.destroy();
    // Connection: close, so the unread rest of the body is dropped with the socket, never read.
    else sendError(req, res, 413, ErrorCodes.TOO_LARGE, `the batch body is over this server's ${options.maxRequestBodyBytes}-byte limit; request fewer hashes at a time`, { connection: 'close' });
    return;
  }
  const parsed = parseBatchRequest(body.body, options.maxBatchHashes);
  if (!parsed.ok) {
    sendError(req, res, parsed.status, parsed.code, parsed.message);
    return;
  }
  const items: BatchItem[] = [];
  const unknown: string[] = [];
  for (const hash of parsed.hashes) {
    const bytes = snapshots.blob(hash);
    if (bytes) items.push({ hash, bytes });
    else unknown.push(hash);
  }
  if (unknown.length > 0) {
    const message = `${unknown.length} requested blob${unknown.length === 1 ? '' : 's'} (${unknown.slice(0, 3).map(shortHash).join(', ')}${unknown.length > 3 ? ', …' : ''}) are in none of the last ${options.keepVersions} snapshots; fetch /manifest.json again and request the blobs it lists`;
    sendError(req, res, 404, ErrorCodes.BLOB_UNKNOWN, message, {}, { unknown: unknown.slice(0, LISTED_UNKNOWN), unknownCount: unknown.length });
    return;
  }
  const length = batchResponseLength(items.map((item) => ({ hash: item.hash, length: item.bytes.byteLength })));
  res.writeHead(200, { 'content-type': CONTENT_TYPES.batch, 'content-length': length, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  const started = Date.now();
  const deadline = setTimeout(() => {
    options.log(`[livemod serve] batch of ${items.length} blobs to ${req.socket.remoteAddress} still unsent after ${options.responseTimeoutMs} ms (${res.writableLength} bytes queued); connection cut`);
    res.destroy();
  }, options.responseTimeoutMs);
  res.once('close', () => clearTimeout(deadline));
  const complete = await writeBatch(res, items);
  options.log(`[livemod serve] batch: ${items.length} blobs, ${length} bytes in ${Date.now() - started} ms${complete ? '' : ' (client went away)'}`);
}

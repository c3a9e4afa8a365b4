// Streams a batch response under backpressure: at most one coalescing chunk (or one large blob)
// is queued beyond the socket's buffer, however large the response. Small frames are joined into
// ~64 KiB writes, because thousands of tiny writes cost more than the copy.
import { batchFrameHeader } from '../protocol/index.ts';
import type { Response } from './respond.ts';

const COALESCE_BYTES = 64 * 1024;

export interface BatchItem {
  readonly hash: string;
  readonly bytes: Buffer;
}

/** Resolves true when the response can take more, false when it closed first. */
function drained(res: Response): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      res.off('drain', onDrain).off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    res.on('drain', onDrain).on('close', onClose);
  });
}

/** Writes every frame and ends the response; resolves false if the client went away midway. */
export async function writeBatch(res: Response, items: readonly BatchItem[]): Promise<boolean> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const write = async (chunk: Buffer): Promise<boolean> => {
    if (res.destroyed) return false;
    return res.write(chunk) || (await drained(res));
  };
  const flush = async (): Promise<boolean> => {
    if (pendingBytes === 0) return true;
    const chunk = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    return write(chunk);
  };
  for (const item of items) {
    const header = Buffer.from(batchFrameHeader(item.hash, item.bytes.byteLength), 'latin1');
    pending.push(header);
    pendingBytes += header.length;
    if (item.bytes.byteLength >= COALESCE_BYTES) {
      if (!(await flush()) || !(await write(item.bytes))) return false;
      continue;
    }
    pending.push(item.bytes);
    pendingBytes += item.bytes.byteLength;
    if (pendingBytes >= COALESCE_BYTES && !(await flush())) return false;
  }
  if (!(await flush())) return false;
  res.end();
  return true;
}

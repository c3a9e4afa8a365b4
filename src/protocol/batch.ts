// The `POST /batch` response framing: for each blob, the ASCII line `<hash> <length>\n`, then
// exactly `length` bytes. Length-prefixed rather than multipart, so a reader never scans blob
// bytes for a boundary and knows the size of each blob before it arrives.
import { ErrorCodes, LivemodError } from '../errors.ts';

export interface BatchFrame {
  readonly hash: string;
  readonly bytes: Buffer;
}

const HEADER_LINE = /^([0-9a-f]{64}) (0|[1-9][0-9]{0,15})$/;
// 64 hex digits, a space, up to 16 digits: anything longer without a newline is not a header.
const MAX_HEADER_BYTES = 82;

export function batchFrameHeader(hash: string, length: number): string {
  return `${hash} ${length}\n`;
}

/** Exact byte length of a batch response for blobs of these sizes, for `Content-Length`. */
export function batchResponseLength(frames: ReadonlyArray<{ readonly hash: string; readonly length: number }>): number {
  let total = 0;
  for (const frame of frames) total += Buffer.byteLength(batchFrameHeader(frame.hash, frame.length)) + frame.length;
  return total;
}

function malformed(source: string, what: string): LivemodError {
  return new LivemodError('sync', ErrorCodes.PROTOCOL, `batch response from ${source} ${what}; the server is not a livemod server of this protocol, or the response was cut`, { source });
}

/**
 * Reads frames from a batch response body as they arrive. Each frame's bytes are joined once,
 * when complete; hashes are not checked here (the store verifies every blob it keeps).
 * `maxFrameBytes` refuses a frame before buffering it.
 */
export async function* readBatchFrames(body: AsyncIterable<Uint8Array>, source: string, maxFrameBytes: number = Number.MAX_SAFE_INTEGER): AsyncGenerator<BatchFrame> {
  let header: Buffer[] = [];
  let headerBytes = 0;
  let frame: { hash: string; length: number; parts: Buffer[]; have: number } | undefined;
  for await (const chunk of body) {
    let data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (data.length > 0) {
      if (!frame) {
        const newline = data.indexOf(0x0a);
        const take = newline === -1 ? data : data.subarray(0, newline);
        headerBytes += take.length;
        if (headerBytes > MAX_HEADER_BYTES) throw malformed(source, 'has a frame header longer than a hash and a length');
        header.push(take);
        if (newline === -1) break;
        data = data.subarray(newline + 1);
        const line = Buffer.concat(header).toString('latin1');
        header = [];
        headerBytes = 0;
        const match = HEADER_LINE.exec(line);
        if (!match) throw malformed(source, `has a frame header ${JSON.stringify(line.slice(0, 90))} that is not "<hash> <length>"`);
        const length = Number(match[2]);
        if (length > maxFrameBytes) throw malformed(source, `announces a ${length}-byte blob, over the ${maxFrameBytes}-byte limit`);
        frame = { hash: match[1]!, length, parts: [], have: 0 };
        // An empty blob is complete with its header, even at the very end of the body.
        if (length === 0) {
          yield { hash: frame.hash, bytes: Buffer.alloc(0) };
          frame = undefined;
          continue;
        }
      }
      const take = Math.min(frame.length - frame.have, data.length);
      if (take > 0) {
        frame.parts.push(data.subarray(0, take));
        frame.have += take;
        data = data.subarray(take);
      }
      if (frame.have === frame.length) {
        yield { hash: frame.hash, bytes: frame.parts.length === 1 ? frame.parts[0]! : Buffer.concat(frame.parts, frame.length) };
        frame = undefined;
      }
    }
  }
  if (frame) throw malformed(source, `ends inside blob ${frame.hash.slice(0, 12)}… (${frame.have} of ${frame.length} bytes)`);
  if (headerBytes > 0) throw malformed(source, 'ends inside a frame header');
}

// Blobs from a livemod server in one `POST` to its batch route. The response is framed as
// `<hash> <length>\n` + bytes (src/protocol/batch.ts). It is read here with its own loop rather
// than with the protocol's readBatchFrames because every frame header is checked against the
// request before any of its bytes are read: a hash not asked for, sent twice, or with a length
// other than the manifest's is refused at its header, so a hostile server can make the client
// buffer at most the blobs it really wants.
import { ErrorCodes, LivemodError } from '../errors.ts';
import { CONTENT_TYPES, batchResponseLength, type BatchRequest } from '../protocol/index.ts';
import { shortHash } from '../snapshot/index.ts';
import { quoted } from '../text.ts';
import { httpError } from './http-errors.ts';
import type { ResolvedBlobOptions } from './options.ts';
import type { Session } from './transfer.ts';
import { verifyBlob, type BlobEntry } from './verify.ts';

const NEWLINE = 0x0a;
const FRAME_HEADER = /^([0-9a-f]{64}) (0|[1-9][0-9]{0,15})$/;
/** 64 hex digits, a space, up to 16 digits. */
const MAX_FRAME_HEADER = 81;

function malformed(url: string, what: string): LivemodError {
  return new LivemodError('sync', ErrorCodes.PROTOCOL, `batch response from ${url} ${what}; the server does not speak this livemod protocol, or something between rewrote the response`, { url });
}

/**
 * Takes the body chunk by chunk and parses synchronously within each, so a thousand small
 * frames cost a thousand loop turns, not a thousand awaits. Each blob is verified as it completes.
 */
class FrameParser {
  private readonly url: string;
  private readonly pending: Map<string, BlobEntry>;
  private readonly into: Map<string, Buffer>;
  private header: Buffer[] = [];
  private headerBytes = 0;
  private frame: { entry: BlobEntry; parts: Buffer[]; have: number } | null = null;

  constructor(url: string, wanted: readonly BlobEntry[], into: Map<string, Buffer>) {
    this.url = url;
    this.pending = new Map(wanted.map((entry) => [entry.ref.hash, entry]));
    this.into = into;
  }

  push(chunk: Buffer): void {
    let data = chunk;
    while (data.length > 0) {
      if (!this.frame) {
        if (this.pending.size === 0) throw malformed(this.url, 'goes on after the last blob asked for');
        const newline = data.indexOf(NEWLINE);
        const headerPart = newline === -1 ? data : data.subarray(0, newline);
        this.headerBytes += headerPart.length;
        if (this.headerBytes > MAX_FRAME_HEADER) throw malformed(this.url, 'has a frame header longer than "<hash> <length>"');
        if (newline === -1) {
          this.header.push(headerPart);
          return;
        }
        const line = (this.header.length === 0 ? headerPart : Buffer.concat([...this.header, headerPart])).toString('latin1');
        this.header = [];
        this.headerBytes = 0;
        data = data.subarray(newline + 1);
        this.startFrame(line);
      }
      // An empty blob is complete with its header: the next frame's header may follow in this chunk.
      const frame = this.frame;
      if (!frame) continue;
      const take = Math.min(frame.entry.ref.size - frame.have, data.length);
      if (take > 0) {
        frame.parts.push(data.subarray(0, take));
        frame.have += take;
        data = data.subarray(take);
      }
      if (frame.have === frame.entry.ref.size) this.completeFrame(frame);
    }
  }

  private startFrame(line: string): void {
    const match = FRAME_HEADER.exec(line);
    if (!match) throw malformed(this.url, `has a frame header ${quoted(line, 90)} that is not "<hash> <length>"`);
    const hash = match[1]!;
    const length = Number(match[2]);
    const entry = this.pending.get(hash);
    if (!entry) throw malformed(this.url, `sends blob ${shortHash(hash)}, which was ${this.into.has(hash) ? 'sent already' : 'not asked for'}`);
    if (length !== entry.ref.size) throw malformed(this.url, `announces ${length} bytes for blob ${shortHash(hash)} of ${quoted(entry.module)}, which the manifest says is ${entry.ref.size} bytes`);
    this.pending.delete(hash);
    this.frame = { entry, parts: [], have: 0 };
    // An empty blob is complete with its header, even at the very end of the body.
    if (length === 0) this.completeFrame(this.frame);
  }

  private completeFrame(frame: { entry: BlobEntry; parts: Buffer[]; have: number }): void {
    const bytes = frame.parts.length === 1 ? frame.parts[0]! : Buffer.concat(frame.parts, frame.have);
    verifyBlob(frame.entry, bytes, this.url);
    this.into.set(frame.entry.ref.hash, bytes);
    this.frame = null;
  }

  end(): void {
    if (this.frame) throw malformed(this.url, `ends inside blob ${shortHash(this.frame.entry.ref.hash)} of ${quoted(this.frame.entry.module)} (${this.frame.have} of ${this.frame.entry.ref.size} bytes)`);
    if (this.headerBytes > 0) throw malformed(this.url, 'ends inside a frame header');
    if (this.pending.size > 0) throw malformed(this.url, `ends with ${this.pending.size} blob(s) not sent (the first for ${quoted(this.pending.values().next().value!.module)})`);
  }
}

async function fetchOneBatch(session: Session, url: string, wanted: readonly BlobEntry[], into: Map<string, Buffer>): Promise<void> {
  const request: BatchRequest = { hashes: wanted.map((entry) => entry.ref.hash) };
  const exchange = await session.open({
    kind: 'batch',
    method: 'POST',
    url,
    headers: { 'content-type': CONTENT_TYPES.json, accept: CONTENT_TYPES.batch },
    body: JSON.stringify(request),
  });
  const { status, headers } = exchange.response;
  if (status !== 200) throw await httpError(exchange, { kind: 'batch' });
  if (!(headers.get('content-type') ?? '').startsWith(CONTENT_TYPES.batch)) {
    exchange.discard();
    throw malformed(url, `has content type ${quoted(headers.get('content-type') ?? '', 80)}, not ${CONTENT_TYPES.batch}`);
  }
  // The exact length of a correct answer: any byte more is refused as it arrives.
  const limit = batchResponseLength(wanted.map((entry) => ({ hash: entry.ref.hash, length: entry.ref.size })));
  const parser = new FrameParser(url, wanted, into);
  for await (const chunk of exchange.body(limit, 'that the manifest accounts for', 'the host sends more than the signed manifest describes, so it is refused')) parser.push(chunk);
  parser.end();
}

/** Fetches `wanted` from a livemod server's batch route, in as few POSTs as its hash limit allows (one, normally). */
export async function fetchBatch(session: Session, url: string, wanted: readonly BlobEntry[], options: ResolvedBlobOptions, into: Map<string, Buffer>): Promise<void> {
  for (let start = 0; start < wanted.length; start += options.maxBatchHashes) {
    await fetchOneBatch(session, url, wanted.slice(start, start + options.maxBatchHashes), into);
  }
}

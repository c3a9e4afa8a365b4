// Blobs from a livemod server in one `POST` to its batch route. The response is framed as
// `<hash> <length>\n` + bytes (src/protocol/batch.ts). It is read here with its own loop rather
// than with the protocol's readBatchFrames because every frame header is checked against the
// request before any of its bytes are read: a hash not asked for, sent twice, or with a length
// other than the manifest's is refused at its header, so a hostile server can make the client
// buffer at most the blobs it really wants.
import { ErrorCodes, LivemodError } from '../errors.ts';
import { CONTENT_TYPES, batchResponseLength, type BatchRequest } from '../protocol/index.ts';
import { shortHash } from '../snapshot/index.ts';
import { httpError } from './http-errors.ts';
import type { ResolvedBlobOptions } from './options.ts';
import { ByteReader } from './reader.ts';
import type { Session } from './transfer.ts';
import { verifyBlob, type BlobEntry } from './verify.ts';

const NEWLINE = Buffer.from('\n');
const FRAME_HEADER = /^([0-9a-f]{64}) (0|[1-9][0-9]{0,15})$/;
/** 64 hex digits, a space, up to 16 digits. */
const MAX_FRAME_HEADER = 81;

function malformed(url: string, what: string): LivemodError {
  return new LivemodError('sync', ErrorCodes.PROTOCOL, `batch response from ${url} ${what}; the server does not speak this livemod protocol, or something between rewrote the response`, { url });
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
    throw malformed(url, `has content type "${headers.get('content-type')}", not ${CONTENT_TYPES.batch}`);
  }
  // The exact length of a correct answer: any byte more is refused as it arrives.
  const limit = batchResponseLength(wanted.map((entry) => ({ hash: entry.ref.hash, length: entry.ref.size })));
  const pending = new Map(wanted.map((entry) => [entry.ref.hash, entry]));
  const reader = new ByteReader(exchange.body(limit, 'that the manifest accounts for', 'the host sends more than the signed manifest describes, so it is refused'));
  try {
    while (pending.size > 0) {
      const line = await reader.readUntil(NEWLINE, MAX_FRAME_HEADER);
      if (line === null) {
        throw malformed(url, (await reader.atEnd()) ? `ends with ${pending.size} blob(s) not sent (the first for "${pending.values().next().value!.module}")` : 'has a frame header that is not "<hash> <length>"');
      }
      const match = FRAME_HEADER.exec(line.toString('latin1'));
      if (!match) throw malformed(url, `has a frame header ${JSON.stringify(line.toString('latin1').slice(0, 90))} that is not "<hash> <length>"`);
      const hash = match[1]!;
      const length = Number(match[2]);
      const entry = pending.get(hash);
      if (!entry) throw malformed(url, `sends blob ${shortHash(hash)}, which was ${into.has(hash) ? 'sent already' : 'not asked for'}`);
      if (length !== entry.ref.size) throw malformed(url, `announces ${length} bytes for blob ${shortHash(hash)} of "${entry.module}", which the manifest says is ${entry.ref.size} bytes`);
      pending.delete(hash);
      const bytes = await reader.readExact(length);
      if (bytes === null) throw malformed(url, `ends inside blob ${shortHash(hash)} of "${entry.module}"`);
      verifyBlob(entry, bytes, url);
      into.set(hash, bytes);
    }
    if (!(await reader.atEnd())) throw malformed(url, 'goes on after the last blob asked for');
  } finally {
    await reader.close();
  }
}

/** Fetches `wanted` from a livemod server's batch route, in as few POSTs as its hash limit allows (one, normally). */
export async function fetchBatch(session: Session, url: string, wanted: readonly BlobEntry[], options: ResolvedBlobOptions, into: Map<string, Buffer>): Promise<void> {
  for (let start = 0; start < wanted.length; start += options.maxBatchHashes) {
    await fetchOneBatch(session, url, wanted.slice(start, start + options.maxBatchHashes), into);
  }
}

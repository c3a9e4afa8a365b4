// The last resort: one `GET blobs/<hash>` per blob, a few at a time. Any host that serves the
// snapshot's files answers these, so a host whose Range support is missing or broken still works,
// only with more requests. The first failure stops new requests from starting and is thrown
// once those in flight have settled.
import { CONTENT_TYPES } from '../protocol/index.ts';
import { httpError } from './http-errors.ts';
import type { ResolvedBlobOptions } from './options.ts';
import type { Session } from './transfer.ts';
import { blobUrl } from './urls.ts';
import { verifyBlob, type BlobEntry } from './verify.ts';

async function fetchOne(session: Session, base: URL, entry: BlobEntry): Promise<Buffer> {
  const url = blobUrl(base, entry.ref.hash);
  const exchange = await session.open({ kind: 'blob', method: 'GET', url, headers: { accept: CONTENT_TYPES.blob } });
  if (exchange.response.status !== 200) throw await httpError(exchange, { kind: 'blob', module: entry.module });
  const bytes = await exchange.readAll(entry.ref.size, `for a blob the manifest says is ${entry.ref.size} bytes`, 'the host sends more than the signed manifest describes, so it is refused');
  verifyBlob(entry, bytes, url);
  return bytes;
}

export async function fetchEach(session: Session, base: URL, wanted: readonly BlobEntry[], options: ResolvedBlobOptions, into: Map<string, Buffer>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < wanted.length) {
      const entry = wanted[next]!;
      next += 1;
      try {
        into.set(entry.ref.hash, await fetchOne(session, base, entry));
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, wanted.length) }, worker));
  if (failure) throw failure.error;
}

// Blobs from a static host (nginx, a CDN, a bucket), which has no batch route but serves the
// snapshot's pack file: every blob back to back, at the offsets the manifest gives. Few blobs
// wanted: one multi-range request for just their bytes. Many (over wholePackRatio of the pack):
// one GET of the whole pack, cheaper than a multipart answer about as large. A host that
// ignores Range answers 200 with the whole pack, which is sliced the same way. When ranges fail
// any other way, what is still missing goes back to the caller for the per-blob fallback.
import { ErrorCodes, isLivemodError } from '../errors.ts';
import type { Manifest } from '../snapshot/index.ts';
import { httpError } from './http-errors.ts';
import { PART_OVERHEAD, multipartBoundary, parseContentRange, readByteRanges } from './multipart.ts';
import type { ResolvedBlobOptions } from './options.ts';
import { planRanges, type RangePlan } from './ranges.ts';
import { ByteReader } from './reader.ts';
import type { Exchange, Session } from './transfer.ts';
import { packUrl } from './urls.ts';
import { verifyBlob, type BlobEntry } from './verify.ts';

/** Preamble and closing boundary of a multipart body, beyond the per-part overhead. */
const MULTIPART_SLACK = 2048;

/** The wanted blobs that have a place in the pack, sorted by offset, and what to do with their bytes. */
class PackSlicer {
  readonly placed: readonly BlobEntry[];
  private readonly url: string;
  private readonly into: Map<string, Buffer>;

  constructor(placed: BlobEntry[], url: string, into: Map<string, Buffer>) {
    this.placed = placed.sort((a, b) => a.ref.offset! - b.ref.offset!);
    this.url = url;
    this.into = into;
  }

  /** Verifies and keeps every wanted blob lying wholly inside `bytes`, which start at pack offset `start`. */
  take(start: number, bytes: Buffer): void {
    const end = start + bytes.length;
    let low = 0;
    let high = this.placed.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.placed[middle]!.ref.offset! < start) low = middle + 1;
      else high = middle;
    }
    for (let index = low; index < this.placed.length; index += 1) {
      const entry = this.placed[index]!;
      const offset = entry.ref.offset!;
      if (offset + entry.ref.size > end) break;
      if (this.into.has(entry.ref.hash)) continue;
      const blob = bytes.subarray(offset - start, offset - start + entry.ref.size);
      verifyBlob(entry, blob, this.url);
      this.into.set(entry.ref.hash, blob);
    }
  }

  missing(): BlobEntry[] {
    return this.placed.filter((entry) => !this.into.has(entry.ref.hash));
  }
}

async function readWhole(exchange: Exchange, packSize: number, slicer: PackSlicer): Promise<void> {
  slicer.take(0, await exchange.readAll(packSize, "for the snapshot's pack", 'the host sends more than the signed manifest describes, so it is refused'));
}

async function readParts(exchange: Exchange, plan: RangePlan, packSize: number, slicer: PackSlicer): Promise<void> {
  const { headers } = exchange.response;
  const boundary = multipartBoundary(headers.get('content-type'));
  if (boundary === null) {
    // One range (asked for, or the host merged them all): a plain 206 with Content-Range.
    const range = parseContentRange(headers.get('content-range'));
    if (!range || range.end > packSize) {
      exchange.discard();
      return;
    }
    slicer.take(range.start, await exchange.readAll(range.end - range.start, 'for the range it announced', 'the host sends more than its own Content-Range says'));
    return;
  }
  const limit = plan.bytes + plan.spans.length * (PART_OVERHEAD + boundary.length) + MULTIPART_SLACK;
  const reader = new ByteReader(exchange.body(limit, 'for the ranges asked for', 'the host sends more than the signed manifest describes, so it is refused'));
  try {
    for await (const part of readByteRanges(reader, boundary, exchange.url, (_start, end) => end <= packSize)) slicer.take(part.start, part.bytes);
  } finally {
    await reader.close();
  }
}

/**
 * Fetches what it can of `wanted` from the pack and returns the blobs it could not (no place in
 * the pack, or the host's ranges failed), for the caller to fetch one by one.
 */
export async function fetchFromPack(session: Session, base: URL, manifest: Manifest, wanted: readonly BlobEntry[], options: ResolvedBlobOptions, into: Map<string, Buffer>): Promise<BlobEntry[]> {
  const pack = manifest.pack!;
  const url = packUrl(base, pack.path);
  const unplaced: BlobEntry[] = [];
  const placed: BlobEntry[] = [];
  for (const entry of wanted) {
    const { offset, size } = entry.ref;
    if (size === 0) {
      verifyBlob(entry, Buffer.alloc(0), 'the manifest');
      into.set(entry.ref.hash, Buffer.alloc(0));
    } else if (offset !== undefined && offset + size <= pack.size) {
      placed.push(entry);
    } else {
      unplaced.push(entry);
    }
  }
  if (placed.length === 0) return unplaced;
  const slicer = new PackSlicer(placed, url, into);
  const threshold = options.wholePackRatio * pack.size;
  const wantedBytes = placed.reduce((total, entry) => total + entry.ref.size, 0);
  const plan = wantedBytes > threshold ? null : planRanges(placed.map((entry) => ({ offset: entry.ref.offset!, size: entry.ref.size })), options.rangeGapBytes, options.maxRangeHeaderBytes);
  const whole = plan === null || plan.bytes > threshold;

  const exchange = await session.open({
    kind: whole ? 'pack' : 'ranges',
    method: 'GET',
    url,
    // Offsets are into the pack's bytes as stored, so a compressed answer would not match them:
    // a Range request asks for `Accept-Encoding: identity` (as the Fetch standard has it).
    headers: whole ? {} : { range: plan.header, 'accept-encoding': 'identity' },
    ranges: whole ? 0 : plan.spans.length,
  });
  const { status } = exchange.response;
  try {
    if (status === 200) await readWhole(exchange, pack.size, slicer);
    else if (status === 206 && !whole) await readParts(exchange, plan, pack.size, slicer);
    else if (status === 401 || status === 403) throw await httpError(exchange, { kind: 'pack' });
    else exchange.discard();
  } catch (error) {
    // A malformed multipart body is the host's range support failing: the blobs are still fetchable one by one.
    if (!(isLivemodError(error) && error.code === ErrorCodes.PROTOCOL)) throw error;
  }
  return [...unplaced, ...slicer.missing()];
}

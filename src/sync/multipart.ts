// `multipart/byteranges` (RFC 9110 §14.6), the answer to a multi-range request: parts, each with
// a Content-Range header, between `--boundary` lines. Each part's length is taken from its
// Content-Range, so only the short header block is searched, never the bytes; a part whose range
// was not asked for is refused before its bytes are read.
import { ErrorCodes, LivemodError } from '../errors.ts';
import { quoted } from '../text.ts';
import type { ByteReader } from './reader.ts';

export interface RangePart {
  readonly start: number;
  readonly bytes: Buffer;
}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_PREAMBLE = 1024;
const MAX_PART_HEADERS = 8 * 1024;
const CONTENT_RANGE = /^bytes (\d{1,15})-(\d{1,15})\/(\d{1,15}|\*)$/i;

/** Bytes of framing per part beyond its payload that a body limit allows (boundary line, two headers). */
export const PART_OVERHEAD = 512;

/** The boundary parameter of a multipart content type, or null when it has none. */
export function multipartBoundary(contentType: string | null): string | null {
  const match = /^\s*multipart\/byteranges\s*;(?:.*;)?\s*boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))/i.exec(contentType ?? '');
  return match ? (match[1] ?? match[2]!) : null;
}

/** Parses `bytes a-b/total` into a start and exclusive end, or null. */
export function parseContentRange(value: string | null): { start: number; end: number; total: number | null } | null {
  const match = CONTENT_RANGE.exec((value ?? '').trim());
  if (!match) return null;
  const start = Number(match[1]);
  const end = Number(match[2]) + 1;
  if (end <= start) return null;
  return { start, end, total: match[3] === '*' ? null : Number(match[3]) };
}

/**
 * Yields the parts of a multipart/byteranges body. `accept(start, end)` decides, from its
 * header, whether a part may be read at all.
 */
export async function* readByteRanges(reader: ByteReader, boundary: string, url: string, accept: (start: number, end: number) => boolean): AsyncGenerator<RangePart> {
  const fail = (what: string): LivemodError => new LivemodError('sync', ErrorCodes.PROTOCOL, `multi-range response from ${url} ${what}; the host's range support is broken, so its blobs are fetched one by one`, { url });
  const delimiter = Buffer.from(`--${boundary}`);
  // The first delimiter may follow a preamble (nginx sends a bare CRLF); later ones follow the part before.
  if ((await reader.readUntil(delimiter, MAX_PREAMBLE)) === null) throw fail(`has no ${quoted(`--${boundary}`, 80)} line`);
  while (true) {
    const after = await reader.readExact(2);
    if (after === null) throw fail('ends after a boundary');
    if (after.toString('latin1') === '--') return;
    if (!after.equals(CRLF)) throw fail('has a boundary line with trailing bytes');
    const block = await reader.readUntil(HEADER_END, MAX_PART_HEADERS);
    if (block === null) throw fail('has a part whose headers do not end');
    const rangeLine = block.toString('latin1').split('\r\n').find((line) => /^content-range\s*:/i.test(line));
    const range = parseContentRange(rangeLine?.slice(rangeLine.indexOf(':') + 1) ?? null);
    if (!range) throw fail('has a part without a valid Content-Range header');
    if (!accept(range.start, range.end)) throw fail(`sends bytes ${range.start}-${range.end - 1}, which were not asked for`);
    const bytes = await reader.readExact(range.end - range.start);
    if (bytes === null) throw fail(`ends inside the part for bytes ${range.start}-${range.end - 1}`);
    // The delimiter must follow at once, or the part was not the length it said: checked before
    // the part is used, so a misframed answer reads as broken ranges, not as tampered blobs.
    const next = await reader.readExact(CRLF.length + delimiter.length);
    if (next === null || !next.subarray(0, 2).equals(CRLF) || !next.subarray(2).equals(delimiter)) throw fail(`has a part for bytes ${range.start}-${range.end - 1} not followed by its boundary`);
    yield { start: range.start, bytes };
  }
}

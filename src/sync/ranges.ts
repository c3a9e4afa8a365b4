// Which bytes of the pack to ask a static host for. Blobs close together are read as one range
// (a few wasted gap bytes are cheaper than a multipart part each), and the gap is widened until
// the `Range` header fits in what hosts accept: nginx refuses request headers over 8 KiB, and a
// cold client asks for thousands of blobs.

export interface Span {
  readonly start: number;
  /** Exclusive. */
  readonly end: number;
}

export interface RangePlan {
  readonly spans: readonly Span[];
  /** The `Range` header value. */
  readonly header: string;
  /** Bytes the spans cover, gaps included. */
  readonly bytes: number;
}

function merge(sorted: readonly Span[], gap: number): Span[] {
  const spans: Span[] = [];
  for (const span of sorted) {
    const last = spans.at(-1);
    if (last && span.start <= last.end + gap) spans[spans.length - 1] = { start: last.start, end: Math.max(last.end, span.end) };
    else spans.push(span);
  }
  return spans;
}

function describe(spans: readonly Span[]): RangePlan {
  return {
    spans,
    header: `bytes=${spans.map((span) => `${span.start}-${span.end - 1}`).join(',')}`,
    bytes: spans.reduce((total, span) => total + span.end - span.start, 0),
  };
}

/** Plans the ranges for blobs at these (offset, size) places; empty blobs need no bytes and are left out. */
export function planRanges(blobs: ReadonlyArray<{ readonly offset: number; readonly size: number }>, gapBytes: number, maxHeaderBytes: number): RangePlan {
  const sorted = blobs
    .filter((blob) => blob.size > 0)
    .map((blob) => ({ start: blob.offset, end: blob.offset + blob.size }))
    .sort((a, b) => a.start - b.start);
  let gap = gapBytes;
  let plan = describe(merge(sorted, gap));
  // Ends: once every span is one, the header is one short range.
  while (plan.header.length > maxHeaderBytes && plan.spans.length > 1) {
    gap = Math.max(1024, gap * 4);
    plan = describe(merge(plan.spans, gap));
  }
  return plan;
}

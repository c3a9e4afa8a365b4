// Sequential reads over a chunked body, for the two framed responses sync parses (batch frames
// and multipart/byteranges). Both formats announce each payload's length before it, so the
// reader only ever searches short header lines for a delimiter, never the blob bytes.

export class ByteReader {
  private readonly source: AsyncIterator<Buffer>;
  /** Received, not yet consumed. */
  private head: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.source = source[Symbol.asyncIterator]();
  }

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.source.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    this.head = this.head.length === 0 ? next.value : Buffer.concat([this.head, next.value]);
    return true;
  }

  /** True once the body ended with nothing left unread. */
  async atEnd(): Promise<boolean> {
    while (this.head.length === 0) if (!(await this.pull())) return true;
    return false;
  }

  /**
   * Bytes up to `delimiter` (which is consumed, not returned). Null when the body ends first or
   * `max` bytes pass without one: the caller reports which, as a malformed response.
   */
  async readUntil(delimiter: Buffer, max: number): Promise<Buffer | null> {
    let from = 0;
    while (true) {
      const at = this.head.indexOf(delimiter, from);
      if (at !== -1 && at <= max) {
        const line = this.head.subarray(0, at);
        this.head = this.head.subarray(at + delimiter.length);
        return line;
      }
      if (this.head.length > max + delimiter.length) return null;
      // The delimiter may straddle chunks: search again from just before the old end.
      from = Math.max(0, this.head.length - delimiter.length + 1);
      if (!(await this.pull())) return null;
    }
  }

  /** Exactly `length` bytes, or null when the body ends first. */
  async readExact(length: number): Promise<Buffer | null> {
    if (this.head.length >= length || this.ended) {
      if (this.head.length < length) return null;
      const out = this.head.subarray(0, length);
      this.head = this.head.subarray(length);
      return out;
    }
    const parts: Buffer[] = [this.head];
    let have = this.head.length;
    this.head = Buffer.alloc(0);
    while (have < length) {
      const next = await this.source.next();
      if (next.done) {
        this.ended = true;
        return null;
      }
      const need = length - have;
      if (next.value.length > need) {
        parts.push(next.value.subarray(0, need));
        this.head = next.value.subarray(need);
        have = length;
      } else {
        parts.push(next.value);
        have += next.value.length;
      }
    }
    return Buffer.concat(parts, length);
  }

  /** Stops reading: the source's cleanup runs (for a response body, the connection is dropped). */
  async close(): Promise<void> {
    this.ended = true;
    this.head = Buffer.alloc(0);
    await this.source.return?.();
  }
}

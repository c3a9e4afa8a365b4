// A static host for tests: the files of a published folder, with ETags and byte ranges as
// nginx serves them, and switches to misbehave (ignore or refuse ranges, break parts, tamper).
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize, sep } from 'node:path';
import type { TestContext } from 'node:test';


export type RangeMode = 'multipart' | 'ignore' | 'refuse' | 'broken';

export interface HostOptions {
  readonly ranges?: RangeMode;
  /** Changes a file's bytes before they are sent (and before ranges are cut from them). */
  readonly tamper?: (path: string, bytes: Buffer) => Buffer;
}

export interface Host {
  readonly url: string;
  readonly seen: Array<{ method: string; path: string; range: string | undefined; acceptEncoding: string | undefined }>;
}

const BOUNDARY = 'livemod-test-boundary';

function sendRanges(res: ServerResponse, bytes: Buffer, header: string, mode: RangeMode): void {
  const ranges = header.replace(/^bytes=/, '').split(',').map((part) => {
    const [from, to] = part.split('-').map(Number) as [number, number];
    return { start: from, end: Math.min(to, bytes.length - 1) };
  });
  if (mode === 'refuse' || ranges.some((range) => !(range.start <= range.end))) {
    res.writeHead(416, { 'content-range': `bytes */${bytes.length}` }).end();
    return;
  }
  if (ranges.length === 1 && mode !== 'broken') {
    const [range] = ranges as [{ start: number; end: number }];
    res.writeHead(206, { 'content-type': 'application/octet-stream', 'content-range': `bytes ${range.start}-${range.end}/${bytes.length}` });
    res.end(bytes.subarray(range.start, range.end + 1));
    return;
  }
  const parts: Buffer[] = [];
  for (const range of ranges) {
    parts.push(Buffer.from(`\r\n--${BOUNDARY}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${range.start}-${range.end}/${bytes.length}\r\n\r\n`));
    // "broken": each part one byte shorter than its Content-Range says.
    parts.push(bytes.subarray(range.start, range.end + (mode === 'broken' ? 0 : 1)));
  }
  parts.push(Buffer.from(`\r\n--${BOUNDARY}--\r\n`));
  const body = Buffer.concat(parts);
  res.writeHead(206, { 'content-type': `multipart/byteranges; boundary=${BOUNDARY}`, 'content-length': body.length });
  res.end(body);
}

export async function startHost(t: TestContext, root: string, options: HostOptions = {}): Promise<Host> {
  const seen: Host['seen'] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://host').pathname);
    seen.push({ method: req.method ?? '', path, range: req.headers.range, acceptEncoding: req.headers['accept-encoding'] });
    const file = normalize(join(root, path));
    if (req.method !== 'GET' || !file.startsWith(root + sep) || !statSync(file, { throwIfNoEntry: false })?.isFile()) {
      res.writeHead(req.method === 'GET' ? 404 : 405, { 'content-type': 'text/html' }).end('<h1>no</h1>');
      return;
    }
    let bytes: Buffer = readFileSync(file);
    const etag = `"${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}"`;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag }).end();
      return;
    }
    if (options.tamper) bytes = options.tamper(path, bytes);
    const range = req.headers.range;
    if (range && options.ranges !== 'ignore') {
      sendRanges(res, bytes, range, options.ranges ?? 'multipart');
      return;
    }
    res.writeHead(200, { etag, 'content-type': path.endsWith('.json') ? 'application/json' : 'application/octet-stream', 'content-length': bytes.length });
    res.end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, seen };
}

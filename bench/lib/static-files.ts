// A folder served as static files on loopback, the way a plain web server would host a tree
// of ES modules for a runtime that imports them by URL (Deno). Every file is read into memory
// first, so the server's own disk reads are not part of what a client's start measures, and
// each request is counted so a bench can check what a run asked for.
import { readFileSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative, sep } from 'node:path';

export interface StaticFiles {
  readonly url: string;
  /** Requests answered since the last `take()`. */
  take(): number;
  close(): Promise<void>;
}

const TYPES: Readonly<Record<string, string>> = { '.js': 'text/javascript; charset=utf-8', '.json': 'application/json' };

export async function serveStatic(root: string): Promise<StaticFiles> {
  const files = new Map<string, Buffer>();
  for (const item of readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (item.isFile()) files.set(`/${relative(root, join(item.parentPath, item.name)).split(sep).join('/')}`, readFileSync(join(item.parentPath, item.name)));
  }
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests += 1;
    const path = new URL(req.url ?? '/', 'http://host').pathname;
    const body = req.method === 'GET' ? files.get(path) : undefined;
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    const type = TYPES[path.slice(path.lastIndexOf('.'))] ?? 'application/octet-stream';
    res.writeHead(200, { 'content-type': type, 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    take() {
      const count = requests;
      requests = 0;
      return count;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

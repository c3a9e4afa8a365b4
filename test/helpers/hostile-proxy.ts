// A hostile proxy for tests: a real node:http server on 127.0.0.1:0 between a client and a real
// origin (a livemod server, a static host, an object store). Every request is passed on, and a
// test decides, per request, to answer in its place, to drop its connection, to hold it with no
// answer, or to pass the origin's answer on as a drip: the headers at once, then the body a few
// bytes at a time.
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';

export interface Answer {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

export interface ProxyRules {
  /** Answer in the origin's place (the origin is not asked). */
  answer?(req: IncomingMessage): Answer | null;
  /** Destroy the connection without an answer, as a host that died mid-request. */
  drop?(req: IncomingMessage): boolean;
  /** Send nothing at all, not even headers, until the client gives up. */
  hold?(req: IncomingMessage): boolean;
  /**
   * Pass the origin's answer on over this many ms (headers at once, the body in equal slices
   * every 50 ms); Infinity: one byte every 50 ms, so it ends long after any test's deadline.
   */
  drip?(req: IncomingMessage): number | null;
}

export interface Proxy {
  readonly url: string;
  /** "METHOD path" of every request, in order. */
  readonly seen: string[];
  /**
   * Stops listening (idempotent): later connects are refused and idle connections dropped, while
   * requests under way finish. Resolves once the last connection ended.
   */
  close(): Promise<void>;
}

const TICK_MS = 50;

function dripBody(res: ServerResponse, body: Buffer, totalMs: number): void {
  if (body.length === 0) {
    res.end();
    return;
  }
  const ticks = Number.isFinite(totalMs) ? Math.max(1, Math.ceil(totalMs / TICK_MS)) : body.length;
  const slice = Math.max(1, Math.ceil(body.length / ticks));
  let sent = 0;
  const timer = setInterval(() => {
    if (res.destroyed) return clearInterval(timer);
    res.write(body.subarray(sent, sent + slice));
    sent += slice;
    if (sent >= body.length) {
      clearInterval(timer);
      res.end();
    }
  }, TICK_MS);
  res.on('close', () => clearInterval(timer));
}

export async function startProxy(t: TestContext, origin: string, rules: ProxyRules = {}): Promise<Proxy> {
  const upstream = new URL(origin);
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const parts: Buffer[] = [];
    req.on('data', (chunk: Buffer) => parts.push(chunk));
    req.on('end', () => {
      const answer = rules.answer?.(req);
      if (answer) {
        res.writeHead(answer.status, answer.headers ?? {}).end(answer.body ?? '');
        return;
      }
      if (rules.drop?.(req)) {
        req.socket.destroy();
        return;
      }
      if (rules.hold?.(req)) return;
      const dripMs = rules.drip?.(req) ?? null;
      const headers = { ...req.headers, host: upstream.host };
      const forward = request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers }, (reply) => {
        const body: Buffer[] = [];
        reply.on('data', (chunk: Buffer) => body.push(chunk));
        reply.on('end', () => {
          res.writeHead(reply.statusCode ?? 502, reply.headers);
          if (dripMs === null) res.end(Buffer.concat(body));
          else dripBody(res, Buffer.concat(body), dripMs);
        });
      });
      forward.on('error', () => res.destroy());
      forward.end(Buffer.concat(parts));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => (closed ??= new Promise<void>((resolve) => server.close(() => resolve())));
  t.after(() => {
    server.closeAllConnections();
    return close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, seen, close };
}

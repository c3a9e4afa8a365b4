// Real clients for the server tests: raw HTTP (paths fetch would normalise), and channels.
import { request } from 'node:http';
import { connect } from 'node:net';
import { WebSocket, type ClientOptions } from 'ws';
import { decodeMessage, parseServerMessage, type ServerMessage } from '../../src/protocol/index.ts';
import { within } from './server-fixtures.ts';

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** http.request sends `path` byte for byte, where fetch would resolve `..` and `%2e` first. */
export function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<RawResponse> {
  return within(new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  }), 5000, `${method} ${path.slice(0, 60)}`);
}

/** Writes `text` on a fresh TCP connection and returns everything the server sends until it closes. */
export function rawExchange(port: number, text: string | Buffer): Promise<string> {
  return within(new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    // Half-close our side once a response arrived, so keep-alive does not hold the test open.
    socket.once('data', () => socket.end());
  }), 5000, 'a raw HTTP exchange');
}

export interface Channel {
  readonly ws: WebSocket;
  /** The next message the server sent, parsed with the protocol's own parser. */
  next(what?: string): Promise<ServerMessage>;
  readonly closed: Promise<{ code: number; reason: string }>;
}

export async function openChannel(url: string, options: ClientOptions = {}): Promise<Channel> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/channel`, options);
  const queue: ServerMessage[] = [];
  const waiters: Array<(message: ServerMessage) => void> = [];
  ws.on('message', (data) => {
    const parsed = decodeMessage(String(data), parseServerMessage);
    if (!parsed.ok) throw new Error(`server sent an invalid message: ${parsed.reason}`);
    const waiter = waiters.shift();
    if (waiter) waiter(parsed.message);
    else queue.push(parsed.message);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('error', () => {});
  await within(new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`channel upgrade answered ${res.statusCode}`)));
    ws.once('error', reject);
  }), 5000, 'the channel to open');
  return {
    ws,
    closed,
    next: (what = 'a channel message') => {
      const queued = queue.shift();
      if (queued) return Promise.resolve(queued);
      return within(new Promise((resolve) => waiters.push(resolve)), 5000, what);
    },
  };
}

/** The HTTP status an upgrade to /channel is refused with. */
export function channelRefusal(url: string, options: ClientOptions = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/channel`, options);
  ws.on('error', () => {});
  return within(new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
      res.resume();
      ws.terminate();
    });
    ws.once('open', () => reject(new Error('the channel opened, but it should have been refused')));
  }), 5000, 'the channel refusal');
}

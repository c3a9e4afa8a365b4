// The channel: one WebSocket per subscribed client, over which the server pushes each new
// version. The server never waits on a client: a message is queued and sent, a client whose
// queue passes maxBufferedBytes is terminated, and one that misses a heartbeat is terminated.
// A terminated client reconnects and gets a fresh hello, which is all the state it needs.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { ErrorCodes } from '../errors.ts';
import {
  INLINE_MANIFEST_MAX_FRAME,
  PROTOCOL_VERSION, decodeMessage, encodeMessage, parseClientMessage,
  type ClientInfo, type ClientMessage, type ServerMessage,
} from '../protocol/index.ts';
import type { ResolvedServerOptions } from './options.ts';
import type { PublishedSnapshot } from './snapshots.ts';

interface Client {
  info: ClientInfo;
  /** Cleared at each heartbeat, set by a pong or any message. */
  alive: boolean;
}

/** A swap report is kept per client for /status; past this it is refused, so memory stays ~clients × 4 KiB. */
const MAX_SWAP_BYTES = 4096;

/** How long close() lets clients answer the close frame before their sockets are destroyed. */
const CLOSE_GRACE_MS = 1000;

function text(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

export class ChannelHub {
  private readonly options: ResolvedServerOptions;
  private readonly current: () => PublishedSnapshot | undefined;
  private readonly wss: WebSocketServer;
  private readonly clients = new Map<WebSocket, Client>();
  private readonly heartbeat: ReturnType<typeof setInterval>;
  private nextId = 1;
  private closed = false;

  constructor(options: ResolvedServerOptions, current: () => PublishedSnapshot | undefined) {
    this.options = options;
    this.current = current;
    // No compression: messages are tiny, and inflating client frames is memory a client controls.
    this.wss = new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false, maxPayload: options.maxMessageBytes });
    this.heartbeat = setInterval(() => this.beat(), options.heartbeatMs);
    this.heartbeat.unref();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Completes a WebSocket handshake the caller has already authorized. */
  accept(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.add(ws, req));
  }

  /** The first `limit` clients (status output stays bounded however many connect). */
  list(limit: number = Number.POSITIVE_INFINITY): ClientInfo[] {
    const out: ClientInfo[] = [];
    for (const client of this.clients.values()) {
      if (out.length >= limit) break;
      out.push(client.info);
    }
    return out;
  }

  get size(): number {
    return this.clients.size;
  }

  /** Channels of server replicas (they said so in their status). */
  get replicas(): number {
    let count = 0;
    for (const client of this.clients.values()) if (client.info.role === 'replica') count += 1;
    return count;
  }

  /** Sends to every open channel; returns how many it was sent to. */
  broadcast(message: ServerMessage): number {
    // Encoded once for all: ws writes a Buffer as it is (a server's frames are not masked), so
    // ten thousand channels share one payload instead of each converting the string again.
    let frame = Buffer.from(encodeMessage(message));
    // The signed manifest travels in the announcement only while the frame stays small; past that, clients fetch it.
    if (message.type === 'version' && message.manifest !== undefined && frame.byteLength > INLINE_MANIFEST_MAX_FRAME) {
      const { manifest: _dropped, ...announcement } = message;
      frame = Buffer.from(encodeMessage(announcement));
    }
    let sent = 0;
    for (const ws of this.clients.keys()) if (this.send(ws, frame)) sent += 1;
    return sent;
  }

  close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    const sockets = [...this.clients.keys()];
    if (sockets.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      let open = sockets.length;
      const timer = setTimeout(() => sockets.forEach((ws) => ws.terminate()), CLOSE_GRACE_MS);
      for (const ws of sockets) {
        ws.once('close', () => {
          open -= 1;
          if (open === 0) {
            clearTimeout(timer);
            resolve();
          }
        });
        ws.close(1001, 'server closing');
      }
    });
  }

  private add(ws: WebSocket, req: IncomingMessage): void {
    if (this.closed) {
      ws.close(1001, 'server closing');
      return;
    }
    if (this.clients.size >= this.options.maxClients) {
      ws.close(1013, 'too many channel clients; try again later');
      return;
    }
    const id = String(this.nextId++);
    const client: Client = {
      info: { id, address: `${req.socket.remoteAddress}:${req.socket.remotePort}`, connectedAt: new Date().toISOString() },
      alive: true,
    };
    this.clients.set(ws, client);
    this.options.log(`[livemod serve] channel ${id} opened from ${client.info.address}`);
    // ws reports protocol violations (oversized frames: 1009) here and closes the socket itself.
    ws.on('error', (error) => this.options.log(`[livemod serve] channel ${id}: ${error.message}`));
    ws.on('pong', () => (client.alive = true));
    ws.on('message', (data, isBinary) => this.receive(ws, client, data, isBinary));
    ws.on('close', (code) => {
      this.clients.delete(ws);
      this.options.log(`[livemod serve] channel ${id} closed (${code})`);
    });
    const snapshot = this.current()?.snapshot;
    this.send(ws, encodeMessage({ type: 'hello', protocol: PROTOCOL_VERSION, version: snapshot?.manifest.version ?? null, etag: snapshot?.sealed.etag ?? null }));
  }

  private receive(ws: WebSocket, client: Client, data: RawData, isBinary: boolean): void {
    client.alive = true;
    if (isBinary) {
      this.refuse(ws, 'binary frames are not part of the protocol; send JSON text frames');
      return;
    }
    const parsed = decodeMessage(text(data), parseClientMessage);
    if (!parsed.ok) {
      this.refuse(ws, parsed.reason);
      return;
    }
    this.handle(ws, client, parsed.message);
  }

  private handle(ws: WebSocket, client: Client, message: ClientMessage): void {
    switch (message.type) {
      case 'status':
        if (message.swap && Buffer.byteLength(JSON.stringify(message.swap)) > MAX_SWAP_BYTES) {
          this.refuse(ws, `the "swap" report is over ${MAX_SWAP_BYTES} bytes of JSON; send a summary`);
          return;
        }
        client.info = { ...client.info, version: message.version, lastStatusAt: new Date().toISOString(), ...(message.swap ? { swap: message.swap } : {}), ...(message.role ? { role: message.role } : {}) };
        return;
      case 'ping':
        this.send(ws, encodeMessage({ type: 'pong' }));
        return;
      default: {
        const unhandled: never = message;
        this.refuse(ws, `unhandled message ${JSON.stringify(unhandled)}`);
      }
    }
  }

  private refuse(ws: WebSocket, reason: string): void {
    this.send(ws, encodeMessage({ type: 'error', code: ErrorCodes.PROTOCOL, message: `message refused: ${reason}` }));
  }

  private send(ws: WebSocket, frame: string | Buffer): boolean {
    if (ws.readyState !== ws.OPEN) return false;
    ws.send(frame, { binary: false });
    if (ws.bufferedAmount > this.options.maxBufferedBytes) {
      this.options.log(`[livemod serve] channel ${this.clients.get(ws)?.info.id} has ${ws.bufferedAmount} bytes unsent, over ${this.options.maxBufferedBytes}; terminated (it will reconnect)`);
      ws.terminate();
      return false;
    }
    return true;
  }

  private beat(): void {
    for (const [ws, client] of this.clients) {
      if (ws.readyState !== ws.OPEN) continue;
      if (!client.alive) {
        this.options.log(`[livemod serve] channel ${client.info.id} missed a heartbeat; terminated`);
        ws.terminate();
        continue;
      }
      client.alive = false;
      ws.ping();
    }
  }
}

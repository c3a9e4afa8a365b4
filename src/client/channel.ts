// The client side of the channel: a WebSocket to the server's push route that turns version
// announcements into hints for the live layer, and carries the client's status back. Nothing
// that arrives here is trusted: an announcement only makes the client sync, and the sync
// verifies the manifest as always. A hostile channel — garbage, binary or oversized frames,
// floods — is ignored or closed; the client reconnects with jittered exponential backoff. The
// socket and every timer are unreferenced: the channel never keeps a finished program alive.
import type { NetConnectOpts, Socket, connect as netConnect } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { createRequire } from 'node:module';
import type WebSocket from 'ws';
import { decodeMessage, encodeMessage, parseServerMessage, type ClientMessage } from '../protocol/index.ts';
import { inert } from '../text.ts';

export interface ChannelOptions {
  /** The channel URL (http(s): the `Livemod-Channel` capability, already checked to be the origin's). */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /**
   * A version the server announced: a hint to sync. `hello`: it is the version a (re)connection
   * starts on. `manifest`: the signed manifest sent with the announcement (unverified here).
   */
  readonly onVersion: (version: number, hello: boolean, manifest?: string) => void;
  /** The status to send when connected (and after each swap, through `send`). */
  readonly status: () => ClientMessage;
  readonly log: (line: string) => void;
  /** Largest frame accepted; a bigger one closes the channel (ws answers 1009). Default 64 KiB. */
  readonly maxFrameBytes?: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

// Loaded on the first connection: a program that never follows a channel should not pay for the
// WebSocket client on its start (measured: 60–120 ms).
let WebSocketClass: typeof WebSocket | undefined;
function webSocket(): typeof WebSocket {
  WebSocketClass ??= createRequire(import.meta.url)('ws') as typeof WebSocket;
  return WebSocketClass;
}

/** How long a connection must stay up before the reconnect backoff starts over. */
const HEALTHY_MS = 10_000;

/** Invalid frames tolerated on one connection before it is dropped (and reconnected with backoff). */
const MAX_STRIKES = 16;

export class ChannelClient {
  private readonly options: ChannelOptions;
  private socket: WebSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private closed = false;
  /** Connections opened (for tests and the report). */
  connections = 0;

  constructor(options: ChannelOptions) {
    this.options = options;
  }

  start(): void {
    this.open();
  }

  send(message: ClientMessage): void {
    if (this.socket && this.socket.readyState === this.socket.OPEN) this.socket.send(encodeMessage(message));
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.socket?.terminate();
    this.socket = undefined;
  }

  private open(): void {
    if (this.closed) return;
    const url = this.options.url.replace(/^http/, 'ws');
    const secure = url.startsWith('wss:');
    const Client = webSocket();
    const socket = new Client(url, {
      headers: { ...this.options.headers },
      maxPayload: this.options.maxFrameBytes ?? 64 * 1024,
      handshakeTimeout: 10_000,
      followRedirects: false,
      // Our own connection, unreferenced: an open channel must not keep the program running.
      createConnection: ((connectOptions: object): Socket => {
        // node:tls and node:net are taken here, not imported: this module loads with every URL run, and node:tls costs a start
        // about 20 ms, node:net 4–5 (an --offline start needs no socket). (ws, loaded when the channel opens a second after
        // the start, requires them itself: a run that ends sooner never pays.)
        const raw: Socket = secure ? process.getBuiltinModule('node:tls').connect(connectOptions as ConnectionOptions) : process.getBuiltinModule('node:net').connect(connectOptions as NetConnectOpts);
        raw.unref();
        return raw;
      }) as unknown as typeof netConnect,
    });
    this.socket = socket;
    let strikes = 0;
    let refusals = 0;
    // The backoff starts over only once a connection has stayed up a while: a server that says
    // hello and then misbehaves must not make the client reconnect at its fastest forever.
    const healthy = setTimeout(() => {
      this.attempt = 0;
    }, HEALTHY_MS);
    healthy.unref();
    let dropped = false;
    const strike = (why: string): void => {
      strikes += 1;
      if (strikes === 1) this.options.log(`[livemod channel] ignored a frame from ${inert(this.options.url)}: ${why}`);
      if (strikes >= MAX_STRIKES && !dropped) {
        dropped = true;
        this.options.log(`[livemod channel] ${MAX_STRIKES} invalid frames from ${inert(this.options.url)}; closing, and reconnecting later`);
        socket.terminate();
      }
    };
    socket.on('open', () => {
      this.connections += 1;
      this.send(this.options.status());
    });
    socket.on('message', (data: WebSocket.RawData, binary: boolean) => {
      // Frames already read when the connection was dropped are not looked at.
      if (dropped) return;
      if (binary) {
        strike('a binary frame (the protocol is JSON text)');
        return;
      }
      const parsed = decodeMessage(data.toString('utf8'), parseServerMessage);
      if (!parsed.ok) {
        strike(parsed.reason);
        return;
      }
      const message = parsed.message;
      switch (message.type) {
        case 'hello':
          if (message.version !== null) this.options.onVersion(message.version, true);
          return;
        case 'version':
          this.options.onVersion(message.version, false, message.manifest);
          return;
        case 'error':
          // Said once per connection; a flood of them counts against the connection like garbage.
          refusals += 1;
          if (refusals === 1) this.options.log(`[livemod channel] the server refused a message: ${inert(message.code)} ${inert(message.message)}`);
          if (refusals > 1) strike('repeated "error" messages');
          return;
        case 'pong':
          return;
        default: {
          const never: never = message;
          strike(`unhandled message ${String(never)}`);
        }
      }
    });
    socket.on('error', () => {
      // 'close' follows; the error itself (refused, reset, too big) only decides the backoff.
    });
    socket.on('close', () => {
      clearTimeout(healthy);
      if (this.socket === socket) this.socket = undefined;
      this.reconnect();
    });
  }

  /** Full jitter: a random delay up to min(max, min × 2^attempt). */
  private reconnect(): void {
    if (this.closed) return;
    const min = this.options.minBackoffMs ?? 250;
    const max = this.options.maxBackoffMs ?? 30_000;
    const ceiling = Math.min(max, min * 2 ** this.attempt);
    this.attempt += 1;
    this.timer = setTimeout(() => this.open(), Math.round(min / 2 + Math.random() * ceiling));
    this.timer.unref();
  }
}

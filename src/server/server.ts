// The module server: one node:http (or node:https) server running the request handler, the
// channel on its 'upgrade' event, and timeouts on every phase of a connection so no client,
// slow or silent, holds a socket or server memory for long.
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { markServed, unmarkServed } from '../served-here.ts';
import { INLINE_MANIFEST_MAX_FRAME, type ClusterStatus, type ServerStatus } from '../protocol/index.ts';
import type { Snapshot } from '../snapshot/index.ts';
import { createTokenCheck } from './auth.ts';
import { ChannelHub } from './channel.ts';
import { buildStatus, type HandlerContext } from './context.ts';
import { createRequestHandler } from './handler.ts';
import { resolveServerOptions, type ResolvedServerOptions, type ServerOptions } from './options.ts';
import { SnapshotStore } from './snapshots.ts';
import { createUpgradeHandler } from './upgrade.ts';

/** Node's default, stated so it cannot drift: larger headers get 431. */
const MAX_HEADER_BYTES = 16 * 1024;

/** Connections the kernel may queue before they are accepted (it caps this at net.core.somaxconn). */
const LISTEN_BACKLOG = 4096;

export interface ModuleServer {
  /** Starts listening; calling it again returns the same promise, and after close() rejects. */
  listen(): Promise<{ url: string; port: number }>;
  /** Makes `snapshot` current and pushes its version to every channel. Throws if its version does not go up. */
  publish(snapshot: Snapshot): void;
  readonly current: Snapshot | undefined;
  readonly options: ResolvedServerOptions;
  /** `http(s)://host:port`; throws before listen() resolved. */
  readonly url: string;
  status(): ServerStatus;
  /** Adds the server's place in a fleet to /status and the status page. */
  describeCluster(provider: () => ClusterStatus): void;
  /** Stops listening and terminates every connection and channel. Idempotent. */
  close(): Promise<void>;
}

function createNodeServer(options: ResolvedServerOptions): Server {
  const settings = {
    maxHeaderSize: MAX_HEADER_BYTES,
    headersTimeout: options.headersTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    // Node checks headers/request timeouts on this interval (default 30 s), which would let a
    // slow-loris client outlive a short timeout by that much.
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(options.headersTimeoutMs / 4))),
    // Only WebSocket upgrades go to the channel handler; any other Upgrade header (curl --http2
    // sends `Upgrade: h2c`, so do some proxies) is an ordinary request and gets its route.
    shouldUpgradeCallback: (request: { headers: { upgrade?: string } }): boolean => /^websocket$/i.test(request.headers.upgrade ?? ''),
  };
  const server: Server = options.tls ? createHttpsServer({ ...settings, cert: options.tls.cert, key: options.tls.key }) : createHttpServer(settings);
  // Socket inactivity in either direction; Node destroys the socket when it passes.
  server.timeout = options.idleTimeoutMs;
  return server;
}

function formatUrl(tls: boolean, address: AddressInfo): string {
  const host = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  return `${tls ? 'https' : 'http'}://${host}:${address.port}`;
}

class LivemodServer implements ModuleServer {
  readonly options: ResolvedServerOptions;
  private readonly snapshots: SnapshotStore;
  private readonly hub: ChannelHub;
  private readonly context: HandlerContext;
  private readonly server: Server;
  private readonly startedAt = Date.now();
  private listening: Promise<{ url: string; port: number }> | undefined;
  private closing: Promise<void> | undefined;
  private address: string | undefined;
  /** The port this server marked as served in this process (served-here.ts), until it closes. */
  private servedPort: number | undefined;

  constructor(options: ResolvedServerOptions) {
    this.options = options;
    this.snapshots = new SnapshotStore(options.keepVersions);
    this.hub = new ChannelHub(options, () => this.snapshots.current);
    this.context = { options, snapshots: this.snapshots, clients: (limit) => this.hub.list(limit), clientCount: () => this.hub.size, replicaCount: () => this.hub.replicas, startedAt: this.startedAt };
    this.server = createNodeServer(options);
    this.server.on('request', createRequestHandler(this.context));
    this.server.on('upgrade', createUpgradeHandler(createTokenCheck(options.tokens), this.hub));
  }

  get current(): Snapshot | undefined {
    return this.snapshots.current?.snapshot;
  }

  get url(): string {
    if (this.address === undefined) throw new LivemodError('serve', ErrorCodes.USAGE, 'the server has no URL until listen() has resolved');
    return this.address;
  }

  listen(): Promise<{ url: string; port: number }> {
    if (this.closing) return Promise.reject(new LivemodError('serve', ErrorCodes.USAGE, 'listen() was called after close(); create a new server'));
    this.listening ??= new Promise((resolve, reject) => {
      const { host, port } = this.options;
      const onError = (error: NodeJS.ErrnoException): void => {
        const hint = error.code === 'EADDRINUSE' ? 'another process uses that port; choose another port' : 'check the host and port';
        reject(new LivemodError('serve', ErrorCodes.SERVE_FAILED, `cannot listen on ${host}:${port} (${error.code ?? error.message}); ${hint}`, { host, port }, { cause: error }));
      };
      this.server.once('error', onError);
      // A deep accept queue: when a replica dies, thousands of channels reconnect within a second,
      // and Node's default (511) drops their SYNs, which a balancer then takes for a dead server.
      this.server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
        this.server.off('error', onError);
        this.server.on('error', (error) => this.options.log(`[livemod serve] server error: ${error.message}`));
        const address = this.server.address() as AddressInfo;
        this.address = formatUrl(this.options.tls !== undefined, address);
        markServed(address.port);
        this.servedPort = address.port;
        this.options.log(`[livemod serve] listening on ${this.address}${this.options.tokens.length > 0 ? ' (token required)' : ''}`);
        resolve({ url: this.address, port: address.port });
      });
    });
    return this.listening;
  }

  publish(snapshot: Snapshot): void {
    const entry = this.snapshots.publish(snapshot);
    const { manifest, sealed } = entry.snapshot;
    // A small manifest travels in the announcement (the hub drops it if escaping made the frame too big).
    const inline = sealed.bytes.byteLength <= INLINE_MANIFEST_MAX_FRAME ? { manifest: sealed.bytes.toString('utf8') } : {};
    const pushed = this.hub.broadcast({ type: 'version', version: manifest.version, etag: sealed.etag, manifestHash: sealed.hash, ...inline });
    this.options.log(`[livemod serve] published version ${manifest.version}: ${entry.moduleCount} modules, ${entry.blobBytes} bytes; pushed to ${pushed} channel${pushed === 1 ? '' : 's'}`);
  }

  status(): ServerStatus {
    return buildStatus(this.context, this.startedAt);
  }

  describeCluster(provider: () => ClusterStatus): void {
    this.context.cluster = provider;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      // A listen() in flight finishes first, so it cannot open the port after close() resolved.
      await this.listening?.catch(() => {});
      const stopped = new Promise<void>((resolve) => {
        if (!this.server.listening) resolve();
        else this.server.close(() => resolve());
      });
      this.server.closeAllConnections();
      await Promise.all([this.hub.close(), stopped]);
      if (this.servedPort !== undefined) unmarkServed(this.servedPort);
      this.options.log('[livemod serve] closed');
    })();
    return this.closing;
  }
}

/**
 * Creates a module server; nothing listens until `listen()`.
 * @example
 * const server = createModuleServer({ port: 8080, tokens: [process.env.LIVEMOD_TOKEN!] });
 * await server.listen();
 * server.publish(snapshot);
 */
export function createModuleServer(options: Partial<ServerOptions> = {}): ModuleServer {
  return new LivemodServer(resolveServerOptions(options));
}

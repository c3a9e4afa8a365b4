// The message broker the servers of one fleet share: a NATS server the team already runs (or
// Redis, redis.ts, behind the same Broker interface).
// livemod uses it only for hints and questions — "version N is out", "who is serving what" —
// never as a source of code: a replica fetches what an announcement names from its own source
// and serves it only once it verifies with the publisher key. So the broker needs no trust, no
// persistence (JetStream is not needed) and no configuration beyond its URL.
import type { NatsConnection, Msg } from '@nats-io/transport-node';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { inert } from '../text.ts';

/** A broker URL as parsed: what to connect to, and how to name it in messages (no password). */
export interface BrokerAddress {
  readonly servers: readonly string[];
  readonly tls: boolean;
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
  /** The URL without credentials, for logs and status. */
  readonly display: string;
}

function clusterError(message: string, details: Record<string, unknown> = {}, cause?: unknown): LivemodError {
  return new LivemodError('cluster', ErrorCodes.CLUSTER, message, details, cause === undefined ? undefined : { cause });
}

/**
 * Parses `nats://[user:pass@|token@]host[:port][,host2[:port]…]` (or `tls://…` for a broker
 * behind TLS). Port 4222 when none is given.
 */
export function parseBrokerUrl(value: string): BrokerAddress {
  const hint = 'pass the broker as nats://HOST:PORT (or tls://HOST:PORT), e.g. --cluster nats://127.0.0.1:4222';
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048 || /[\s\p{Cc}]/u.test(value)) {
    throw clusterError(`the broker URL ${inert(String(value), 80)} is empty, too long or holds spaces or control characters; ${hint}`);
  }
  const match = /^(nats|tls):\/\/(?:([^@/]*)@)?([^/?#@]+)\/?$/.exec(value);
  if (!match) throw clusterError(`the broker URL ${inert(value, 120)} is not a nats:// or tls:// URL of hosts (or a redis:// URL); ${hint}`);
  const [, scheme, credentials, hostList] = match;
  const servers: string[] = [];
  const shown: string[] = [];
  for (const part of hostList!.split(',')) {
    let url: URL;
    try {
      url = new URL(`nats://${part}`);
    } catch {
      throw clusterError(`the broker URL ${inert(value, 120)} names the host ${inert(part, 80)}, which is not a host[:port]; ${hint}`);
    }
    if (url.hostname === '' || url.pathname !== '' && url.pathname !== '/') throw clusterError(`the broker URL ${inert(value, 120)} names the host ${inert(part, 80)}, which is not a host[:port]; ${hint}`);
    const port = url.port === '' ? 4222 : Number(url.port);
    servers.push(`${url.hostname}:${port}`);
    shown.push(`${url.hostname}:${port}`);
  }
  const address: { -readonly [K in keyof BrokerAddress]: BrokerAddress[K] } = { servers, tls: scheme === 'tls', display: `${scheme}://${shown.join(',')}` };
  if (credentials !== undefined && credentials !== '') {
    const decode = (part: string): string => {
      try {
        return decodeURIComponent(part);
      } catch {
        throw clusterError(`the broker URL's credentials hold a malformed %-escape; write them percent-encoded (e.g. %40 for @), or ${hint}`);
      }
    };
    const colon = credentials.indexOf(':');
    if (colon === -1) address.token = decode(credentials);
    else {
      address.user = decode(credentials.slice(0, colon));
      address.pass = decode(credentials.slice(colon + 1));
    }
  }
  return address;
}

/**
 * A subject token for an app name: NATS subjects split on dots and treat `*`, `>` and spaces
 * specially, while app names may hold any of them. Every character outside [A-Za-z0-9_-] is
 * written as `~` and its code point in hex, so two names never share a token.
 */
export function appToken(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/gu, (char) => `~${char.codePointAt(0)!.toString(16)}~`);
}

export const SUBJECTS: { readonly version: (app: string) => string; readonly fleet: string } = {
  /** Version announcements of one app. */
  version: (app: string): string => `livemod.app.${appToken(app)}.version`,
  /** Fleet questions: every server of every app answers. */
  fleet: 'livemod.fleet',
} as const;

/** Largest broker message livemod reads; anything larger is not one of its messages. */
export const MAX_BROKER_MESSAGE_BYTES: number = 16 * 1024;

/** Most answers a fleet question collects. */
export const MAX_FLEET_ANSWERS: number = 10_000;

/** 'closed': for good (the broker refused this client's credentials on reconnect, or close() was called). */
export type BrokerEvent = 'connected' | 'disconnected' | 'reconnected' | 'closed';

export interface Broker {
  readonly address: BrokerAddress;
  /** True while the connection is up. */
  readonly connected: boolean;
  /** Why the connection closed for good, once it has (null until then). */
  readonly closedWith: string | null;
  /** Sends (buffered while reconnecting); false when the connection is closed for good or the send failed. */
  publish(subject: string, message: unknown): boolean;
  /** Calls `handler` with each message's parsed JSON (messages that are not JSON or too large are dropped, and `dropped` told). */
  subscribe(subject: string, handler: (message: unknown, reply: ((answer: unknown) => void) | null) => void, dropped?: (why: string) => void): void;
  /** Asks every subscriber of `subject` and collects the answers that arrive within `waitMs`. */
  gather(subject: string, question: unknown, waitMs: number): Promise<unknown[]>;
  /** Told on each state change; a 'reconnected' is the cue to catch up. */
  on(listener: (event: BrokerEvent) => void): void;
  close(): Promise<void>;
}

function encode(message: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(message));
}

function decode(msg: Msg): unknown {
  if (msg.data.byteLength > MAX_BROKER_MESSAGE_BYTES) throw new RangeError(`${msg.data.byteLength} bytes, over ${MAX_BROKER_MESSAGE_BYTES}`);
  return JSON.parse(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength).toString('utf8')) as unknown;
}

/** What both brokers keep the same way: who is told of state changes, and whether it is up. */
export abstract class BrokerEvents {
  protected up = true;
  private readonly listeners = new Set<(event: BrokerEvent) => void>();

  protected emit(event: BrokerEvent): void {
    this.up = event === 'connected' || event === 'reconnected';
    for (const listener of this.listeners) listener(event);
  }

  on(listener: (event: BrokerEvent) => void): void {
    this.listeners.add(listener);
  }
}

class NatsBroker extends BrokerEvents implements Broker {
  readonly address: BrokerAddress;
  private readonly nc: NatsConnection;
  private closing = false;
  /** Why the connection closed for good, if it did. */
  closedWith: string | null = null;

  constructor(address: BrokerAddress, nc: NatsConnection) {
    super();
    this.address = address;
    this.nc = nc;
    void this.watch();
    void nc.closed().then((error) => {
      this.up = false;
      this.closedWith = error ? error.message : 'closed';
      if (!this.closing) this.emit('closed');
    });
  }

  get connected(): boolean {
    return this.up && !this.nc.isClosed();
  }

  private async watch(): Promise<void> {
    try {
      for await (const status of this.nc.status()) {
        if (status.type === 'disconnect') this.emit('disconnected');
        else if (status.type === 'reconnect') this.emit('reconnected');
      }
    } catch {
      // The iterator ends with the connection; closed() says why.
    }
  }

  publish(subject: string, message: unknown): boolean {
    if (this.nc.isClosed()) return false;
    try {
      // While disconnected the client buffers (up to its reconnect buffer) and sends on reconnect.
      this.nc.publish(subject, encode(message));
      return true;
    } catch {
      // Closed under us (a race with closed()), or the reconnect buffer is full: a hint lost, no more.
      return false;
    }
  }

  subscribe(subject: string, handler: (message: unknown, reply: ((answer: unknown) => void) | null) => void, dropped?: (why: string) => void): void {
    this.nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error) return;
        let parsed: unknown;
        try {
          parsed = decode(msg);
        } catch (problem) {
          dropped?.(`a message on ${subject} that is not livemod's ignored (${inert((problem as Error).message, 120)})`);
          return;
        }
        handler(parsed, msg.reply ? (answer) => msg.respond(encode(answer)) : null);
      },
    });
  }

  async gather(subject: string, question: unknown, waitMs: number): Promise<unknown[]> {
    const answers: unknown[] = [];
    try {
      // Answers are counted too: a fleet is servers, and a broker stuffed with fake answers must not fill memory.
      const replies = await this.nc.requestMany(subject, encode(question), { strategy: 'timer', maxWait: waitMs, maxMessages: MAX_FLEET_ANSWERS });
      for await (const msg of replies) {
        try {
          answers.push(decode(msg));
        } catch {
          // Not an answer livemod could have written; the caller validates the rest.
        }
      }
    } catch (error) {
      // No responders at all is an empty fleet, not an error.
      if ((error as { code?: string }).code !== '503' && !/no responders/i.test((error as Error).message)) throw error;
    }
    return answers;
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.nc.isClosed()) return;
    await this.nc.drain().catch(() => this.nc.close());
  }
}

export interface ConnectOptions {
  /** Name the broker shows for this connection (its monitoring lists it). */
  readonly name: string;
  /** How long the first connection may take (default 5 s). */
  readonly timeoutMs?: number;
}

/**
 * Connects to the broker. The first connection must succeed (a wrong URL is said at once);
 * after it, the client reconnects forever with jittered waits, and what was published while it
 * was away is sent when it is back.
 */
export async function connectBroker(url: string | BrokerAddress, options: ConnectOptions): Promise<Broker> {
  if (typeof url === 'string' && /^rediss?:/i.test(url)) {
    const { connectRedis, parseRedisUrl } = await import('./redis.ts');
    return connectRedis(parseRedisUrl(url), options);
  }
  const address = typeof url === 'string' ? parseBrokerUrl(url) : url;
  // Loaded only by commands that use a broker: nothing else pays for the NATS client.
  const { connect } = await import('@nats-io/transport-node');
  try {
    const nc = await connect({
      servers: [...address.servers],
      name: options.name,
      timeout: options.timeoutMs ?? 5000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      reconnectJitter: 500,
      pingInterval: 10_000,
      maxPingOut: 3,
      ...(address.tls ? { tls: {} } : {}),
      ...(address.user !== undefined ? { user: address.user, pass: address.pass ?? '' } : {}),
      ...(address.token !== undefined ? { token: address.token } : {}),
    });
    return new NatsBroker(address, nc);
  } catch (error) {
    const reason = (error as Error).message;
    throw clusterError(`cannot connect to the broker at ${address.display} (${inert(reason, 160)}); is nats-server running there, and is the URL right?`, { broker: address.display }, error);
  }
}

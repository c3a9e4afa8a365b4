// The broker as Redis pub/sub, for teams that run Redis rather than NATS: the same hints and
// questions on the same subjects (Redis channels), trusted no more than on NATS. Two connections,
// as Redis wants (one in subscriber mode cannot publish). Redis has no reply subjects, so every
// message travels in an envelope `{"body":…,"reply":…}`; a question names a channel of its own,
// which the asker listens on while it gathers answers. ioredis reconnects with its own backoff
// and subscribes again by itself.
import { randomBytes } from 'node:crypto';
import type { Redis, RedisOptions } from 'ioredis';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { inert } from '../text.ts';
import { BrokerEvents, MAX_BROKER_MESSAGE_BYTES, MAX_FLEET_ANSWERS, type Broker, type BrokerAddress, type ConnectOptions } from './broker.ts';

interface Envelope {
  readonly body: unknown;
  readonly reply?: string;
}

/** Reply channels are this prefix and random hex: only an asker listens on one. */
const REPLY_PREFIX = 'livemod.reply.';

function clusterError(message: string, details: Record<string, unknown> = {}, cause?: unknown): LivemodError {
  return new LivemodError('cluster', ErrorCodes.CLUSTER, message, details, cause === undefined ? undefined : { cause });
}

/** `redis://[user:pass@]host[:port][/db]` or `rediss://…` (TLS). */
export function parseRedisUrl(value: string): BrokerAddress {
  const hint = 'pass the broker as redis://HOST:PORT (or rediss:// for TLS), e.g. --cluster redis://127.0.0.1:6379';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw clusterError(`the broker URL ${inert(value, 120)} is not a URL; ${hint}`);
  }
  if ((url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '' || url.search || url.hash || !/^\/?(\d{1,2})?$/.test(url.pathname)) {
    throw clusterError(`the broker URL ${inert(value, 120)} is not a redis:// URL of one host (an optional /DB number, no query); ${hint}`);
  }
  const port = url.port === '' ? 6379 : Number(url.port);
  const decode = (part: string): string => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw clusterError(`the broker URL's credentials hold a malformed %-escape; write them percent-encoded, or ${hint}`);
    }
  };
  const db = url.pathname.replace('/', '');
  return {
    servers: [`${url.hostname}:${port}`],
    tls: url.protocol === 'rediss:',
    ...(url.username ? { user: decode(url.username) } : {}),
    ...(url.password ? { pass: decode(url.password) } : {}),
    display: `${url.protocol}//${url.hostname}:${port}${db ? `/${db}` : ''}`,
  };
}

class RedisBroker extends BrokerEvents implements Broker {
  readonly address: BrokerAddress;
  closedWith: string | null = null;
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly handlers = new Map<string, (body: unknown, reply: string | undefined) => void>();
  private closing = false;

  constructor(address: BrokerAddress, pub: Redis, sub: Redis) {
    super();
    this.address = address;
    this.pub = pub;
    this.sub = sub;
    sub.on('message', (channel: string, text: string) => {
      // ioredis rethrows a listener's exception as an uncaught one: nothing a publisher sends may reach that.
      try {
        const handler = this.handlers.get(channel);
        if (!handler) return;
        if (text.length > MAX_BROKER_MESSAGE_BYTES + 1024) {
          handler(undefined, undefined);
          return;
        }
        let envelope: Envelope;
        try {
          envelope = JSON.parse(text) as Envelope;
        } catch {
          handler(undefined, undefined);
          return;
        }
        const reply = typeof envelope?.reply === 'string' && envelope.reply.startsWith(REPLY_PREFIX) && envelope.reply.length <= 64 ? envelope.reply : undefined;
        handler(typeof envelope === 'object' && envelope !== null ? envelope.body : undefined, reply);
      } catch {
        // A message livemod could not handle is a message dropped.
      }
    });
    // Either connection going down is the broker going away; both back is the cue to catch up.
    for (const connection of [pub, sub]) {
      connection.on('error', () => {});
      connection.on('close', () => {
        if (this.up && !this.closing) this.emit('disconnected');
      });
      connection.on('ready', () => {
        if (!this.up && !this.closing && pub.status === 'ready' && sub.status === 'ready') this.emit('reconnected');
      });
    }
    sub.on('end', () => {
      if (this.closing) return;
      this.closedWith = 'the connection ended';
      this.emit('closed');
    });
  }

  get connected(): boolean {
    return this.up && this.pub.status === 'ready' && this.sub.status === 'ready';
  }

  publish(subject: string, message: unknown): boolean {
    return this.send(subject, { body: message });
  }

  private send(channel: string, envelope: Envelope): boolean {
    if (this.pub.status === 'end') return false;
    // Queued by ioredis while reconnecting; a failure is a hint lost, no more.
    this.pub.publish(channel, JSON.stringify(envelope)).catch(() => {});
    return true;
  }

  subscribe(subject: string, handler: (message: unknown, reply: ((answer: unknown) => void) | null) => void, dropped?: (why: string) => void): void {
    this.handlers.set(subject, (body, reply) => {
      // The envelope's size was bounded before it was parsed.
      if (body === undefined) {
        dropped?.(`a message on ${subject} that is not livemod's (or over ${MAX_BROKER_MESSAGE_BYTES} bytes) ignored`);
        return;
      }
      handler(body, reply ? (answer) => void this.send(reply, { body: answer }) : null);
    });
    this.sub.subscribe(subject).catch(() => {});
  }

  async gather(subject: string, question: unknown, waitMs: number): Promise<unknown[]> {
    const reply = `${REPLY_PREFIX}${randomBytes(12).toString('hex')}`;
    const answers: unknown[] = [];
    try {
      this.handlers.set(reply, (body) => {
        if (body !== undefined && answers.length < MAX_FLEET_ANSWERS) answers.push(body);
      });
      // While the broker is away the subscription waits: the question's own wait bounds it.
      const subscribed = await Promise.race([this.sub.subscribe(reply).then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), waitMs))]);
      if (!subscribed) return answers;
      this.send(subject, { body: question, reply });
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    } finally {
      this.handlers.delete(reply);
      await this.sub.unsubscribe(reply).catch(() => {});
    }
    return answers;
  }

  async close(): Promise<void> {
    this.closing = true;
    this.up = false;
    // QUIT waits behind whatever was queued while the broker was away: a connection not ready is cut.
    await Promise.all([this.pub, this.sub].map(async (connection) => {
      if (connection.status === 'end') return;
      if (connection.status !== 'ready') {
        connection.disconnect();
        return;
      }
      const quit = connection.quit().then(() => true, () => false);
      const done = await Promise.race([quit, new Promise<false>((resolve) => setTimeout(() => resolve(false), 1000))]);
      if (!done) connection.disconnect();
    }));
  }
}

export async function connectRedis(address: BrokerAddress, options: ConnectOptions): Promise<Broker> {
  // Loaded only for a redis:// broker.
  const { Redis } = await import('ioredis');
  const [bracketed, port] = address.servers[0]!.split(/:(?=\d+$)/) as [string, string];
  const host = bracketed.replace(/^\[(.*)\]$/, '$1');
  const db = /\/(\d+)$/.exec(address.display)?.[1];
  const settings: RedisOptions = {
    host,
    port: Number(port),
    ...(address.user !== undefined ? { username: address.user } : {}),
    ...(address.pass !== undefined ? { password: address.pass } : {}),
    ...(db !== undefined ? { db: Number(db) } : {}),
    ...(address.tls ? { tls: {} } : {}),
    connectionName: options.name.replace(/\s+/g, '-'),
    lazyConnect: true,
    connectTimeout: options.timeoutMs ?? 5000,
    maxRetriesPerRequest: null,
    // Jittered, growing waits up to 2 s, forever: replicas that lost the broker together do not come back in step.
    retryStrategy: (times: number) => Math.min(2000, 100 * 2 ** Math.min(times, 5)) * (0.5 + Math.random() / 2),
  };
  const pub = new Redis(settings);
  const sub = new Redis(settings);
  // Listened to before connecting: the first error is the cause to report (refused, unknown host, wrong password).
  let first: Error | undefined;
  for (const connection of [pub, sub]) connection.on('error', (error: Error) => (first ??= error));
  try {
    // The first connection must succeed: a wrong URL is said at once.
    await Promise.all([pub.connect(), sub.connect()]);
  } catch (error) {
    pub.disconnect();
    sub.disconnect();
    const cause = first ?? (error as Error);
    throw clusterError(`cannot connect to the broker at ${address.display} (${inert(cause.message, 160)}); is redis-server running there, and is the URL right?`, { broker: address.display }, cause);
  }
  return new RedisBroker(address, pub, sub);
}

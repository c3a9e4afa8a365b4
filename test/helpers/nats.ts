// A real NATS server (Debian's nats-server; .ci/run installs it) for the scale-out tests and the
// fan-out bench: on 127.0.0.1, a free port, stopped by whoever started it (and at process exit).
// stop() then start() keeps the port, as a broker outage looks to clients.
import { existsSync } from 'node:fs';
import { daemon } from './daemon.ts';

export const NATS_BINARY = '/usr/sbin/nats-server';

/** Why nats-server cannot be used here, or null when it can. */
export function natsMissing(): string | null {
  return existsSync(NATS_BINARY) ? null : `nats-server not installed (${NATS_BINARY} is missing): apt-get install -y nats-server`;
}

export interface Nats {
  readonly url: string;
  readonly port: number;
  /** Stops the server (clients see an outage); idempotent. */
  stop(): Promise<void>;
  /** Starts it again on the same port (with `auth`: requiring that user and password). */
  start(auth?: { user: string; pass: string }): Promise<void>;
}

export async function startNats(): Promise<Nats> {
  const server = await daemon(NATS_BINARY, (port) => ['-a', '127.0.0.1', '-p', String(port)]);
  return {
    url: `nats://127.0.0.1:${server.port}`,
    port: server.port,
    stop: () => server.stop(),
    start: (auth) => server.start(auth ? ['--user', auth.user, '--pass', auth.pass] : []),
  };
}

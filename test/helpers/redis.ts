// A real Redis (Debian's redis-server; .ci/run installs it) for the scale-out tests over Redis:
// on 127.0.0.1, a free port, nothing saved to disk, stopped by whoever started it (and at exit).
import { existsSync } from 'node:fs';
import { daemon } from './daemon.ts';

export const REDIS_BINARY = '/usr/bin/redis-server';

export function redisMissing(): string | null {
  return existsSync(REDIS_BINARY) ? null : `redis-server not installed (${REDIS_BINARY} is missing): apt-get install -y redis-server`;
}

export interface RedisServer {
  readonly url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const server = await daemon(REDIS_BINARY, (port) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no']);
  return { url: `redis://127.0.0.1:${server.port}`, stop: () => server.stop(), start: () => server.start() };
}

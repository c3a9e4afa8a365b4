// A real Redis (Debian's redis-server; .ci/run installs it) for the scale-out tests over Redis:
// on 127.0.0.1, a free port, nothing saved to disk, stopped by whoever started it (and at exit).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';

export const REDIS_BINARY = '/usr/bin/redis-server';

export function redisMissing(): string | null {
  return existsSync(REDIS_BINARY) ? null : `redis-server not installed (${REDIS_BINARY} is missing): apt-get install -y redis-server`;
}

export interface RedisServer {
  readonly url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

const running = new Set<ChildProcess>();
let hooked = false;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const started of running) if (started.exitCode === null && started.signalCode === null) started.kill('SIGKILL');
    });
  }
  const start = async (): Promise<void> => {
    let output = '';
    const started = spawn(REDIS_BINARY, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    running.add(started);
    started.once('exit', () => running.delete(started));
    started.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    started.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 10_000;
    while (!(await accepts(port))) {
      if (started.exitCode !== null) throw new Error(`redis-server exited with ${started.exitCode}: ${output.trim().slice(-500)}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${port} within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const stop = async (): Promise<void> => {
    const current = child;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    const exited = new Promise((resolve) => current.once('exit', resolve));
    current.kill('SIGTERM');
    const timer = setTimeout(() => current.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, start, stop };
}

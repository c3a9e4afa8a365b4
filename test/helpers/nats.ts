// A real NATS server (Debian's nats-server; .ci/run installs it) for the scale-out tests and the
// fan-out bench: on 127.0.0.1, a free port, stopped by whoever started it (and at process exit).
// restart() stops it and starts it again on the same port, as a broker outage looks to clients.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';

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

/** Every nats-server this process started, killed at its exit (one listener for all of them). */
const running = new Set<ChildProcess>();
let hooked = false;

export async function startNats(): Promise<Nats> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  let stderr = '';
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const started of running) if (started.exitCode === null && started.signalCode === null) started.kill('SIGKILL');
    });
  }
  const start = async (auth?: { user: string; pass: string }): Promise<void> => {
    stderr = '';
    const started = spawn(NATS_BINARY, ['-a', '127.0.0.1', '-p', String(port), ...(auth ? ['--user', auth.user, '--pass', auth.pass] : [])], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = started;
    running.add(started);
    started.once('exit', () => running.delete(started));
    started.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = Date.now() + 10_000;
    while (!(await accepts(port))) {
      if (started.exitCode !== null) throw new Error(`nats-server exited with ${started.exitCode}: ${stderr.trim()}`);
      if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${port} within 10 s: ${stderr.trim()}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const stop = async (): Promise<void> => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    start,
    async stop() {
      await stop();
    },
  };
}

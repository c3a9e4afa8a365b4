// A server binary from Debian's packages (nats-server, redis-server) as tests and benches run
// one: on 127.0.0.1 and a free port, ready once the port accepts, stopped by whoever started it
// (SIGTERM, then SIGKILL after 5 s) and killed at this process's exit if still running. stop()
// and start() again keep the port: clients see an outage and a return, as from a restart.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type AddressInfo } from 'node:net';

/** A port free on 127.0.0.1 now (another process may still take it before it is used). */
export function freePort(): Promise<number> {
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

/** Every daemon this process started, killed at its exit (one listener for all of them). */
const running = new Set<ChildProcess>();
let hooked = false;

export interface Daemon {
  readonly port: number;
  /** Starts it (again) on its port, with `extra` arguments for this start. */
  start(extra?: readonly string[]): Promise<void>;
  /** Stops it; idempotent. */
  stop(): Promise<void>;
}

export async function daemon(binary: string, args: (port: number) => readonly string[]): Promise<Daemon> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const started of running) if (started.exitCode === null && started.signalCode === null) started.kill('SIGKILL');
    });
  }
  const start = async (extra: readonly string[] = []): Promise<void> => {
    let output = '';
    const started = spawn(binary, [...args(port), ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    running.add(started);
    started.once('exit', () => running.delete(started));
    started.stdout!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-2000)));
    started.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-2000)));
    const deadline = Date.now() + 10_000;
    while (!(await accepts(port))) {
      if (started.exitCode !== null) throw new Error(`${binary} exited with ${started.exitCode}: ${output.trim()}`);
      if (Date.now() > deadline) throw new Error(`${binary} did not listen on ${port} within 10 s: ${output.trim()}`);
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
  return { port, start, stop };
}

// A tool's program as a child process that speaks the JSON-line protocol of app.ts: the driver
// waits for the value it wrote, or asks for the heap. Each child runs in its own process group so
// that stopping it also stops what it started (`node --watch` runs the program as its own child).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** One JSON line with an `event` (the protocol's, or `livemod serve --json`'s). */
export interface Message {
  readonly event: string;
  readonly [field: string]: unknown;
}

interface Waiter {
  readonly accept: (message: Message) => boolean;
  readonly resolve: (message: Message) => void;
}

const STDERR_TAIL = 4000;
const running = new Set<ToolProcess>();
// A bench that throws must not leave watchers and servers running.
process.on('exit', () => {
  for (const child of running) child.kill();
});

export class ToolProcess {
  private readonly process: ChildProcess;
  private readonly waiters = new Set<Waiter>();
  private stderr = '';
  private exited: string | null = null;
  private stopping: Promise<void> | undefined;
  /** Told of every message as it arrives, with this process's monotonic time. */
  onMessage: ((message: Message, at: bigint) => void) | undefined;

  readonly name: string;

  constructor(name: string, command: string, args: readonly string[], cwd: string) {
    this.name = name;
    this.process = spawn(command, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: { ...process.env, FORCE_COLOR: '0' } });
    this.process.stderr!.setEncoding('utf8');
    this.process.stderr!.on('data', (chunk: string) => (this.stderr = (this.stderr + chunk).slice(-STDERR_TAIL)));
    createInterface({ input: this.process.stdout! }).on('line', (line) => {
      // Tools print their own lines (node --watch's "Restarting…"); only the protocol's are JSON.
      if (!line.startsWith('{"event"')) return;
      const message = JSON.parse(line) as Message;
      this.onMessage?.(message, process.hrtime.bigint());
      for (const waiter of this.waiters) {
        if (!waiter.accept(message)) continue;
        this.waiters.delete(waiter);
        waiter.resolve(message);
      }
    });
    running.add(this);
    this.process.on('exit', (code, signal) => {
      running.delete(this);
      this.exited = `${name} exited (${signal ?? code}) — stderr: ${this.stderr.trim() || '(empty)'}`;
    });
  }

  /** What the child printed on stderr lately (for an error that names the tool's own message). */
  get errors(): string {
    return this.stderr.trim();
  }

  /** The next message `accept` takes; rejects after `timeoutMs` or when the child exits. */
  wait(accept: (message: Message) => boolean, timeoutMs: number): Promise<Message> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        accept,
        resolve: (message) => {
          clearTimeout(timer);
          this.process.off('exit', onExit);
          resolve(message);
        },
      };
      const fail = (why: string): void => {
        this.waiters.delete(waiter);
        this.process.off('exit', onExit);
        reject(new Error(why));
      };
      const onExit = (): void => {
        clearTimeout(timer);
        fail(this.exited ?? `${this.name} exited`);
      };
      const timer = setTimeout(() => fail(`${this.name}: no answer within ${timeoutMs} ms — stderr: ${this.stderr.trim().slice(-600) || '(empty)'}`), timeoutMs);
      this.waiters.add(waiter);
      this.process.once('exit', onExit);
    });
  }

  /** Resolves with the child's clock when a call returns `value`. */
  async valueAt(value: number, timeoutMs: number): Promise<bigint> {
    const message = await this.wait((m) => m.event === 'value' && m.value === value, timeoutMs);
    return BigInt(message.t as string);
  }

  /** The child's heap after full collections (it must run with --expose-gc). */
  async heap(timeoutMs = 30_000): Promise<{ bytes: number; rss: number; retainedVersions: number | null }> {
    const answer = this.wait((m) => m.event === 'heap', timeoutMs);
    this.process.stdin!.write('heap\n');
    const message = await answer;
    return { bytes: message.bytes as number, rss: message.rss as number, retainedVersions: typeof message.retainedVersions === 'number' ? message.retainedVersions : null };
  }

  /** At exit of the bench: the whole process group, at once. */
  kill(): void {
    if (this.exited || this.process.pid === undefined) return;
    try {
      process.kill(-this.process.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  /** Stops the child and everything in its process group; idempotent. */
  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      if (this.exited || this.process.pid === undefined) {
        resolve();
        return;
      }
      this.process.once('exit', () => resolve());
      try {
        process.kill(-this.process.pid, 'SIGTERM');
      } catch {
        resolve();
      }
    });
    return this.stopping;
  }
}

// A livemod server on its own thread: a client in the test's own thread may then block on a
// fetch (a lazy first read waits for its graph) without blocking the server that answers it.
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';

export interface ServerThread {
  readonly url: string;
  readonly publicKey: string;
  /** Builds `dir` and publishes it as the next version. */
  publish(dir: string): Promise<void>;
  /** The server closes, and its port then accepts connections and never answers. */
  silence(): Promise<void>;
  /** Connections the silent port accepted so far. */
  connections(): Promise<number>;
}

export async function startServerThread(t: { after(fn: () => Promise<void> | void): void }, dir: string, options: { keepVersions?: number } = {}): Promise<ServerThread> {
  const worker = new Worker(new URL('./server-thread-entry.ts', import.meta.url), { workerData: { dir, options } });
  t.after(async () => {
    await worker.terminate();
  });
  const [{ url, publicKey }] = (await once(worker, 'message')) as [{ url: string; publicKey: string }];
  return {
    url,
    publicKey,
    async publish(next) {
      worker.postMessage({ dir: next });
      await once(worker, 'message');
    },
    async silence() {
      worker.postMessage({ blackhole: true });
      await once(worker, 'message');
    },
    async connections() {
      worker.postMessage({ count: true });
      const [count] = (await once(worker, 'message')) as [number];
      return count;
    },
  };
}

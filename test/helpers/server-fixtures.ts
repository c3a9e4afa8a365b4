// Snapshots and servers for the server tests: real keys, real signatures, real sockets on port 0.
import type { TestContext } from 'node:test';
import { createModuleServer, type ModuleServer, type ServerOptions } from '../../src/server/index.ts';
import { generatePublisherKey, sha256Hex, signSnapshot, type ModuleRecord, type PublisherKey, type Snapshot } from '../../src/snapshot/index.ts';

export interface FixtureOptions {
  readonly previousVersion?: number;
  readonly entry?: string | null;
  /** Give every module a source map blob too. */
  readonly maps?: boolean;
  /** The app name the manifest binds to (default "test-app"). */
  readonly name?: string;
}

/** Signs a snapshot whose modules hold exactly the given bytes. */
export function makeSnapshot(key: PublisherKey, files: Readonly<Record<string, string | Buffer>>, options: FixtureOptions = {}): Snapshot {
  const blobs = new Map<string, Buffer>();
  const ref = (content: string | Buffer): { hash: string; size: number } => {
    const bytes = Buffer.from(content);
    const hash = sha256Hex(bytes);
    blobs.set(hash, bytes);
    return { hash, size: bytes.length };
  };
  const modules: Record<string, ModuleRecord> = {};
  for (const [path, content] of Object.entries(files)) {
    modules[path] = {
      blob: ref(content),
      map: options.maps ? ref(JSON.stringify({ version: 3, sources: [path], mappings: '' })) : null,
      imports: [],
      exports: ['default'],
      star: [],
      tla: false,
    };
  }
  const entry = options.entry === undefined ? (Object.keys(files).sort()[0] ?? null) : options.entry;
  return signSnapshot({ name: options.name ?? 'test-app', modules, entry, blobs }, key, options.previousVersion === undefined ? {} : { previousVersion: options.previousVersion });
}

/** `count` modules of distinct content, named m0000.ts…; sizes vary so framing errors show. */
export function manyFiles(count: number, prefix = ''): Record<string, string> {
  const files: Record<string, string> = {};
  for (let index = 0; index < count; index += 1) {
    files[`m${String(index).padStart(4, '0')}.ts`] = `${prefix}export default ${index};\n${'x'.repeat(index % 97)}\n`;
  }
  return files;
}

export interface Running {
  readonly server: ModuleServer;
  readonly url: string;
  readonly port: number;
  readonly key: PublisherKey;
  readonly logs: string[];
  /** Resolves with the first log line (past or future) matching `pattern`. */
  logged(pattern: RegExp, ms?: number): Promise<string>;
}

/** A listening server on 127.0.0.1:0, closed when the test ends. */
export async function startServer(t: TestContext, options: Partial<ServerOptions> = {}): Promise<Running> {
  const logs: string[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: (line: string) => void }>();
  const log = (line: string): void => {
    logs.push(line);
    for (const waiter of waiters) {
      if (waiter.pattern.test(line)) {
        waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  };
  const logged = (pattern: RegExp, ms = 5000): Promise<string> => {
    const past = logs.find((line) => pattern.test(line));
    if (past !== undefined) return Promise.resolve(past);
    return within(new Promise((resolve) => waiters.add({ pattern, resolve })), ms, `a log line matching ${pattern}`);
  };
  const server = createModuleServer({ host: '127.0.0.1', port: 0, log, ...options });
  t.after(() => server.close());
  const { url, port } = await server.listen();
  return { server, url, port, key: generatePublisherKey(), logs, logged };
}

/** Rejects after `ms`, naming what was awaited, so a hung wait fails fast with a reason. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// The s3rver process of helpers/s3rver.ts: argv is the data folder, then the buckets to create.
// Tells its parent over IPC when it listens ({ port }), each object write ({ write }), and
// answers 'ping' with 'pong' after every message before it, so the parent can wait for the
// writes of requests already answered. Exits when its parent goes away.
import { createRequire } from 'node:module';

interface S3rverEvent {
  readonly Records: ReadonlyArray<{ readonly eventName: string; readonly s3: { readonly object: { readonly key: string } } }>;
}

interface S3rverServer {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  on(event: 'event', listener: (event: S3rverEvent) => void): void;
}

// CommonJS without types: typed here by what is used.
const S3rver = createRequire(import.meta.url)('s3rver') as new (options: Record<string, unknown>) => S3rverServer;

const [directory, ...buckets] = process.argv.slice(2);
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: buckets.map((name) => ({ name })) });
const { port } = await server.run();
server.on('event', (event) => {
  for (const record of event.Records) process.send!({ write: `${record.eventName} ${record.s3.object.key}` });
});
process.on('message', (message) => {
  if (message === 'ping') process.send!('pong');
});
process.on('disconnect', () => void server.close().finally(() => process.exit(0)));
process.send!({ port });

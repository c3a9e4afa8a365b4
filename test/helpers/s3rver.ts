// A REAL S3-compatible server for tests: s3rver 3.7 (Koa, objects as files) in its own process on
// 127.0.0.1:0, its data in a temp folder, stopped when the test ends. What it does and does not
// do, as the tests rely on it:
// - path-style buckets; anonymous GET and HEAD (no ACLs), so its URL is a static host for `livemod run`;
// - Cache-Control and Content-Type of a PUT are kept and served back;
// - ListObjectsV2 with Delimiter and MaxKeys; a truncated listing's continuation token is
//   enciphered with DES, which OpenSSL 3 (Node ≥ 17) has only in its legacy provider, so the
//   process runs with --openssl-legacy-provider or paging answers 500;
// - single byte ranges only: a multi-range header is answered 206 with ONE range, from the first
//   range's start to the end of the object (not multipart/byteranges);
// - an unknown access key id is refused (InvalidAccessKeyId, 403), but SigV4 signatures are not
//   checked: a wrong secret with a known key id is accepted.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from './fs.ts';

const ENTRY = fileURLToPath(new URL('./s3rver-entry.ts', import.meta.url));

export interface S3Store {
  /** http://127.0.0.1:PORT, no trailing slash: the endpoint to give the S3 client. */
  readonly endpoint: string;
  /** Every object write ("ObjectCreated:Put key"), in order; current after `settled()`. */
  readonly writes: string[];
  /** Resolves once every write of a request already answered is in `writes`. */
  settled(): Promise<void>;
  /** The credentials s3rver knows. */
  readonly env: { readonly AWS_ACCESS_KEY_ID: string; readonly AWS_SECRET_ACCESS_KEY: string };
}

export async function startS3rver(t: TestContext, buckets: readonly string[]): Promise<S3Store> {
  const child = fork(ENTRY, [tempDir(t, 'livemod-s3rver-'), ...buckets], { execArgv: ['--openssl-legacy-provider'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = once(child, 'exit');
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  const writes: string[] = [];
  const pongs: Array<() => void> = [];
  let ready: (port: number) => void = () => {};
  const port = new Promise<number>((resolve) => (ready = resolve));
  child.on('message', (message: unknown) => {
    if (message === 'pong') pongs.shift()?.();
    else if (typeof message === 'object' && message !== null && 'write' in message) writes.push(String(message.write));
    else if (typeof message === 'object' && message !== null && 'port' in message) ready(Number(message.port));
  });
  const started = await Promise.race([port, exited.then(() => null), new Promise<null>((resolve) => setTimeout(resolve, 20_000, null).unref())]);
  if (started === null) throw new Error('s3rver did not start within 20 s');
  return {
    endpoint: `http://127.0.0.1:${started}`,
    writes,
    settled: () => new Promise<void>((resolve) => {
      pongs.push(resolve);
      child.send('ping');
    }),
    env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' },
  };
}

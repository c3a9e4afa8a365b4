// HTTPS and WSS with a self-signed certificate made for the test.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BIN } from './helpers/cli.ts';
import { openChannel } from './helpers/server-clients.ts';
import { makeSnapshot, startServer, within } from './helpers/server-fixtures.ts';

function selfSigned(dir: string): { cert: Buffer; key: Buffer } | string {
  const result = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'ed25519', '-nodes', '-days', '1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { encoding: 'utf8' });
  if (result.error) return `openssl cannot run (${(result.error as NodeJS.ErrnoException).code})`;
  if (result.status !== 0) return `openssl failed: ${result.stderr.trim().split('\n')[0]}`;
  return { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) };
}

test('with tls, the server speaks HTTPS and WSS', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'livemod-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pair = selfSigned(dir);
  if (typeof pair === 'string') {
    console.log(`skipping the TLS test: ${pair}`);
    t.skip(pair);
    return;
  }
  const { server, url, key } = await startServer(t, { tls: pair });
  assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const snapshot = makeSnapshot(key, { 'a.ts': 'a' });
  server.publish(snapshot);
  const body = await within(new Promise<{ status: number; bytes: Buffer }>((resolve, reject) => {
    httpsGet(`${url}/manifest.json`, { ca: pair.cert }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes: Buffer.concat(chunks) }));
    }).on('error', reject);
  }), 5000, 'the HTTPS manifest');
  assert.equal(body.status, 200);
  assert.deepEqual(body.bytes, snapshot.sealed.bytes);
  const channel = await openChannel(url, { ca: pair.cert });
  t.after(() => channel.ws.terminate());
  assert.equal(channel.ws.url.slice(0, 6), 'wss://');
  assert.deepEqual(await channel.next('hello over wss'), { type: 'hello', protocol: 1, version: snapshot.manifest.version, etag: snapshot.sealed.etag });
  // A client that does not trust the certificate is refused by TLS itself.
  const untrusted = await new Promise<string>((resolve) => {
    httpsGet(`${url}/healthz`, (res) => resolve(`answered ${res.statusCode}`)).on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
  assert.match(untrusted, /SELF_SIGNED|CERT/);
});

test('livemod run over HTTPS: an untrusted certificate says how to trust it; NODE_EXTRA_CA_CERTS does', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'livemod-tls-run-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pair = selfSigned(dir);
  if (typeof pair === 'string') {
    t.skip(pair);
    return;
  }
  const { server, url, key } = await startServer(t, { tls: pair, tokens: ['tls-token-123'] });
  server.publish(makeSnapshot(key, { 'main.js': 'console.log("over https");' }, { entry: 'main.js' }));
  const run = (env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> => new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'run', `${url}/main.js`, '--key', key.publicKeyString, '--token', 'tls-token-123', '--cache', join(dir, 'cache')], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
  const untrusted = await run({});
  assert.equal(untrusted.status, 1);
  assert.match(untrusted.stderr, /NODE_EXTRA_CA_CERTS/);
  const trusted = await run({ NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') });
  assert.equal(trusted.status, 0, trusted.stderr);
  assert.equal(trusted.stdout.trim(), 'over https');
});

test("livemod's channel client follows a wss: channel; importing it does not load node:tls", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'livemod-tls-channel-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pair = selfSigned(dir);
  if (typeof pair === 'string') {
    t.skip(pair);
    return;
  }
  const { server, url, key } = await startServer(t, { tls: pair });
  const first = makeSnapshot(key, { 'a.ts': 'a' });
  server.publish(first);
  // A child that trusts the certificate the way a program does (NODE_EXTRA_CA_CERTS, read at its start).
  const script = [
    `import { ChannelClient } from ${JSON.stringify(new URL('../src/client/channel.ts', import.meta.url).href)};`,
    `const tlsBefore = process.moduleLoadList.some((name) => name === 'NativeModule tls');`,
    `const client = new ChannelClient({ url: ${JSON.stringify(`${url}/channel`)}, headers: {}, status: () => ({ type: 'status', version: 0 }), log: (line) => console.error(line),`,
    `  onVersion: (version, hello) => { console.log(JSON.stringify({ version, hello, tlsBefore })); client.close(); } });`,
    `client.start();`,
    `setTimeout(() => {}, 10000).unref();`,
    `await new Promise((resolve) => setTimeout(resolve, 8000));`,
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  await within(new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (stdout.includes('\n')) {
        clearInterval(check);
        resolve();
      }
    }, 20);
  }), 8000, `the hello over wss (stderr: ${stderr})`);
  assert.deepEqual(JSON.parse(stdout.split('\n')[0]!), { version: first.manifest.version, hello: true, tlsBefore: false });
});

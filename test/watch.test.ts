// `livemod serve --watch` as a user runs it: a real process, real file edits, a real WebSocket.
import assert from 'node:assert/strict';
import { rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { openManifest, parsePublicKey, type Manifest } from '../src/snapshot/index.ts';
import { startCli } from './helpers/cli.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';

interface Pushed {
  type: string;
  version: number;
}

/** Collects channel messages; `until` resolves when one matches. */
function channel(url: string): { socket: WebSocket; until(predicate: (message: Pushed) => boolean, timeoutMs?: number): Promise<Pushed>; opened: Promise<void> } {
  const socket = new WebSocket(url.replace(/^http/, 'ws') + '/channel');
  const seen: Pushed[] = [];
  const waiters: { predicate: (message: Pushed) => boolean; resolve: (message: Pushed) => void }[] = [];
  socket.on('message', (data) => {
    const message = JSON.parse(String(data)) as Pushed;
    seen.push(message);
    for (const waiter of [...waiters]) {
      if (waiter.predicate(message)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(message);
      }
    }
  });
  return {
    socket,
    opened: new Promise((resolve, reject) => socket.once('open', () => resolve()).once('error', reject)),
    until(predicate, timeoutMs = 15_000) {
      const found = seen.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching channel message in ${timeoutMs} ms; saw ${JSON.stringify(seen)}`)), timeoutMs);
        waiters.push({ predicate, resolve: (message) => (clearTimeout(timer), resolve(message)) });
      });
    },
  };
}

async function manifestOf(url: string, publicKey: string): Promise<Manifest> {
  const response = await fetch(`${url}/manifest.json`);
  return openManifest(new Uint8Array(await response.arrayBuffer()), parsePublicKey(publicKey), url);
}

async function blobText(url: string, hash: string): Promise<string> {
  return (await fetch(`${url}/blobs/${hash}`)).text();
}

test('an edit is rebuilt, signed and pushed; a burst of saves ends on the last one', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'main.ts': `import { value } from './value';\nconsole.log(value);`, 'value.ts': 'export const value = "v0";' });
  const serve = startCli(['serve', dir, '--port', '0', '--watch']);
  t.after(() => serve.stop());
  const listening = await serve.next((event) => event.event === 'listening');
  await serve.next((event) => event.event === 'watching');
  const url = listening.url as string;
  const publicKey = listening.publicKey as string;
  const client = channel(url);
  t.after(() => client.socket.terminate());
  await client.opened;
  const hello = await client.until((message) => message.type === 'hello');
  assert.equal(hello.version, listening.version);

  writeFileSync(join(dir, 'value.ts'), 'export const value = "v1";');
  const pushed = await client.until((message) => message.type === 'version');
  assert.ok(pushed.version > (listening.version as number));
  const manifest = await manifestOf(url, publicKey);
  assert.equal(manifest.version, pushed.version, 'the pushed version is the one served');
  assert.match(await blobText(url, manifest.modules['value.ts']!.blob.hash), /"v1"/);

  // 40 saves 2 ms apart: far inside chokidar's 50 ms change throttle.
  for (let index = 2; index <= 41; index += 1) {
    writeFileSync(join(dir, 'value.ts'), `export const value = "v${index}";`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  // However the saves coalesced, the served snapshot must end on the last one.
  const deadline = Date.now() + 15_000;
  let final = await manifestOf(url, publicKey);
  while (!(await blobText(url, final.modules['value.ts']!.blob.hash)).includes('"v41"')) {
    assert.ok(Date.now() < deadline, 'the last save reached the served snapshot');
    await client.until((message) => message.type === 'version' && message.version > final.version);
    final = await manifestOf(url, publicKey);
  }
  assert.ok(final.version > pushed.version);
});

test('a syntax error mid-edit keeps serving the previous version and reports it', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'main.ts': 'export const a: number = 1;' });
  const serve = startCli(['serve', dir, '--port', '0', '--watch']);
  t.after(() => serve.stop());
  const listening = await serve.next((event) => event.event === 'listening');
  await serve.next((event) => event.event === 'watching');
  writeFileSync(join(dir, 'main.ts'), 'export const a: number = ;');
  const error = await serve.next((event) => event.event === 'error');
  assert.equal(error.code, 'ERR_LIVEMOD_BUILD_FAILED');
  assert.match(error.message as string, /main\.ts:1:\d+/);
  const manifest = await manifestOf(listening.url as string, listening.publicKey as string);
  assert.equal(manifest.version, listening.version);
  writeFileSync(join(dir, 'main.ts'), 'export const a: number = 2;');
  const published = await serve.next((event) => event.event === 'published');
  assert.ok((published.version as number) > (listening.version as number));
});

test('watch mode never publishes a file reached through a symlink that leaves the folder, nor loops through one', async (t) => {
  const dir = tempDir(t);
  const outside = tempDir(t);
  writeFiles(outside, { 'secret.ts': 'export const secret = "TOPSECRET";' });
  writeFiles(dir, { 'main.ts': 'export const a = 1;' });
  symlinkSync(outside, join(dir, 'link'));
  symlinkSync('.', join(dir, 'loop'));
  const serve = startCli(['serve', dir, '--port', '0', '--watch']);
  t.after(() => serve.stop());
  const listening = await serve.next((event) => event.event === 'listening');
  await serve.next((event) => event.event === 'watching');
  writeFileSync(join(outside, 'secret.ts'), 'export const secret = "TOPSECRET2";');
  writeFileSync(join(outside, 'new.ts'), 'export const more = "TOPSECRET3";');
  writeFileSync(join(dir, 'main.ts'), 'export const a = 2;');
  await serve.next((event) => event.event === 'published');
  const manifest = await manifestOf(listening.url as string, listening.publicKey as string);
  assert.deepEqual(Object.keys(manifest.modules), ['main.ts']);
  for (const record of Object.values(manifest.modules)) assert.doesNotMatch(await blobText(listening.url as string, record.blob.hash), /TOPSECRET/);
});

test('a watched folder removed and created again is reported and watched again', async (t) => {
  const parent = tempDir(t);
  const dir = join(parent, 'src');
  writeFiles(dir, { 'main.ts': 'export const a = 1;' });
  const serve = startCli(['serve', dir, '--port', '0', '--watch']);
  t.after(() => serve.stop());
  const listening = await serve.next((event) => event.event === 'listening');
  await serve.next((event) => event.event === 'watching');
  rmSync(dir, { recursive: true, force: true });
  const gone = await serve.next((event) => event.event === 'error');
  assert.equal(gone.code, 'ERR_LIVEMOD_DIR_INVALID');
  writeFiles(dir, { 'main.ts': 'export const a = "back";' });
  const published = await serve.next((event) => event.event === 'published');
  assert.ok((published.version as number) > (listening.version as number));
  const manifest = await manifestOf(listening.url as string, listening.publicKey as string);
  assert.match(await blobText(listening.url as string, manifest.modules['main.ts']!.blob.hash), /"back"/);
});

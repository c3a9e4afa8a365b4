// A channel client that stops reading must not make the server buffer pushes for it forever.
// Slow by nature (~20k pushes fill the loopback socket buffers first), so it has its own file.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openChannel } from './helpers/server-clients.ts';
import { makeSnapshot, startServer, within } from './helpers/server-fixtures.ts';

test('a channel client that stops reading is terminated once its unsent pushes pass maxBufferedBytes', async (t) => {
  const { server, url, key, logs } = await startServer(t, { maxBufferedBytes: 64 * 1024 });
  let snapshot = makeSnapshot(key, { 'a.ts': 'a' });
  server.publish(snapshot);
  const [stuck, reader] = await Promise.all([openChannel(url), openChannel(url)]);
  t.after(() => reader.ws.terminate());
  await stuck.next('hello');
  await reader.next('hello');
  stuck.ws.pause();
  let drained = Promise.resolve();
  let publishes = 0;
  while (server.status().clients.length === 2 && publishes < 200_000) {
    snapshot = makeSnapshot(key, { 'a.ts': 'a' }, { previousVersion: snapshot.manifest.version });
    server.publish(snapshot);
    publishes += 1;
    // Yield now and then so the reader's socket is read and only the paused client backs up.
    if (publishes % 500 === 0) drained = new Promise((resolve) => setImmediate(resolve));
    await drained;
  }
  assert.equal(server.status().clients.length, 1, `the stuck client was terminated after ${publishes} pushes`);
  assert.ok(logs.some((line) => /unsent, over 65536; terminated/.test(line)));
  stuck.ws.resume();
  await within(stuck.closed, 5000, 'the stuck client to see its socket closed');
  const last = makeSnapshot(key, { 'a.ts': 'a' }, { previousVersion: snapshot.manifest.version });
  server.publish(last);
  // The reader's queue holds every push so far; the last one must arrive intact.
  let message = await reader.next('pushes to the reader');
  while (message.type === 'version' && message.version !== last.manifest.version) message = await reader.next('pushes to the reader');
  assert.equal(message.type, 'version');
});

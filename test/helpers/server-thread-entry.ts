// The thread of helpers/server-thread.ts: a server on 127.0.0.1:0 that publishes the folders it is sent.
import { createServer } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { SnapshotBuilder } from '../../src/build/index.ts';
import { createModuleServer } from '../../src/server/index.ts';
import { generatePublisherKey, signSnapshot } from '../../src/snapshot/index.ts';

const { dir, options } = workerData as { dir: string; options: { keepVersions?: number } };
const key = generatePublisherKey();
const server = createModuleServer({ host: '127.0.0.1', port: 0, log: () => {}, ...options });
const { url, port } = await server.listen();
let connections = 0;
let previous: number | undefined;
const publish = (folder: string): void => {
  const snapshot = signSnapshot(new SnapshotBuilder(folder).build().content, key, previous === undefined ? {} : { previousVersion: previous });
  previous = snapshot.manifest.version;
  server.publish(snapshot);
};
publish(dir);
parentPort!.postMessage({ url, publicKey: key.publicKeyString });
parentPort!.on('message', (message: { dir?: string; blackhole?: true; count?: true }) => {
  if (message.dir !== undefined) {
    publish(message.dir);
    parentPort!.postMessage('published');
  } else if (message.blackhole) {
    // The origin stops answering: its port accepts connections and never says a word.
    void server.close().then(() => {
      const hole = createServer(() => {
        connections += 1;
      });
      hole.listen(port, '127.0.0.1', () => parentPort!.postMessage('silent'));
    });
  } else if (message.count) {
    parentPort!.postMessage(connections);
  }
});

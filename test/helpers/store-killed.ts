// Child process for the killed-writer test: commits version after version, each with fresh
// blobs of 256 KiB to 1 MiB (so most of its time is inside blob writes), reporting each step on
// stdout. The parent SIGKILLs it mid-loop; nothing here expects to finish.
// Usage: node store-killed.ts <storeDir> <origin> [pack]
// With `pack`, each version has 10 blobs of 64 to 256 KiB, written as one pack.
import { randomBytes } from 'node:crypto';
import { openStore } from '../../src/store/index.ts';
import { generatePublisherKey, manifestBlobs } from '../../src/snapshot/index.ts';
import { blobSnapshot } from './store-fixtures.ts';

const [dir, origin, mode] = process.argv.slice(2);
const store = openStore({ dir: dir! });
const key = generatePublisherKey();
for (let version = 1; ; version += 1) {
  const contents = mode === 'pack' ? Array.from({ length: 10 }, () => randomBytes(64 * 1024 + Math.floor(Math.random() * 192 * 1024))) : Array.from({ length: 4 }, () => randomBytes(256 * 1024 + Math.floor(Math.random() * 768 * 1024)));
  const snapshot = blobSnapshot(key, contents, version);
  if (mode === 'pack') {
    store.writeBlobs(snapshot.blobs);
    process.stdout.write(`pack ${version}\n`);
  } else {
    for (const ref of manifestBlobs(snapshot.manifest)) {
      store.writeBlob(ref.hash, snapshot.blobs.get(ref.hash)!);
      process.stdout.write(`blob ${version} ${ref.hash}\n`);
    }
  }
  process.stdout.write(`committing ${version}\n`);
  store.commitManifest(origin!, { bytes: snapshot.sealed.bytes, manifest: snapshot.manifest, etag: null });
  process.stdout.write(`committed ${version}\n`);
}

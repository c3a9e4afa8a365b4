// Child process for the concurrent-writer test: loads a fixture, says "ready", waits for a line on
// stdin (so every child starts at once), writes every blob in its own order, says "written",
// waits for a second line, then commits the manifests of its plan, round after round. Prints one JSON line of what happened; a refusal is a result, not a crash.
// Usage: node store-writer.ts <storeDir> <fixture.json> <plan: manifest indices, comma-separated> <seed> <rounds> [pack]
// With `pack`, the blobs are written as one pack (as a sync writes module blobs), not a file each.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { openStore } from '../../src/store/index.ts';
import { openFixtureManifest, type StoreFixture } from './store-fixtures.ts';

const [dir, fixturePath, planText, seedText, roundsText, mode] = process.argv.slice(2);
const fixture = JSON.parse(readFileSync(fixturePath!, 'utf8')) as StoreFixture;
const plan = planText!.split(',').map(Number);
const blobs = Object.entries(fixture.blobs).map(([hash, base64]) => [hash, Buffer.from(base64, 'base64')] as const);
const manifests = plan.map((index) => openFixtureManifest(fixture, index));

// A seeded shuffle: each child writes the blobs in a different order, so writers collide on every blob.
let state = Number(seedText) >>> 0;
const next = (): number => {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  return state / 4294967296;
};
for (let index = blobs.length - 1; index > 0; index -= 1) {
  const other = Math.floor(next() * (index + 1));
  [blobs[index], blobs[other]] = [blobs[other]!, blobs[index]!];
}

process.stdout.write('ready\n');
const commands = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
await commands.next();
const store = openStore({ dir: dir! });
if (mode === 'pack') store.writeBlobs(new Map(blobs));
else for (const [hash, bytes] of blobs) store.writeBlob(hash, bytes);
// A second barrier: every child has written its blobs, so the commits race each other too.
process.stdout.write('written\n');
await commands.next();
{
  const results: { version: number; outcome: string }[] = [];
  // The stored version, read after every attempt: it must never go down, whoever commits.
  const seen: number[] = [];
  for (let round = 0; round < Number(roundsText ?? 1); round += 1) {
    for (const { bytes, manifest } of manifests) {
      try {
        const committed = store.commitManifest(fixture.origin, { bytes, manifest, etag: `"${manifest.version}"` });
        results.push({ version: manifest.version, outcome: `committed ${committed.version}` });
      } catch (error) {
        results.push({ version: manifest.version, outcome: (error as { code?: string }).code ?? String(error) });
      }
      seen.push(store.readOrigin(fixture.origin)?.state.version ?? 0);
    }
  }
  process.stdout.write(`${JSON.stringify({ pid: process.pid, results, seen })}\n`);
  process.stdin.destroy();
}

// Watch-mode benchmark: a file write → the new version's push arriving on a real WebSocket
// channel, with `livemod serve --watch` semantics (chokidar → incremental rebuild → sign →
// publish → push) on a generated 2,000-module tree. Baseline in the same run: the bare
// notification floor, a file write → Node's own fs.watch event on that file.
// Run: npm run bench:watch   (figures go in docs/benchmarks.md)
import { watch as fsWatch, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { createModuleServer } from '../src/server/index.ts';
import { generatePublisherKey, signSnapshot } from '../src/snapshot/index.ts';
import { SnapshotBuilder, watchFolder } from '../src/build/index.ts';
import { generateTree } from '../test/helpers/tree.ts';
import { median, percentile } from './lib/stats.ts';
import { formatTable } from './lib/table.ts';

const COUNT = Number(process.env.BENCH_MODULES ?? 2000);
const EDITS = 30;

function stats(values: number[]): { median: number; p90: number } {
  return { median: median(values), p90: percentile(values, 90) };
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const dir = join(import.meta.dirname, 'out', `watch-${COUNT}`);
rmSync(dir, { recursive: true, force: true });
const tree = generateTree(dir, COUNT, { seed: 11 });
const edited = join(dir, tree.modules[Math.floor(COUNT / 2)]!);
const original = readFileSync(edited, 'utf8');

// Baseline: write → fs.watch event.
const floor: number[] = [];
{
  let resolveEvent: (() => void) | undefined;
  const watcher = fsWatch(edited, () => resolveEvent?.());
  for (let edit = 0; edit < EDITS; edit += 1) {
    const event = new Promise<void>((resolve) => (resolveEvent = resolve));
    const started = performance.now();
    writeFileSync(edited, `${original}\nexport const floor${edit} = ${edit};\n`);
    await event;
    floor.push(performance.now() - started);
    resolveEvent = undefined;
    await pause(100);
  }
  watcher.close();
}

// livemod: write → push on the channel.
const key = generatePublisherKey();
const builder = new SnapshotBuilder(dir);
let current = signSnapshot(builder.build().content, key);
const server = createModuleServer({ port: 0 });
server.publish(current);
const { url } = await server.listen();
const rebuilds: number[] = [];
const signs: number[] = [];

const publishToPush: number[] = [];
let publishedAt = 0;
const watch = watchFolder({
  builder,
  onBuild: (result) => {
    rebuilds.push(result.durationMs);
    const signing = performance.now();
    current = signSnapshot(result.content, key, { previousVersion: current.manifest.version });
    publishedAt = performance.now();
    signs.push(publishedAt - signing);
    server.publish(current);
  },
  onError: (error) => console.error(error),
});
await watch.ready;
const socket = new WebSocket(`${url.replace('http', 'ws')}/channel`);
let onVersion: ((version: number) => void) | undefined;
socket.on('message', (data) => {
  const message = JSON.parse(String(data)) as { type: string; version: number };
  if (message.type === 'version') {
    publishToPush.push(performance.now() - publishedAt);
    onVersion?.(message.version);
  }
});
await new Promise((resolve) => socket.once('open', resolve));
const pushes: number[] = [];
for (let edit = 0; edit < EDITS; edit += 1) {
  const pushed = new Promise<number>((resolve) => (onVersion = resolve));
  const started = performance.now();
  writeFileSync(edited, `${original}\nexport const edit${edit} = ${edit};\n`);
  await pushed;
  pushes.push(performance.now() - started);
  onVersion = undefined;
  // Past the post-throttle recheck (60 ms), so each edit is measured on its own.
  await pause(150);
}
socket.close();
await watch.close();
await server.close();
writeFileSync(edited, original);

const base = stats(floor);
const live = stats(pushes);
const rows: [string, { median: number; p90: number }, string][] = [
  ['write → fs.watch event (baseline)', base, '1.00×'],
  ['write → push on the channel', live, `${(live.median / base.median).toFixed(2)}×`],
  ['  of which: incremental rebuild', stats(rebuilds), ''],
  ['  of which: sign the new manifest', stats(signs), ''],
  ['  of which: publish → push received', stats(publishToPush), 'target ≤ 50 ms'],
];
console.log(`watch benchmark: ${COUNT} modules, ${EDITS} edits of one module; Node ${process.version}`);
console.log(formatTable([['case', 'median ms', 'p90 ms', ''], ...rows.map(([name, value, note]) => [name, value.median.toFixed(2), value.p90.toFixed(2), note])]));

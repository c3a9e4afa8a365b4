// Retained heap of livemod's registry over many swaps of one ~10 KB module, without a watcher
// (run with --expose-gc; prints one JSON line). What is left above a base after the last swap
// and full collections is what the swaps kept. Two bases, as in memory.ts: the heap after the
// first swap (test/swap-memory.test.ts's method) and after a warm-up of swaps.
//   alternating   two prebuilt versions, a and b, swapped in turn (the test's method)
//   distinct      a new version each swap: the file rewritten, rebuilt by the incremental builder
//                 and swapped, as local watch does minus the file watcher
// Usage: node --expose-gc bench/swap/livemod-registry.ts <alternating|distinct> <warm-up> <swaps> <dir>
import { writeFileSync } from 'node:fs';
import { builtSource, localSource } from '../../src/client/local.ts';
import { Registry } from '../../src/runtime/index.ts';
import { targetSource, writeApp } from './app.ts';
import { send, settledHeap } from './report.ts';

const PAD = 10_000;
const [mode, warmupArg, swapsArg, dir] = process.argv.slice(2);
const warmup = Number(warmupArg);
const swaps = Number(swapsArg);
if ((mode !== 'alternating' && mode !== 'distinct') || !Number.isSafeInteger(warmup) || warmup < 1 || !Number.isSafeInteger(swaps) || swaps < 1 || !dir) {
  throw new Error('usage: livemod-registry.ts <alternating|distinct> <warm-up ≥ 1> <swaps> <dir>');
}
const app = writeApp(dir, 'livemod', 0, PAD);
const first = localSource(dir);
const { builder, key } = first;
// The alternating pair: built once, so each swap is the registry's work alone.
writeFileSync(app.target, targetSource('livemod', 1, PAD));
const second = localSource(dir);

const registry = new Registry(first);
const main = await registry.import('main.js');
const call = main.call as () => number;
let firstHeap = 0;
let base = 0;
const started = performance.now();
for (let swap = 1; swap <= warmup + swaps; swap += 1) {
  let next;
  if (mode === 'alternating') {
    next = swap % 2 === 1 ? second : first;
  } else {
    writeFileSync(app.target, targetSource('livemod', swap, PAD));
    builder.invalidate(['target.js']);
    next = builtSource(builder, builder.build(), key, registry.source.manifest.version);
  }
  const result = await registry.swap(next);
  if (result.status !== 'applied') throw new Error(`swap ${swap}: ${result.status} ${String(result.error)}`);
  const expected = mode === 'alternating' ? swap % 2 : swap;
  if (call() !== expected) throw new Error(`swap ${swap}: main called ${call()}, expected ${expected}`);
  if (swap === 1) firstHeap = (await settledHeap()).bytes;
  if (swap === warmup) base = (await settledHeap()).bytes;
}
const elapsedMs = performance.now() - started;
const end = await settledHeap();
send({
  event: 'retained',
  mode,
  swaps,
  perSwap: (end.bytes - base) / swaps,
  fromFirst: (end.bytes - firstHeap) / (warmup + swaps - 1),
  retainedVersions: registry.retainedVersions().length,
  elapsedMs,
});

// Retained heap of livemod's registry over many swaps of one ~10 KB module, without a watcher
// (run with --expose-gc; prints its heap readings as one JSON line, which memory.ts's retained()
// turns into bytes per swap the same way as for the file-driven runs).
//   alternating   two prebuilt versions, a and b, swapped in turn (the test's method)
//   distinct      a new version each swap: the file rewritten, rebuilt by the incremental builder
//                 and swapped, as local watch does minus the file watcher
// Usage: node --expose-gc bench/swap/livemod-registry.ts <alternating|distinct> <warm-up> <swaps> <every> <dir>
import { writeFileSync } from 'node:fs';
import { builtSource, localSource } from '../../src/client/local.ts';
import { Registry } from '../../src/runtime/index.ts';
import { targetSource, writeApp } from './app.ts';
import { send, settledHeap } from './report.ts';

const PAD = 10_000;
const [mode, warmupArg, swapsArg, everyArg, dir] = process.argv.slice(2);
const [warmup, swaps, every] = [warmupArg, swapsArg, everyArg].map(Number) as [number, number, number];
if ((mode !== 'alternating' && mode !== 'distinct') || ![warmup, swaps, every].every((n) => Number.isSafeInteger(n) && n >= 1) || !dir) {
  throw new Error('usage: livemod-registry.ts <alternating|distinct> <warm-up> <swaps> <every> <dir>');
}
const app = writeApp(dir, 'livemod', 0, PAD);
const versionA = localSource(dir);
const { builder, keyId } = versionA;
// The alternating pair: built once, so each swap is the registry's work alone.
writeFileSync(app.target, targetSource('livemod', 1, PAD));
const versionB = localSource(dir);

const registry = new Registry(versionA);
const main = await registry.import('main.js');
const call = main.call as () => number;
let first = 0;
let base = 0;
const curve: [number, number][] = [];
const started = performance.now();
for (let swap = 1; swap <= warmup + swaps; swap += 1) {
  let next;
  if (mode === 'alternating') {
    next = swap % 2 === 1 ? versionB : versionA;
  } else {
    writeFileSync(app.target, targetSource('livemod', swap, PAD));
    builder.invalidate(['target.js']);
    next = builtSource(builder, builder.build(), keyId, registry.source.manifest.version);
  }
  const result = await registry.swap(next);
  if (result.status !== 'applied') throw new Error(`swap ${swap}: ${result.status} ${String(result.error)}`);
  const expected = mode === 'alternating' ? swap % 2 : swap;
  if (call() !== expected) throw new Error(`swap ${swap}: main called ${call()}, expected ${expected}`);
  if (swap === 1) first = (await settledHeap()).bytes;
  if (swap === warmup) base = (await settledHeap()).bytes;
  if (swap % every === 0 && swap !== warmup + swaps) curve.push([swap, (await settledHeap()).bytes]);
}
const elapsedMs = performance.now() - started;
const end = await settledHeap();
send({ event: 'retained', first, base, warmup, swaps, curve, end: end.bytes, retainedVersions: registry.retainedVersions().length, elapsedMs });

// Child process for test/swap-memory.test.ts (run with --expose-gc): swaps one module N times and
// prints what stays in memory, as JSON.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localSource } from '../../src/client/local.ts';
import { Registry } from '../../src/runtime/index.ts';

const swaps = Number(process.argv[2]);
const leak = process.argv[3] === 'leak';
const dir = mkdtempSync(join(tmpdir(), 'livemod-swap-memory-'));
const gc = (globalThis as { gc?: () => void }).gc!;
const nextTask = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));
// A 10 KB module; with `leak`, each version hands a closure of its own to a global list, so
// every version stays reachable (what a program that forgets its dispose handler does).
const body = (version: number): string =>
  `export const v = ${version}; const text = ${JSON.stringify('x'.repeat(10_000))};
   export function f() { return v + text.length; }
   ${leak ? '(globalThis.__kept ??= []).push(() => v);' : ''}
   import.meta.hot.accept();\n`;
writeFileSync(join(dir, 'main.js'), 'import { f } from "./m.js"; export const g = () => f();');
writeFileSync(join(dir, 'm.js'), body(0));
const a = localSource(dir);
writeFileSync(join(dir, 'm.js'), body(1));
const b = localSource(dir);
rmSync(dir, { recursive: true, force: true });

const registry = new Registry(a);
const main = await registry.import('main.js');
let base = 0;
for (let swap = 1; swap <= swaps; swap += 1) {
  const result = await registry.swap(swap % 2 === 1 ? b : a);
  if (result.status !== 'applied') throw new Error(`swap ${swap}: ${String(result.error)}`);
  (main.g as () => number)();
  if (swap === 1) {
    gc();
    base = process.memoryUsage().heapUsed;
  }
}
for (let round = 0; round < 3; round += 1) {
  gc();
  await nextTask();
}
process.stdout.write(JSON.stringify({ retainedBytes: process.memoryUsage().heapUsed - base, retainedVersions: registry.retainedVersions().length }));

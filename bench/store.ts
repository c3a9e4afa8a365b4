// Store benchmark: 2,000 blobs of about 1 KB (the size of a small module), each operation
// against a baseline of plain fs calls on the same files in the same run, interleaved.
//   write    store.writeBlob (sha256 check, temp file, fsync, rename) vs writeFileSync, and vs
//            writeFileSync + fsync (what durability alone costs)
//   rewrite  writeBlob of blobs already stored (stat + mtime bump, no write)
//   read     store.readBlob (open, fstat, read, sha256 check) vs readFileSync
//   plan     store.missingBlobs over all 2,000 (present: mtime bump each)
//   commit   commitManifest of a 1,000-module manifest naming all 2,000, and readOrigin of it
// Run: npx node bench/store.ts   (BENCH_BLOBS, BENCH_RUNS to change the size)
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePublisherKey, sha256Hex, signSnapshot, type ModuleRecord } from '../src/snapshot/index.ts';
import { openStore } from '../src/store/index.ts';
import { median } from './lib/stats.ts';
import { formatTable } from './lib/table.ts';

const COUNT = Number(process.env.BENCH_BLOBS ?? 2000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

const blobs = Array.from({ length: COUNT }, (_, index) => {
  const bytes = randomBytes(768 + (index % 512));
  return { hash: sha256Hex(bytes), bytes };
});
const totalBytes = blobs.reduce((total, blob) => total + blob.bytes.length, 0);

const key = generatePublisherKey();
const modules: Record<string, ModuleRecord> = {};
for (let index = 0; index < COUNT; index += 2) {
  const code = blobs[index]!;
  const map = blobs[index + 1] ?? code;
  modules[`lib/m${String(index).padStart(5, '0')}.ts`] = { blob: { hash: code.hash, size: code.bytes.length }, map: { hash: map.hash, size: map.bytes.length }, imports: [], exports: ['default'], star: [], tla: false };
}
const snapshot = signSnapshot({ name: 'bench', modules, entry: null, blobs: new Map() }, key, { version: 1 });

function time(fn: () => void): number {
  const started = performance.now();
  fn();
  return performance.now() - started;
}

const samples = new Map<string, number[]>();
const add = (name: string, ms: number): void => void (samples.get(name) ?? samples.set(name, []).get(name)!).push(ms);

for (let run = 0; run < RUNS; run += 1) {
  const root = mkdtempSync(join(tmpdir(), 'livemod-bench-store-'));
  try {
    const plain = join(root, 'plain');
    const synced = join(root, 'synced');
    for (const base of [plain, synced]) for (let prefix = 0; prefix < 256; prefix += 1) mkdirSync(join(base, prefix.toString(16).padStart(2, '0')), { recursive: true });
    const plainPath = (base: string, hash: string): string => join(base, hash.slice(0, 2), hash);

    add('write: writeFileSync (baseline)', time(() => {
      for (const { hash, bytes } of blobs) writeFileSync(plainPath(plain, hash), bytes);
    }));
    add('write: writeFileSync + fsync', time(() => {
      for (const { hash, bytes } of blobs) {
        const fd = openSync(plainPath(synced, hash), 'w');
        writeSync(fd, bytes);
        fsyncSync(fd);
        closeSync(fd);
      }
    }));
    const store = openStore({ dir: join(root, 'store') });
    add('write: store.writeBlob', time(() => {
      for (const { hash, bytes } of blobs) store.writeBlob(hash, bytes);
    }));
    add('rewrite: store.writeBlob, present', time(() => {
      for (const { hash, bytes } of blobs) store.writeBlob(hash, bytes);
    }));
    add('read: readFileSync (baseline)', time(() => {
      for (const { hash } of blobs) readFileSync(plainPath(plain, hash));
    }));
    add('read: store.readBlob (verified)', time(() => {
      for (const { hash } of blobs) if (!store.readBlob(hash)) throw new Error('blob lost');
    }));
    add('plan: store.missingBlobs', time(() => {
      if (store.missingBlobs(blobs.map((blob) => blob.hash)).length !== 0) throw new Error('blobs lost');
    }));
    add('commit: commitManifest', time(() => {
      store.commitManifest('http://127.0.0.1:1/bench/', { bytes: snapshot.sealed.bytes, manifest: snapshot.manifest, etag: null });
    }));
    add('commit: readOrigin', time(() => {
      if (!store.readOrigin('http://127.0.0.1:1/bench/')) throw new Error('origin lost');
    }));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const baselineOf = (name: string): string | null => (name.startsWith('write:') ? 'write: writeFileSync (baseline)' : name.startsWith('read:') ? 'read: readFileSync (baseline)' : null);
const rows: string[][] = [['operation', 'median ms', 'blobs/s', 'MB/s', '× baseline']];
for (const [name, values] of samples) {
  const ms = median(values);
  const perBlob = !name.startsWith('commit:');
  const baseline = baselineOf(name);
  rows.push([
    name,
    ms.toFixed(1),
    perBlob ? Math.round(COUNT / (ms / 1000)).toLocaleString('en-US') : '',
    perBlob ? (totalBytes / 1e6 / (ms / 1000)).toFixed(1) : '',
    baseline && baseline !== name ? (ms / median(samples.get(baseline)!)).toFixed(2) : '',
  ]);
}
console.log(`${COUNT} blobs, ${(totalBytes / 1024).toFixed(0)} KiB in all, median of ${RUNS} runs, in ${tmpdir()}`);
console.log(`manifest: ${Object.keys(modules).length} modules, ${snapshot.sealed.bytes.length} bytes\n`);
console.log(formatTable(rows));

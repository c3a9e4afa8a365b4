// Cold-fetch benchmark: how long a client with nothing cached takes to get a whole verified
// snapshot of a generated 500-module tree, from
//   livemod serve   in-process over loopback: manifest + one POST /batch
//   nginx           the same snapshot published as static files: manifest + one GET of the pack
//   nginx Range     the same, forced through the Range path (wholePackRatio 1): what a partial
//                   update uses; with every blob wanted the ranges merge into one
// Each fetch is fetchSnapshot with no store (every blob fetched and hash-checked). Runs of the
// hosts are interleaved so drift on the machine hits them alike; connections are kept alive
// between runs by fetch's pool, the same for every host. The nginx rows are skipped, saying
// why, when nginx is not installed.
// Run: npm run bench:fetch   (BENCH_RUNS=n to change the 20 runs per host)
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { createModuleServer } from '../src/server/index.ts';
import { generatePublisherKey, manifestBlobs, openManifest, parsePublicKey } from '../src/snapshot/index.ts';
import { SnapshotBuilder, publishSnapshot } from '../src/build/index.ts';
import { fetchSnapshot, type FetchSnapshotOptions } from '../src/sync/index.ts';
import { NGINX_BINARY, nginxMissing, startNginx, type Nginx } from '../test/helpers/nginx.ts';
import { generateTree } from '../test/helpers/tree.ts';
import { median, percentile } from './lib/stats.ts';
import { formatTable } from './lib/table.ts';

const MODULES = 500;
const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const WARMUP = 3;

interface Host {
  readonly name: string;
  readonly url: string;
  readonly options: FetchSnapshotOptions;
  readonly times: number[];
  requests: number;
  bytes: number;
}

const out = join(import.meta.dirname, 'out', 'cold-fetch');
rmSync(out, { recursive: true, force: true });
const tree = generateTree(join(out, 'src'), MODULES, { seed: 500 });
const key = generatePublisherKey();
const verifyKey = parsePublicKey(key.publicKeyString);
const built = new SnapshotBuilder(join(out, 'src')).build();
const published = await publishSnapshot(built.content, key, join(out, 'published'));
const blobCount = manifestBlobs(published.snapshot.manifest).length;

const server = createModuleServer({ host: '127.0.0.1', port: 0 });
const { url: serverUrl } = await server.listen();
// The same signed snapshot on both hosts: identical manifest bytes and blobs.
server.publish(published.snapshot);

const hosts: Host[] = [{ name: 'livemod serve (batch)', url: serverUrl, options: {}, times: [], requests: 0, bytes: 0 }];
const missing = nginxMissing();
let nginx: Nginx | undefined;
try {
  if (missing) {
    console.log(`nginx rows skipped: ${missing}`);
  } else {
    nginx = await startNginx({ root: join(out, 'published') });
    hosts.push({ name: 'nginx (whole pack)', url: nginx.url, options: {}, times: [], requests: 0, bytes: 0 });
    hosts.push({ name: 'nginx (Range request)', url: nginx.url, options: { wholePackRatio: 1 }, times: [], requests: 0, bytes: 0 });
  }

  for (let run = -WARMUP; run < RUNS; run += 1) {
    for (const host of hosts) {
      const started = performance.now();
      const result = await fetchSnapshot(host.url, verifyKey, host.options);
      const elapsed = performance.now() - started;
      if (result.blobs.size !== blobCount) throw new Error(`${host.name}: got ${result.blobs.size} of ${blobCount} blobs`);
      if (run < 0) continue;
      host.times.push(elapsed);
      host.requests = result.requests;
      host.bytes = result.bytes;
    }
  }
} finally {
  await nginx?.stop();
  await server.close();
}

// The client CPU every host's fetch shares: parsing and verifying the manifest (signature over its
// canonical JSON, structure). Shown so the rows' differences read against it.
const verifyTimes: number[] = [];
for (let run = 0; run < RUNS; run += 1) {
  const started = performance.now();
  openManifest(published.snapshot.sealed.bytes, verifyKey, 'bench');
  verifyTimes.push(performance.now() - started);
}

const nginxVersion = missing ? 'nginx absent' : spawnSync(NGINX_BINARY, ['-v'], { encoding: 'utf8' }).stderr.trim().replace(/^nginx version: /, '');
console.log(
  `cold fetch: ${MODULES} modules + main.ts (${(tree.bytes / 1024).toFixed(0)} KiB of TypeScript; ${blobCount} blobs: code and source maps, pack ${(published.packBytes / 1024).toFixed(0)} KiB, ` +
    `manifest ${(published.snapshot.sealed.bytes.length / 1024).toFixed(0)} KiB), ${RUNS} runs per host after ${WARMUP} warm-up runs`,
);
console.log(`machine: ${availableParallelism()} cores, Node ${process.version}, ${nginxVersion}, loopback\n`);
const baseline = hosts.find((host) => host.name.startsWith('nginx (whole'));
const rows = [['host', 'median ms', 'p90 ms', 'requests', 'bytes', 'median vs nginx']];
for (const host of hosts) {
  const ratio = baseline ? `${(median(host.times) / median(baseline.times)).toFixed(2)}×` : 'n/a';
  rows.push([host.name, median(host.times).toFixed(1), percentile(host.times, 90).toFixed(1), String(host.requests), String(host.bytes), ratio]);
}
console.log(formatTable(rows));
console.log(`\nof each fetch, verifying the manifest (openManifest, the same for every host): median ${median(verifyTimes).toFixed(1)} ms`);
if (baseline) console.log(`livemod/nginx (median): ${(median(hosts[0]!.times) / median(baseline.times)).toFixed(2)}`);

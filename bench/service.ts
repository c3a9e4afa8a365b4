// The service manager against PM2 (the pinned devDependency `pm2`) and a plain spawn, in one run:
//   start → first answer   an HTTP service started and polled until it answers: `spawn` (the
//                          floor), `livemod service add`, `pm2 start`
//   CLI status             `livemod service status NAME` against `pm2 describe NAME`
//   restart outage         a request loop (one request at a time, a new connection each) runs
//                          through `livemod service restart` / `pm2 restart`: the longest time
//                          with no answer, and requests that failed
//   reload                 a request loop of 4 concurrent clients runs through a reload:
//                          `livemod service reload` of a `--run` service (the program syncs and
//                          swaps in place) against `pm2 reload` of the same server in cluster
//                          mode (2 workers, PM2's zero-downtime reload): requests lost, and time
//                          from the command to the first answer of the new code
// Everything on 127.0.0.1, each tool with a state folder of its own (LIVEMOD_HOME, PM2_HOME)
// removed at the end; PM2's daemon is killed at the end. Targets (issue 17): start within 100 ms
// of plain spawn, CLI under 200 ms, reload with zero lost requests.
// Run: npm run bench:service   (BENCH_RUNS=n, default 7)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { installedCli } from './lib/livemod-cli.ts';
import { median, percentile } from './lib/stats.ts';
import { formatTable } from './lib/table.ts';

const root = join(import.meta.dirname, '..');
const { bin: BIN, build } = installedCli(root);
const PM2 = join(root, 'node_modules', 'pm2', 'bin', 'pm2');
const NODE = process.execPath;
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const work = mkdtempSync(join(tmpdir(), 'livemod-bench-service-'));
const env = { ...process.env, LIVEMOD_HOME: join(work, 'livemod-home'), PM2_HOME: join(work, 'pm2-home') };

console.log(`[bench service] ${build}; ${RUNS} runs per case; work folder ${work}`);

const SERVER = `
const http = require('node:http');
const text = require('node:fs').readFileSync(__dirname + '/text.txt', 'utf8').trim();
const server = http.createServer((req, res) => res.end(text));
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGINT', () => server.close(() => process.exit(0)));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;
const app = join(work, 'app');
mkdirSync(app);
writeFileSync(join(app, 'server.cjs'), SERVER);
writeFileSync(join(app, 'text.txt'), 'one');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** Polls every 2 ms until the port answers; ms from `since`. */
async function firstAnswer(port: number, since: number, timeoutMs = 30_000): Promise<number> {
  for (;;) {
    try {
      await get(port);
      return performance.now() - since;
    } catch {
      if (performance.now() - since > timeoutMs) throw new Error(`port ${port} never answered`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }
}

function run(command: string, args: string[], extra: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(command, args, { env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('exit', (status) => resolve({ status, stdout, stderr, ms: performance.now() - started }));
  });
}

async function must(command: string, args: string[], extra: NodeJS.ProcessEnv = {}): Promise<{ stdout: string; ms: number }> {
  const result = await run(command, args, extra);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status}): ${result.stderr.slice(-600)}${result.stdout.slice(-300)}`);
  return result;
}

const livemod = (...args: string[]) => must(NODE, [BIN, ...args]);
const pm2 = (...args: string[]) => must(NODE, [PM2, ...args]);

/** A request loop of `clients` concurrent clients until stopped: answers, failures, and the longest gap without an answer. */
function requestLoop(port: number, clients: number): { stop(): Promise<{ ok: number; failed: number; longestGapMs: number; answers: { at: number; body: string }[] }> } {
  let running = true;
  let ok = 0;
  let failed = 0;
  let lastOk = performance.now();
  let longestGapMs = 0;
  const answers: { at: number; body: string }[] = [];
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      try {
        const body = await get(port);
        const now = performance.now();
        longestGapMs = Math.max(longestGapMs, now - lastOk);
        lastOk = now;
        ok += 1;
        answers.push({ at: now, body });
      } catch {
        failed += 1;
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { ok, failed, longestGapMs, answers };
    },
  };
}

const results = new Map<string, number[]>();
const record = (name: string, value: number): void => {
  results.set(name, [...(results.get(name) ?? []), value]);
};

// PM2's daemon starts on its first command: started once before any measurement, as an
// operator's machine would have it.
await pm2('ping');

// 1. start → first answer, and 2. CLI status latency, interleaved round by round.
for (let round = 0; round <= RUNS; round += 1) {
  const measured = round > 0;
  {
    const port = await freePort();
    const started = performance.now();
    const child: ChildProcess = spawn(NODE, [join(app, 'server.cjs')], { env: { ...env, PORT: String(port) }, stdio: 'ignore' });
    const ms = await firstAnswer(port, started);
    child.kill('SIGKILL');
    if (measured) record('start: plain spawn', ms);
  }
  {
    const port = await freePort();
    const started = performance.now();
    await livemod('service', 'add', `s${round}`, '--cwd', app, '--env', `PORT=${port}`, '--', NODE, 'server.cjs');
    const ms = await firstAnswer(port, started);
    if (measured) record('start: livemod service add', ms);
    const status = await livemod('service', 'status', `s${round}`);
    if (measured) record('cli: livemod service status', status.ms);
    const list = await livemod('service', 'list');
    if (measured) record('cli: livemod service list', list.ms);
    await livemod('service', 'remove', `s${round}`);
  }
  {
    const port = await freePort();
    const started = performance.now();
    await must(NODE, [PM2, 'start', join(app, 'server.cjs'), '--name', `p${round}`], { PORT: String(port) });
    const ms = await firstAnswer(port, started);
    if (measured) record('start: pm2 start', ms);
    const describe = await pm2('describe', `p${round}`);
    if (measured) record('cli: pm2 describe', describe.ms);
    const list = await pm2('jlist');
    if (measured) record('cli: pm2 jlist', list.ms);
    await pm2('delete', `p${round}`);
  }
}

// 3. restart outage, one service of each kind kept for all rounds.
const restartPort = { livemod: await freePort(), pm2: await freePort() };
await livemod('service', 'add', 'restarted', '--cwd', app, '--env', `PORT=${restartPort.livemod}`, '--', NODE, 'server.cjs');
await must(NODE, [PM2, 'start', join(app, 'server.cjs'), '--name', 'restarted'], { PORT: String(restartPort.pm2) });
await firstAnswer(restartPort.livemod, performance.now());
await firstAnswer(restartPort.pm2, performance.now());
for (let round = 0; round < RUNS; round += 1) {
  for (const [tool, port, command] of [['livemod service restart', restartPort.livemod, () => livemod('service', 'restart', 'restarted')], ['pm2 restart', restartPort.pm2, () => pm2('restart', 'restarted')]] as const) {
    const loop = requestLoop(port, 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await command();
    await firstAnswer(port, performance.now());
    await new Promise((resolve) => setTimeout(resolve, 100));
    const outcome = await loop.stop();
    record(`restart outage ms: ${tool}`, outcome.longestGapMs);
    record(`restart failed requests: ${tool}`, outcome.failed);
  }
}
await livemod('service', 'remove', 'restarted');
await pm2('delete', 'restarted');

// 4. reload. livemod: a --run service of a static snapshot on a host that serves from disk, so a
// publish is visible at once; the program has no channel, so the reload is what makes it sync.
const live = join(work, 'live');
const site = join(work, 'site');
mkdirSync(live);
writeFileSync(join(live, 'package.json'), '{"name":"bench-service-live","type":"module"}');
writeFileSync(join(live, 'text.js'), "export const text = 'v0'; import.meta.hot?.accept();\n");
writeFileSync(join(live, 'main.js'), "import { createServer } from 'node:http';\nimport { text } from './text.js';\ncreateServer((req, res) => res.end(text)).listen(Number(process.env.PORT), '127.0.0.1');\n");
const keyFile = join(work, 'publisher.key');
const publicKey = (await livemod('keygen', '--out', keyFile)).stdout.trim();
await livemod('publish', live, '--out', site, '--key', keyFile);
const host: Server = createServer((req, res) => {
  try {
    const body = readFileSync(join(site, new URL(req.url ?? '/', 'http://host').pathname.replace(/\.\./g, '')));
    res.writeHead(200, { 'content-length': body.length }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
const hostUrl = `http://127.0.0.1:${(host.address() as AddressInfo).port}/`;
const reloadPort = { livemod: await freePort(), pm2: await freePort() };
await livemod('service', 'add', 'live', '--run', `${hostUrl}main.js`, '--key', publicKey, '--cwd', live, '--env', `PORT=${reloadPort.livemod}`);
writeFileSync(join(app, 'text.txt'), 'v0');
await must(NODE, [PM2, 'start', join(app, 'server.cjs'), '--name', 'cluster', '-i', '2'], { PORT: String(reloadPort.pm2) });
await firstAnswer(reloadPort.livemod, performance.now());
await firstAnswer(reloadPort.pm2, performance.now());
for (let round = 1; round <= RUNS; round += 1) {
  const next = `v${round}`;
  for (const tool of ['livemod service reload', 'pm2 reload (cluster, 2 workers)'] as const) {
    const port = tool.startsWith('livemod') ? reloadPort.livemod : reloadPort.pm2;
    if (tool.startsWith('livemod')) {
      writeFileSync(join(live, 'text.js'), `export const text = '${next}'; import.meta.hot?.accept();\n`);
      await livemod('publish', live, '--out', site, '--key', keyFile);
    } else {
      writeFileSync(join(app, 'text.txt'), next);
    }
    const loop = requestLoop(port, 4);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = performance.now();
    if (tool.startsWith('livemod')) await livemod('service', 'reload', 'live');
    else await pm2('reload', 'cluster');
    const deadline = performance.now() + 30_000;
    let newCode: number | undefined;
    while (newCode === undefined && performance.now() < deadline) {
      try {
        if ((await get(port)) === next) newCode = performance.now() - started;
      } catch {
        // Counted by the loop.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    const outcome = await loop.stop();
    if (newCode === undefined) throw new Error(`${tool}: the new code never answered`);
    record(`reload lost requests: ${tool}`, outcome.failed);
    record(`reload → new code ms: ${tool}`, newCode);
    record(`reload answers during: ${tool}`, outcome.ok);
  }
}
await livemod('service', 'remove', 'live');
await pm2('kill');
host.close();

const fmt = (value: number): string => (Number.isInteger(value) ? String(value) : value.toFixed(1));
const rows = [['case', 'median', 'p90', 'max', 'runs']];
for (const [name, values] of results) rows.push([name, fmt(median(values)), fmt(percentile(values, 90)), fmt(Math.max(...values)), String(values.length)]);
console.log(formatTable(rows));
const m = (name: string): number => median(results.get(name)!);
const startGap = m('start: livemod service add') - m('start: plain spawn');
const lost = Math.max(...results.get('reload lost requests: livemod service reload')!);
console.log(
  [
    `targets: start within 100 ms of plain spawn: +${startGap.toFixed(1)} ms ${startGap <= 100 ? 'met' : 'NOT met'}`,
    `CLI status under 200 ms: ${m('cli: livemod service status').toFixed(1)} ms ${m('cli: livemod service status') < 200 ? 'met' : 'NOT met'}`,
    `reload with zero lost requests: ${lost} lost at most ${lost === 0 ? 'met' : 'NOT met'}`,
  ].join('; '),
);
console.log(`(ms unless named; load average at end ${loadavg().map((value) => value.toFixed(2)).join(' ')}; pm2 ${JSON.parse(readFileSync(join(root, 'node_modules', 'pm2', 'package.json'), 'utf8')).version})`);
rmSync(work, { recursive: true, force: true });

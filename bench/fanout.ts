// Fan-out benchmark (issue 18): 10,000 channel clients told of each new version and having its
// manifest (verified from the announcement, which carries it, or fetched), on one `livemod serve` (the baseline) and then spread over two replicas behind nginx
// that learn of versions from the origin over NATS, in the same run; then a reconnect storm: one
// replica killed, its clients moving to the other. Everything is real and on loopback: the
// `livemod` command for every server, Debian's nats-server and nginx, livemod's own channel client
// in a few processes (bench/fanout/clients.ts). On this 2-core machine the clients, nginx and
// every server share the two cores, so the figures are an upper bound on a real fleet's.
//
// Run: npm run bench:fanout   (FANOUT_CLIENTS=10000 FANOUT_PROCESSES=4 FANOUT_EDITS=5; FANOUT_FETCH=1:
// the clients ignore pushed manifests and fetch each one, as before the push)
// Figures go in docs/benchmarks.md.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { generatePublisherKey, privateKeyToPem } from '../src/snapshot/index.ts';
import { BIN } from '../test/helpers/cli.ts';
import { natsMissing, startNats } from '../test/helpers/nats.ts';
import { nginxMissing, startNginx, type Nginx } from '../test/helpers/nginx.ts';
import { percentile } from './lib/stats.ts';
import { formatTable } from './lib/table.ts';

const CLIENTS = Number(process.env.FANOUT_CLIENTS ?? 10_000);
const PROCESSES = Number(process.env.FANOUT_PROCESSES ?? 4);
const EDITS = Number(process.env.FANOUT_EDITS ?? 5);
const SETTLE_MS = 3000;

const missing = natsMissing() ?? nginxMissing();
if (missing) {
  console.error(`bench:fanout needs nats-server and nginx: ${missing}`);
  process.exit(1);
}

/** CPU time (user + system) a process has used, in ms; with its children's (nginx's workers). */
function cpuMs(pid: number, children = false): number {
  const read = (id: number): number => {
    try {
      const fields = readFileSync(`/proc/${id}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
      return (Number(fields[11]) + Number(fields[12])) * 10;
    } catch {
      return 0;
    }
  };
  let total = read(pid);
  if (children) {
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) total += read(Number(child));
  }
  return total;
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const out = join(import.meta.dirname, 'out', 'fanout');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// The app: a few modules; one is edited to make each new version.
const app = join(out, 'app');
mkdirSync(app, { recursive: true });
writeFileSync(join(app, 'package.json'), '{"name":"fanout-app"}');
for (let index = 0; index < 20; index += 1) writeFileSync(join(app, `part${index}.js`), `export const part${index} = ${index};\n`);
const edited = join(app, 'main.js');
let edition = 0;
const edit = (): void => writeFileSync(edited, `${Array.from({ length: 20 }, (_, index) => `import { part${index} } from './part${index}.js';`).join('\n')}\nexport const edition = ${edition++};\n`);
edit();
const key = generatePublisherKey();
const keyFile = join(out, 'publisher.key');
writeFileSync(keyFile, privateKeyToPem(key), { mode: 0o600 });

interface Server {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  next(event: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  rss(): number;
  stop(): Promise<void>;
}

/** A `livemod serve …` with the open-files soft limit raised to the hard one (10,000 sockets need it). */
async function serve(args: string[]): Promise<Server> {
  const command = `ulimit -n "$(ulimit -Hn)"; exec "${process.execPath}" "${BIN}" serve ${args.map((arg) => `'${arg}'`).join(' ')} --json`;
  const child = spawn('sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const events: Record<string, unknown>[] = [];
  const waiters: { event: string; resolve: (value: Record<string, unknown>) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const value = JSON.parse(line) as Record<string, unknown>;
    const index = waiters.findIndex((waiter) => waiter.event === value.event);
    if (index === -1) events.push(value);
    else waiters.splice(index, 1)[0]!.resolve(value);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const next = (event: string, timeoutMs = 60_000): Promise<Record<string, unknown>> => {
    const index = events.findIndex((value) => value.event === event);
    if (index !== -1) return Promise.resolve(events.splice(index, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${event}" event within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
      waiters.push({ event, resolve: (value) => (clearTimeout(timer), resolve(value)) });
    });
  };
  const listening = await next('listening');
  const url = listening.url as string;
  return {
    child, url, port: Number(new URL(url).port), next,
    rss: () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) * 1024,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

interface ClientState { started: number; connected: number; version: number; onLatest: number; fetchErrors: number; errorKinds: Record<string, number> }

class Clients {
  private readonly children: ChildProcess[] = [];

  get pids(): number[] {
    return this.children.map((child) => child.pid!);
  }

  constructor(url: string) {
    for (let index = 0; index < PROCESSES; index += 1) {
      const share = Math.floor(CLIENTS / PROCESSES) + (index < CLIENTS % PROCESSES ? 1 : 0);
      this.children.push(fork(join(import.meta.dirname, 'fanout', 'clients.ts'), [], {
        env: { ...process.env, FANOUT_URL: url, FANOUT_CLIENTS: String(share) },
        execArgv: [],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }));
    }
  }

  private ask<T>(message: Record<string, unknown>, reply: string): Promise<T[]> {
    return Promise.all(this.children.map((child) => new Promise<T>((resolve) => {
      const listener = (answer: { cmd: string }): void => {
        if (answer.cmd !== reply) return;
        child.off('message', listener);
        resolve(answer as T);
      };
      child.on('message', listener);
      child.send(message);
    })));
  }

  async state(): Promise<ClientState> {
    const states = await this.ask<ClientState>({ cmd: 'state' }, 'state');
    return {
      started: states.reduce((sum, state) => sum + state.started, 0),
      connected: states.reduce((sum, state) => sum + state.connected, 0),
      version: Math.max(...states.map((state) => state.version)),
      onLatest: states.reduce((sum, state) => sum + state.onLatest, 0),
      fetchErrors: states.reduce((sum, state) => sum + state.fetchErrors, 0),
      errorKinds: states.reduce<Record<string, number>>((all, state) => {
        for (const [kind, count] of Object.entries(state.errorKinds)) all[kind] = (all[kind] ?? 0) + count;
        return all;
      }, {}),
    };
  }

  async report(version: number): Promise<{ notified: (number | null)[]; fetched: (number | null)[] }> {
    const reports = await this.ask<{ notified: (number | null)[]; fetched: (number | null)[] }>({ cmd: 'report', version }, 'report');
    return { notified: reports.flatMap((report) => report.notified), fetched: reports.flatMap((report) => report.fetched) };
  }

  async hellos(since: number): Promise<(number | null)[]> {
    return (await this.ask<{ first: (number | null)[] }>({ cmd: 'hellos', since }, 'hellos')).flatMap((answer) => answer.first);
  }

  /** Every client connected and on `version`, its manifest fetched. */
  async settle(version: number, what: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const state = await this.state();
      if (state.version >= version && state.onLatest === CLIENTS) return;
      if (Date.now() > deadline) throw new Error(`${what}: ${state.onLatest} of ${CLIENTS} clients on version ${version} after ${timeoutMs} ms (${state.connected} connected, ${state.fetchErrors} fetch errors: ${JSON.stringify(state.errorKinds)})`);
      await pause(100);
    }
  }

  close(): void {
    for (const child of this.children) if (child.connected) child.send({ cmd: 'exit' });
  }
}

interface Latencies { notified: number[]; fetched: number[]; missed: number; cpuPerVersion: Record<string, number> }

/** Edits the app EDITS times (after one warm-up edit) and collects, per client, publish → notified and → manifest fetched. */
async function measureEdits(origin: Server, clients: Clients, edits: number, processes: Record<string, () => number> = {}): Promise<Latencies> {
  const result: Latencies = { notified: [], fetched: [], missed: 0, cpuPerVersion: {} };
  let cpuBefore: Record<string, number> = {};
  for (let round = 0; round <= edits; round += 1) {
    if (round === 1) cpuBefore = Object.fromEntries(Object.entries(processes).map(([name, read]) => [name, read()]));
    edit();
    const published = await origin.next('published');
    const version = published.version as number;
    const at = published.at as number;
    await clients.settle(version, `version ${version}`);
    if (round === 0) continue;
    const report = await clients.report(version);
    for (const time of report.notified) if (time === null) result.missed += 1; else result.notified.push(time - at);
    for (const time of report.fetched) if (time !== null) result.fetched.push(time - at);
    await pause(300);
  }
  for (const [name, read] of Object.entries(processes)) result.cpuPerVersion[name] = (read() - cpuBefore[name]!) / edits;
  return result;
}

function summary(values: number[]): { p50: number; p99: number; max: number } {
  return { p50: percentile(values, 50), p99: percentile(values, 99), max: Math.max(...values) };
}

const ms = (value: number): string => `${value.toFixed(0)} ms`;
const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;

async function idleBytesPerClient(servers: Server[], before: number[], counts: () => Promise<number[]>): Promise<number[]> {
  await pause(SETTLE_MS);
  const after = servers.map((server) => server.rss());
  const held = await counts();
  return servers.map((_, index) => (after[index]! - before[index]!) / Math.max(1, held[index]!));
}

async function clientCount(server: Server): Promise<number> {
  const status = (await (await fetch(`${server.url}/status`)).json()) as { clientCount: number; replicaCount: number };
  return status.clientCount - status.replicaCount;
}

const broker = await startNats();
const results: Record<string, unknown> = { clients: CLIENTS, processes: PROCESSES, edits: EDITS };
let single: Latencies;
let singleIdle: number;
let fleet: Latencies;
let fleetIdle: number[];
let storm: { allBackMs: number; reconnect: { p50: number; p99: number; max: number }; moved: number; perBucket: number[]; survivorBytesPerClient: number };
let afterStorm: Latencies;
let nginx: Nginx | undefined;
try {
  // 1. The baseline: one server holds every client.
  {
    console.error(`[fanout] one livemod serve, ${CLIENTS} clients in ${PROCESSES} processes`);
    const origin = await serve([app, '--watch', '--key', keyFile, '--port', '0', '--max-clients', String(CLIENTS * 2)]);
    await origin.next('watching');
    await pause(500);
    const before = [origin.rss()];
    const clients = new Clients(origin.url);
    await clients.settle(0, 'connecting');
    const state = await clients.state();
    await clients.settle(state.version, 'the first manifest');
    singleIdle = (await idleBytesPerClient([origin], before, async () => [await clientCount(origin)]))[0]!;
    single = await measureEdits(origin, clients, EDITS, { server: () => cpuMs(origin.child.pid!), clients: () => clients.pids.reduce((sum, pid) => sum + cpuMs(pid), 0) });
    clients.close();
    await origin.stop();
  }
  await pause(1000);
  // 2. The fleet: an origin announcing over NATS, two replicas behind nginx.
  {
    console.error(`[fanout] an origin, two replicas behind nginx, NATS; ${CLIENTS} clients`);
    const origin = await serve([app, '--watch', '--key', keyFile, '--port', '0', '--cluster', broker.url]);
    await origin.next('watching');
    const replicas = [
      await serve(['--follow', origin.url, '--trust', key.publicKeyString, '--port', '0', '--cluster', broker.url, '--poll', '0', '--max-clients', String(CLIENTS * 2)]),
      await serve(['--follow', origin.url, '--trust', key.publicKeyString, '--port', '0', '--cluster', broker.url, '--poll', '0', '--max-clients', String(CLIENTS * 2)]),
    ];
    nginx = await startNginx({ upstreams: replicas.map((replica) => `127.0.0.1:${replica.port}`), workers: 4, workerConnections: 9000 });
    await pause(500);
    const before = replicas.map((replica) => replica.rss());
    const clients = new Clients(nginx.url.replace(/\/$/, ''));
    await clients.settle(0, 'connecting');
    await clients.settle((await clients.state()).version, 'the first manifest');
    const counts = (): Promise<number[]> => Promise.all(replicas.map(clientCount));
    fleetIdle = await idleBytesPerClient(replicas, before, counts);
    console.error(`[fanout] clients per replica: ${(await counts()).join(' / ')}`);
    fleet = await measureEdits(origin, clients, EDITS, {
      origin: () => cpuMs(origin.child.pid!),
      'replica 1': () => cpuMs(replicas[0]!.child.pid!),
      'replica 2': () => cpuMs(replicas[1]!.child.pid!),
      nginx: () => cpuMs(nginx!.pid, true),
      clients: () => clients.pids.reduce((sum, pid) => sum + cpuMs(pid), 0),
    }).catch((error: unknown) => {
      console.error(`[fanout] nginx error log, last lines:\n${nginx!.errorLog().split('\n').slice(-15).join('\n')}`);
      throw error;
    });

    // 3. The storm: the busier replica dies; its clients come back through nginx to the other.
    const held = await counts();
    const victim = held[0]! >= held[1]! ? 0 : 1;
    const survivor = replicas[1 - victim]!;
    const killedAt = performance.timeOrigin + performance.now();
    replicas[victim]!.child.kill('SIGKILL');
    const deadline = Date.now() + 60_000;
    let allBackMs = Number.NaN;
    while (Date.now() < deadline) {
      if ((await clientCount(survivor)) >= CLIENTS) {
        allBackMs = performance.timeOrigin + performance.now() - killedAt;
        break;
      }
      await pause(25);
    }
    const firsts = (await clients.hellos(killedAt)).filter((at): at is number => at !== null).map((at) => at - killedAt);
    const perBucket: number[] = [];
    for (const at of firsts) perBucket[Math.floor(at / 250)] = (perBucket[Math.floor(at / 250)] ?? 0) + 1;
    await pause(SETTLE_MS);
    storm = { allBackMs, reconnect: summary(firsts), moved: firsts.length, perBucket: Array.from(perBucket, (value) => value ?? 0), survivorBytesPerClient: (survivor.rss() - before[1 - victim]!) / CLIENTS };
    afterStorm = await measureEdits(origin, clients, 2);
    clients.close();
    await Promise.all([origin.stop(), ...replicas.map((replica) => replica.stop())]);
  }
} finally {
  await nginx?.stop();
  await broker.stop();
}

const singleNotified = summary(single.notified);
const singleFetched = summary(single.fetched);
const fleetNotified = summary(fleet.notified);
const fleetFetched = summary(fleet.fetched);
const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;
console.log(`\nFan-out: ${CLIENTS} channel clients in ${PROCESSES} processes, ${EDITS} versions measured (after one warm-up); times from the origin's publish\n`);
console.log(formatTable([
  ['', 'one livemod serve', 'two replicas + nginx + NATS', 'fleet / one', 'target (fleet)'],
  ['publish → notified p50', ms(singleNotified.p50), ms(fleetNotified.p50), ratio(fleetNotified.p50, singleNotified.p50), ''],
  ['publish → notified p99', ms(singleNotified.p99), ms(fleetNotified.p99), ratio(fleetNotified.p99, singleNotified.p99), '≤ 300 ms'],
  ['publish → notified max', ms(singleNotified.max), ms(fleetNotified.max), ratio(fleetNotified.max, singleNotified.max), ''],
  ['publish → manifest fetched p50', ms(singleFetched.p50), ms(fleetFetched.p50), ratio(fleetFetched.p50, singleFetched.p50), ''],
  ['publish → manifest fetched p99', ms(singleFetched.p99), ms(fleetFetched.p99), ratio(fleetFetched.p99, singleFetched.p99), '≤ 1 s'],
  ['publish → manifest fetched max', ms(singleFetched.max), ms(fleetFetched.max), ratio(fleetFetched.max, singleFetched.max), ''],
  ['server memory per idle client', kib(singleIdle), fleetIdle.map(kib).join(' / '), ratio(Math.max(...fleetIdle), singleIdle), '≤ 8 KiB'],
  ['notifications missed', String(single.missed), String(fleet.missed), '', '0'],
]));
console.log(`\nCPU time per version (user + system), while ${CLIENTS} clients are told and fetch:`);
console.log(formatTable([
  ['process', 'CPU ms per version'],
  ...Object.entries(single.cpuPerVersion).map(([name, value]) => [`one server: ${name}`, value.toFixed(0)]),
  ...Object.entries(fleet.cpuPerVersion).map(([name, value]) => [`fleet: ${name}`, value.toFixed(0)]),
]));
console.log(`\nReconnect storm: the busier replica killed (SIGKILL); its ${storm.moved} clients reconnect through nginx to the other.`);
console.log(formatTable([
  ['every client back on the survivor', ms(storm.allBackMs), 'target ≤ 5 s'],
  ['per-client reconnect p50 / p99 / max', `${ms(storm.reconnect.p50)} / ${ms(storm.reconnect.p99)} / ${ms(storm.reconnect.max)}`, ''],
  ['reconnects per 250 ms', storm.perBucket.join(' '), 'jittered, not one burst'],
  ['survivor memory per client after', kib(storm.survivorBytesPerClient), ''],
  ['after the storm: publish → fetched p99', ms(summary(afterStorm.fetched).p99), ''],
]));
Object.assign(results, { single: { notified: singleNotified, fetched: singleFetched, idleBytesPerClient: singleIdle, missed: single.missed, cpuPerVersion: single.cpuPerVersion }, fleet: { notified: fleetNotified, fetched: fleetFetched, idleBytesPerClient: fleetIdle, missed: fleet.missed, cpuPerVersion: fleet.cpuPerVersion }, storm, afterStorm: { fetched: summary(afterStorm.fetched) } });
writeFileSync(join(import.meta.dirname, 'out', 'fanout.json'), `${JSON.stringify(results, null, 2)}\n`);

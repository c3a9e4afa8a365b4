// One process of light channel clients for the fan-out bench: COUNT of livemod's own channel
// clients (src/client/channel.ts: the WebSocket, its jittered reconnect backoff, its status
// message), each answering a new version the way a syncing client does: it takes the manifest
// the announcement carries, or, when none came (too big to push, or FANOUT_FETCH=1), makes a
// conditional GET of the manifest (If-None-Match) over keep-alive connections. Neither is
// verified here: a real client verifies the manifest either way, on its own machine, while
// these 10,000 share two cores with the servers they measure (verifying them all costs 3 s of
// CPU per version, which measured the load generator, not the fleet). Times are absolute (ms
// since the epoch, sub-millisecond), so the parent compares them with the server's publish time.
//
// The parent talks over IPC: { cmd: 'state' } → counts; { cmd: 'report', version } → per-client
// notify and fetch times of that version; { cmd: 'hellos', since } → each client's first hello
// after `since` (the reconnect storm); { cmd: 'exit' }.
import { connect, type Socket } from 'node:net';
import { ChannelClient } from '../../src/client/channel.ts';
import { parseEnvelopeVersion } from './envelope.ts';

const url = process.env.FANOUT_URL!;
const count = Number(process.env.FANOUT_CLIENTS);
/** Connections opened per second by this process, so a start is not a SYN flood. */
const rate = Number(process.env.FANOUT_RATE ?? 500);
/** FANOUT_FETCH=1: ignore pushed manifests and fetch each one (a client of before the push, or a manifest too big to push). */
const alwaysFetch = process.env.FANOUT_FETCH === '1';

const now = (): number => performance.timeOrigin + performance.now();
const target = new URL(url);

interface Client {
  channel: ChannelClient;
  version: number;
  etag: string | null;
  notified: Map<number, number>;
  fetched: Map<number, number>;
  hellos: number[];
  fetching: boolean;
  pending: number;
}

const clients: Client[] = [];
let fetchErrors = 0;
const errorKinds: Record<string, number> = {};
const countError = (kind: string): void => {
  fetchErrors += 1;
  errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
};

// The manifest fetches go over a pool of keep-alive connections speaking just enough HTTP/1.1
// (a GET, a status line, Content-Length, ETag): the load generator must cost the machine little,
// or on two cores it measures itself. Node's HTTP client cost these processes more CPU than the
// servers they were measuring.
interface Fetch { client: Client; version: number }
const POOL = 32;
const queue: Fetch[] = [];
const idle: Connection[] = [];

class Connection {
  private readonly socket: Socket;
  private buffer: Buffer = Buffer.alloc(0);
  private current: Fetch | null = null;
  private open = false;

  constructor() {
    this.socket = connect(Number(target.port), target.hostname);
    this.socket.setNoDelay(true);
    this.socket.on('connect', () => {
      this.open = true;
      this.next();
    });
    this.socket.on('data', (chunk: Buffer) => this.read(chunk));
    this.socket.on('error', (error: NodeJS.ErrnoException) => countError(error.code ?? error.message));
    this.socket.on('close', () => {
      const index = idle.indexOf(this);
      if (index !== -1) idle.splice(index, 1);
      if (this.current) retry(this.current);
      pool.delete(this);
      setTimeout(grow, 100);
    });
  }

  next(): void {
    const fetch = queue.shift();
    if (!fetch) {
      idle.push(this);
      return;
    }
    this.current = fetch;
    const etag = fetch.client.etag;
    this.socket.write(`GET ${target.pathname.replace(/\/$/, '')}/manifest.json HTTP/1.1\r\nHost: ${target.host}\r\n${etag ? `If-None-Match: ${etag}\r\n` : ''}\r\n`);
  }

  private read(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end === -1 || !this.current) return;
      const head = this.buffer.subarray(0, end).toString('latin1');
      const status = Number(head.slice(9, 12));
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (this.buffer.length < end + 4 + length) return;
      this.buffer = this.buffer.subarray(end + 4 + length);
      const done = this.current;
      this.current = null;
      finished(done, status, /\r\netag: *([^\r]+)/i.exec(head)?.[1] ?? null);
      if (this.open) this.next();
    }
  }
}

const pool = new Set<Connection>();
function grow(): void {
  while (pool.size < POOL && queue.length > pool.size - idle.length) pool.add(new Connection());
}

function retry(fetch: Fetch): void {
  setTimeout(() => request(fetch.client), 200);
}

function finished(fetch: Fetch, status: number, etag: string | null): void {
  const { client, version } = fetch;
  client.fetching = false;
  if (status === 200) {
    client.etag = etag;
    if (!client.fetched.has(version)) client.fetched.set(version, now());
  } else if (status !== 304) countError(String(status));
  // The replica that answered may have been a moment behind the one that announced: ask again.
  if (status === 304 && !client.fetched.has(version)) setTimeout(() => request(client), 100);
  else if (client.pending > version) request(client);
}

function request(client: Client): void {
  if (client.fetching) return;
  client.fetching = true;
  queue.push({ client, version: client.pending });
  const connection = idle.pop();
  if (connection) connection.next();
  else grow();
}

const fetchManifest = request;

function start(index: number): void {
  const client: Client = { channel: undefined as unknown as ChannelClient, version: 0, etag: null, notified: new Map(), fetched: new Map(), hellos: [], fetching: false, pending: 0 };
  client.channel = new ChannelClient({
    url: `${url}/channel`,
    headers: {},
    onVersion: (version, _hello, manifest) => {
      const at = now();
      client.hellos.push(at);
      if (client.hellos.length > 8) client.hellos.shift();
      if (version <= client.version) return;
      const first = client.version === 0;
      client.version = version;
      if (first) {
        // The version it starts on: fetch its manifest once, as a client's start does.
        client.pending = version;
        fetchManifest(client);
        return;
      }
      if (!client.notified.has(version)) client.notified.set(version, at);
      client.pending = version;
      // Pushed with the announcement: taken with no request, as livemod's client does (it must name the version announced).
      if (manifest !== undefined && !alwaysFetch) {
        if (parseEnvelopeVersion(manifest) === version) {
          if (!client.fetched.has(version)) client.fetched.set(version, now());
          return;
        }
        countError('pushed manifest of another version');
      }
      fetchManifest(client);
    },
    status: () => ({ type: 'status', version: client.version }),
    log: () => {},
  });
  clients[index] = client;
  client.channel.start();
}

let started = 0;
const starter = setInterval(() => {
  const batch = Math.max(1, Math.round(rate / 20));
  for (let index = 0; index < batch && started < count; index += 1) start(started++);
  if (started >= count) clearInterval(starter);
}, 50);

// The channels are unreferenced (a program's channel never keeps it alive); this process lives for them.
const keepAlive = setInterval(() => {}, 60_000);

process.on('message', (message: { cmd: string; version?: number; since?: number }) => {
  switch (message.cmd) {
    case 'state': {
      let onLatest = 0;
      let max = 0;
      for (const client of clients) max = Math.max(max, client?.version ?? 0);
      for (const client of clients) if (client && client.version === max && client.fetched.has(max)) onLatest += 1;
      process.send!({ cmd: 'state', started, connected: clients.filter((client) => client && client.channel.connections > 0).length, version: max, onLatest, fetchErrors, errorKinds });
      return;
    }
    case 'report': {
      const version = message.version!;
      process.send!({
        cmd: 'report',
        notified: clients.map((client) => client.notified.get(version) ?? null),
        fetched: clients.map((client) => client.fetched.get(version) ?? null),
      });
      return;
    }
    case 'hellos': {
      const since = message.since!;
      process.send!({ cmd: 'hellos', first: clients.map((client) => client.hellos.find((at) => at > since) ?? null) });
      return;
    }
    case 'exit':
      clearInterval(keepAlive);
      for (const client of clients) client?.channel.close();
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));

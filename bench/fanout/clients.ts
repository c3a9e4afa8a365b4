// One process of light channel clients for the fan-out bench: COUNT of livemod's own channel
// clients (src/client/channel.ts: the WebSocket, its jittered reconnect backoff, its status
// message), each answering a new version the way a syncing client does: a conditional GET of the
// manifest (If-None-Match), through a keep-alive agent. Times are absolute (ms since the epoch,
// sub-millisecond), so the parent compares them with the server's publish time.
//
// The parent talks over IPC: { cmd: 'state' } → counts; { cmd: 'report', version } → per-client
// notify and fetch times of that version; { cmd: 'hellos', since } → each client's first hello
// after `since` (the reconnect storm); { cmd: 'exit' }.
import { Agent, request } from 'node:http';
import { ChannelClient } from '../../src/client/channel.ts';

const url = process.env.FANOUT_URL!;
const count = Number(process.env.FANOUT_CLIENTS);
/** Connections opened per second by this process, so a start is not a SYN flood. */
const rate = Number(process.env.FANOUT_RATE ?? 500);

const now = (): number => performance.timeOrigin + performance.now();
const agent = new Agent({ keepAlive: true, maxSockets: 32 });

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

function fetchManifest(client: Client): void {
  if (client.fetching) return;
  client.fetching = true;
  const target = client.pending;
  const req = request(`${url}/manifest.json`, { agent, headers: client.etag ? { 'if-none-match': client.etag } : {} }, (res) => {
    res.resume();
    res.on('end', () => {
      client.fetching = false;
      if (res.statusCode === 200) {
        client.etag = (res.headers.etag as string | undefined) ?? null;
        if (!client.fetched.has(target)) client.fetched.set(target, now());
      } else if (res.statusCode !== 304) countError(String(res.statusCode));
      // The replica that answered may have been a moment behind the one that announced: ask again.
      if (res.statusCode === 304 && !client.fetched.has(target)) setTimeout(() => fetchManifest(client), 100);
      else if (client.pending > target) fetchManifest(client);
    });
  });
  req.on('error', (error: NodeJS.ErrnoException) => {
    client.fetching = false;
    countError(error.code ?? error.message);
    setTimeout(() => fetchManifest(client), 200);
  });
  req.end();
}

function start(index: number): void {
  const client: Client = { channel: undefined as unknown as ChannelClient, version: 0, etag: null, notified: new Map(), fetched: new Map(), hellos: [], fetching: false, pending: 0 };
  client.channel = new ChannelClient({
    url: `${url}/channel`,
    headers: {},
    onVersion: (version) => {
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
      agent.destroy();
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));

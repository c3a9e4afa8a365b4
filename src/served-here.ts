// The ports a livemod server of this process listens on. A client in the same process must not
// block its thread waiting for that server (a lazily imported graph fetched while its first read
// waits: client/fetch-sync.ts), since the server answers on that very thread: a client whose
// origin may be served here fetches what it runs at start instead. Kept on globalThis, so two
// copies of livemod in one process (the CLI's and a program's) see the same ports. A port
// matched on another host only costs that client the eager fetch.
const KEY = Symbol.for('livemod.servedHere');

function ports(): Map<number, number> {
  const global = globalThis as Record<symbol, unknown>;
  let found = global[KEY] as Map<number, number> | undefined;
  if (!found) global[KEY] = found = new Map();
  return found;
}

/** A server of this process listens on `port` (counted: two servers may come and go on one port). */
export function markServed(port: number): void {
  ports().set(port, (ports().get(port) ?? 0) + 1);
}

export function unmarkServed(port: number): void {
  const count = (ports().get(port) ?? 0) - 1;
  if (count > 0) ports().set(port, count);
  else ports().delete(port);
}

/** Whether `url` may be answered by a server of this process. */
export function servedHere(url: string): boolean {
  if (ports().size === 0) return false;
  const parsed = new URL(url);
  const port = parsed.port === '' ? (parsed.protocol === 'https:' ? 443 : 80) : Number(parsed.port);
  return ports().has(port);
}

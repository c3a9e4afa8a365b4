// A start's conditional manifest request to a plain-http origin, on a bare TCP socket. A warm
// start's one request is most often answered 304, and node:http costs a Node process about
// 10 ms of CPU to load and drive for it (its modules, ClientRequest, the parser, the agent),
// where the socket costs 3; the thread has no idle time then, so every one of those ms is start
// time. Only what is certain is taken from the bare answer: a well-formed `HTTP/1.x 304` head
// (status line and header lines, at most 16 KiB). Any other answer — a 200 (a new version), a
// redirect, an error status, a 1xx, anything malformed or over size — closes the socket and the
// caller makes the request again through node:http, which reads and checks it as every other
// response (a start after a publish pays that one round trip more). Transport failures (refused,
// reset, no DNS answer) are thrown as node:http would throw them.
//
// Not taken (node:http is used from the start) when node:http is already loaded in the process
// (nothing to save, and a program may have set its agent or patched it, e.g. for a proxy), or
// when Node is told to route requests through the environment's proxy.
import type { Socket } from 'node:net';

/** The head of a 304 as ResponseHeaders reads it: lowercase names, repeated values joined. */
export type BareHead = { readonly statusText: string; readonly headers: Record<string, string> };

const MAX_HEAD_BYTES = 16 * 1024;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: ([\t\x20-\x7e\x80-\xff]*))?$/;

/** Whether a request may go on a bare socket first: plain http, node:http not loaded, no environment proxy. */
export function bareAllowed(target: URL, headers: Readonly<Record<string, string>>): boolean {
  if (target.protocol !== 'http:' || target.username !== '' || target.password !== '') return false;
  if ((process as { moduleLoadList?: readonly string[] }).moduleLoadList?.includes('NativeModule http') !== false) return false;
  if (process.env.NODE_USE_ENV_PROXY || process.execArgv.some((flag) => flag.startsWith('--use-env-proxy')) || /--use-env-proxy/.test(process.env.NODE_OPTIONS ?? '')) return false;
  // A header node:http would refuse (ERR_INVALID_CHAR) is left for it to refuse; a Host or
  // Connection of the caller's, for it to send.
  return Object.entries(headers).every(([name, value]) => TOKEN.test(name) && FIELD_VALUE.test(value) && !/^(?:host|connection)$/i.test(name));
}

/** The head of a 304, parsed; null when the bytes are anything else. */
export function parseNotModified(head: string): BareHead | null {
  const lines = head.split('\r\n');
  const status = STATUS_LINE.exec(lines[0]!);
  if (!status || status[1] !== '304') return null;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    // Split by hand, each part checked by one character class: no expression here backtracks,
    // so a hostile head of 16 KiB costs what reading it does.
    const colon = line.indexOf(':');
    const field = line.slice(0, colon);
    const raw = line.slice(colon + 1);
    // A malformed line, or an obsolete folded one (it starts with a space): node:http reads this answer, not the bare path.
    if (colon === -1 || !TOKEN.test(field) || !FIELD_VALUE.test(raw)) return null;
    const name = field.toLowerCase();
    const value = trimBlanks(raw);
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { statusText: status[2] ?? '', headers };
}

/** Spaces and tabs off both ends (a header value's optional whitespace). */
function trimBlanks(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && (value[start] === ' ' || value[start] === '\t')) start += 1;
  while (end > start && (value[end - 1] === ' ' || value[end - 1] === '\t')) end -= 1;
  return value.slice(start, end);
}

/**
 * Sends `GET target` with `headers` (Connection: close) and resolves with the 304's head, or null
 * when the answer is anything else (the socket is closed then: ask again through node:http).
 * Rejects with the socket's error, or the signal's reason once it aborts.
 */
export function bareNotModified(target: URL, headers: Readonly<Record<string, string>>, signal: AbortSignal): Promise<BareHead | null> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
    const socket: Socket = process.getBuiltinModule('node:net').connect({ host, port: Number(target.port || 80), noDelay: true });
    let head = '';
    let settled = false;
    const settle = (value: BareHead | null | Error): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (value instanceof Error) reject(value);
      else resolve(value);
    };
    const onAbort = (): void => settle(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (error) => settle(error));
    // Closed before a whole head came: what node:http calls a socket hang up.
    socket.on('close', () => settle(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })));
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > MAX_HEAD_BYTES) settle(null);
        return;
      }
      settle(end > MAX_HEAD_BYTES ? null : parseNotModified(head.slice(0, end)));
    });
    let request = `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\n`;
    for (const [name, value] of Object.entries(headers)) request += `${name}: ${value}\r\n`;
    socket.write(`${request}Connection: close\r\n\r\n`, 'latin1');
  });
}

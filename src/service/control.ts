// The control socket of a live service: a Unix socket (mode 0600, in the state directory's run/
// folder, itself 0700) on which `livemod run`, started by a supervisor, takes requests from the
// service CLI. One JSON object per line each way:
//   {"op":"status"} → {"ok":true,"pid":…,"version":…,"lastSwap":{…}|null}
//   {"op":"reload"} → {"ok":true,"version":…,"swap":{…}|null}   (sync now, swap in place)
//   failures        → {"ok":false,"error":{"code":"ERR_LIVEMOD_…","message":"…"}}
// The socket does not keep the program alive (it is unreferenced): a program that ends, exits.
import type { Server, Socket } from 'node:net';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { ErrorCodes, LivemodError, isLivemodError } from '../errors.ts';

/** The environment variable a supervisor sets for a live service's `livemod run`. */
export const CONTROL_ENV = 'LIVEMOD_CONTROL_SOCKET';
const MAX_REQUEST_BYTES = 64 * 1024;

export interface ControlTarget {
  readonly version: number;
  update(): Promise<{ version: number; status: string; error?: string } | null>;
  swaps(): readonly unknown[];
}

/** Listens on `path` for the service CLI; returns the server (already unreferenced). */
export function listenControl(path: string, app: ControlTarget): Promise<Server> {
  const net = process.getBuiltinModule('node:net');
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  rmSync(path, { force: true });
  const server = net.createServer((socket) => serve(socket, app));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      chmodSync(path, 0o600);
      server.unref();
      resolve(server);
    });
  });
}

function serve(socket: Socket, app: ControlTarget): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    if (buffered.length > MAX_REQUEST_BYTES) {
      reply(socket, { ok: false, error: { code: ErrorCodes.BAD_REQUEST, message: `a control request is one JSON line under ${MAX_REQUEST_BYTES} bytes` } });
      socket.end();
      return;
    }
    const newline = buffered.indexOf('\n');
    if (newline === -1) return;
    const line = buffered.slice(0, newline);
    buffered = buffered.slice(newline + 1);
    void answer(line, app).then((response) => reply(socket, response));
  });
}

async function answer(line: string, app: ControlTarget): Promise<Record<string, unknown>> {
  let request: { op?: unknown };
  try {
    request = JSON.parse(line) as { op?: unknown };
  } catch {
    return { ok: false, error: { code: ErrorCodes.BAD_REQUEST, message: 'a control request is a JSON object on one line, e.g. {"op":"status"}' } };
  }
  if (request?.op === 'status') return { ok: true, pid: process.pid, version: app.version, lastSwap: app.swaps().at(-1) ?? null };
  if (request?.op === 'reload') {
    try {
      const swap = await app.update();
      if (swap && swap.status !== 'applied') {
        return { ok: false, version: app.version, swap, error: { code: ErrorCodes.SERVICE_RELOAD, message: `version ${swap.version} was not taken (${swap.status}${swap.error ? `: ${swap.error.split('\n')[0]}` : ''}); version ${app.version} keeps running` } };
      }
      return { ok: true, version: app.version, swap };
    } catch (error) {
      const code = isLivemodError(error) ? error.code : ErrorCodes.SERVICE_RELOAD;
      return { ok: false, version: app.version, error: { code, message: error instanceof Error ? error.message.split('\n')[0] : String(error) } };
    }
  }
  return { ok: false, error: { code: ErrorCodes.BAD_REQUEST, message: 'unknown op: send {"op":"status"} or {"op":"reload"}' } };
}

function reply(socket: Socket, response: Record<string, unknown>): void {
  if (!socket.destroyed) socket.write(`${JSON.stringify(response)}\n`);
}

/** Sends one request to a live service's control socket and waits for its answer. */
export function askControl(path: string, op: 'status' | 'reload', timeoutMs: number): Promise<Record<string, unknown>> {
  const net = process.getBuiltinModule('node:net');
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    let buffered = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new LivemodError('service', op === 'reload' ? ErrorCodes.SERVICE_RELOAD : ErrorCodes.TIMEOUT, `the service's control socket ${path} did not answer ${op} within ${timeoutMs} ms`, { path }));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ op })}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline === -1) return;
      clearTimeout(timer);
      socket.end();
      try {
        resolve(JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>);
      } catch {
        reject(new LivemodError('service', ErrorCodes.PROTOCOL, `the service's control socket ${path} answered something that is not JSON`, { path }));
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new LivemodError('service', op === 'reload' ? ErrorCodes.SERVICE_RELOAD : ErrorCodes.FETCH_FAILED, `cannot reach the service's control socket ${path} (${error.code ?? error.message}); is the service a running livemod program?`, { path }));
    });
    // The service went away mid-request (it exited, or was killed): no answer is coming.
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new LivemodError('service', op === 'reload' ? ErrorCodes.SERVICE_RELOAD : ErrorCodes.FETCH_FAILED, `the service closed its control socket ${path} without answering ${op}; it may have exited (see \`livemod service status\`)`, { path }));
    });
  });
}

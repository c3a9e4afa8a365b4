// A real nginx serving a folder, for tests and benches: the static host livemod's published
// snapshots are made for. It runs in the foreground as one process (`master_process off`, so a
// single kill ends it and nothing is orphaned), with every path it writes (pid, logs, temp
// folders) inside its own temp dir, listening on 127.0.0.1 only. Whoever starts it calls stop();
// a process exit hook kills it too, so a crashed test run leaves no nginx behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './daemon.ts';

export const NGINX_BINARY = '/usr/sbin/nginx';

/** Why nginx cannot be used here, or null when it can. */
export function nginxMissing(): string | null {
  return existsSync(NGINX_BINARY) ? null : `nginx not installed (${NGINX_BINARY} is missing): apt-get install -y nginx`;
}

export interface Nginx {
  /** `http://127.0.0.1:<port>/`, the served folder's root. */
  readonly url: string;
  readonly port: number;
  /** nginx's pid (with several workers, the master's). */
  readonly pid: number;
  /** Access log lines so far: `<method> <uri> <status> <body bytes> "<Range header>"`. */
  accessLog(): string[];
  /** nginx's error log so far (warnings and worse). */
  errorLog(): string;
  /** Ends nginx and removes its temp dir; idempotent. */
  stop(): Promise<void>;
}

export interface NginxOptions {
  /** Folder to serve (a published snapshot). */
  readonly root?: string;
  /**
   * Instead of a folder: balance over these servers (`127.0.0.1:PORT`), round robin, WebSocket
   * upgrades included; a server that refuses a connection is skipped for the request.
   */
  readonly upstreams?: readonly string[];
  /** Worker processes (default 1, with no master process); more runs a master, for the fan-out bench. */
  readonly workers?: number;
  /** Connections per worker (default 256). */
  readonly workerConnections?: number;
  /** Longest wait for nginx to listen (default 10 s). */
  readonly startTimeoutMs?: number;
}


function site(options: NginxOptions): string {
  if (options.upstreams) {
    return `
    location / {
      proxy_pass http://livemod_replicas;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      # A channel upgrades; any other request keeps its upstream connection alive (keepalive
      # below), so thousands of manifest fetches do not leave thousands of sockets in TIME_WAIT.
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
      proxy_connect_timeout 5s;
      proxy_next_upstream error timeout http_502 http_503;
    }`;
  }
  const immutable = 'add_header Cache-Control "public, max-age=31536000, immutable";';
  return `
    root ${options.root};
    # The manifest is the one mutable file: caches must revalidate it (a 304 when unchanged).
    location = /manifest.json { add_header Cache-Control "no-cache"; }
    # Blobs and packs are named by their hash, so they never change.
    location /blobs/ { ${immutable} }
    location /pack/ { ${immutable} }`;
}

function config(dir: string, options: NginxOptions, port: number): string {
  const workers = options.workers ?? 1;
  const connections = options.workerConnections ?? 256;
  const upstream = options.upstreams
    ? `map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream livemod_replicas { ${options.upstreams.map((address) => `server ${address} max_fails=3 fail_timeout=2s;`).join(' ')} keepalive 64; }`
    : '';
  return `
daemon off;
master_process ${workers > 1 ? 'on' : 'off'};
worker_processes ${workers};
worker_rlimit_nofile ${connections * 2 + 64};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections ${connections}; }
http {
  types { application/json json; application/octet-stream pack; }
  default_type application/octet-stream;
  log_format livemod '$request_method $uri $status $body_bytes_sent "$http_range"';
  # A balancer of thousands of channels logs through a buffer (a write per request cost it more than proxying).
  access_log ${dir}/access.log livemod${options.upstreams ? ' buffer=256k flush=1s' : ''};
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  sendfile on;
  ${upstream}
  server {
    listen 127.0.0.1:${port}${workers > 1 ? ' reuseport' : ''};${site(options)}
  }
}
`;
}

/** Resolves once `file` exists, rejects after `ms`; event-driven (fs.watch), re-checked once the watch is set. */
function appears(dir: string, name: string, ms: number): { promise: Promise<void>; cancel: () => void } {
  let cancel = (): void => {};
  const promise = new Promise<void>((resolve, reject) => {
    const watcher = watch(dir, () => {
      if (existsSync(join(dir, name))) done(null);
    });
    const timer = setTimeout(() => done(new Error(`nginx did not start listening within ${ms} ms`)), ms);
    const done = (error: Error | null): void => {
      clearTimeout(timer);
      watcher.close();
      if (error) reject(error);
      else resolve();
    };
    cancel = () => done(null);
    if (existsSync(join(dir, name))) done(null);
  });
  return { promise, cancel };
}

async function startOnce(options: NginxOptions, startTimeoutMs: number): Promise<Nginx | { retry: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'livemod-nginx-'));
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, config(dir, options, port));
  // nginx writes the pid file after it has bound and listened: its appearance means "ready".
  const ready = appears(dir, 'nginx.pid', startTimeoutMs);
  const child: ChildProcess = spawn(NGINX_BINARY, ['-p', `${dir}/`, '-c', conf, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const onExit = (): void => {
    kill();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  const errorLog = (): string => (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '') + stderr;

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.off('exit', onExit);
      if (child.exitCode === null && child.signalCode === null) {
        // SIGTERM is nginx's fast shutdown; SIGKILL if it has not gone within 5 s.
        child.kill('SIGTERM');
        const timer = setTimeout(kill, 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const outcome = await Promise.race([
    ready.promise.then(() => 'ready' as const, (error: Error) => error),
    exited.then((code) => code),
  ]);
  ready.cancel();
  if (outcome !== 'ready') {
    const log = errorLog();
    await stop();
    // Another process took the port between our probe and nginx's bind: try another one.
    if (log.includes('Address already in use')) return { retry: log };
    throw new Error(`nginx failed to start (${outcome instanceof Error ? outcome.message : `exit code ${outcome}`}): ${log.trim() || 'no error log'}`);
  }
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    errorLog,
    pid: child.pid!,
    accessLog: () => (existsSync(join(dir, 'access.log')) ? readFileSync(join(dir, 'access.log'), 'utf8').split('\n').filter(Boolean) : []),
    stop,
  };
}

/** Starts nginx serving `root` (or balancing over `upstreams`); throws with its error log when it cannot start. */
export async function startNginx(options: NginxOptions): Promise<Nginx> {
  let last = '';
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const started = await startOnce(options, options.startTimeoutMs ?? 10_000);
    if (!('retry' in started)) return started;
    last = started.retry;
  }
  throw new Error(`nginx could not bind a free port in 3 tries: ${last.trim()}`);
}

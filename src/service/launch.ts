// How a service's process is started, and how its first run's exit status reaches the supervisor.
//
// A CLI call that starts a service (add, start, restart) does not wait for a supervisor to boot
// before the service starts: that put two Node starts in series in front of the service's own
// (about 200 ms here). The CLI starts the first run itself, under a waiter — `/bin/sh` running the
// command in the foreground and then writing its exit status to the run's exit file — and then
// starts the supervisor, which adopts the run. The supervisor is not the first run's parent, so it
// could not learn the exit status by waiting; the waiter, its parent, hands it over through the
// file (`run/NAME.exit`: `exit N`). The supervisor starts every later run itself, as its child.
//
// The waiter is started detached (a session of its own), and runs the service through setsid(1)
// (util-linux, or busybox), so the service leads a session and process group of its own, exactly
// as a run the supervisor starts: a signal to its group (stop, `kill -- -PID`) reaches the service
// and its children, never the CLI, the supervisor or the waiter. Without a setsid command the
// service shares the waiter's group, and a stop signals that group (proc.ts signalGroup). The
// service does not inherit the exit file (`3>&-`). sh reports a run ended by signal N as 128 + N,
// read back as that signal.
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, constants as fsConstants, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { CONTROL_ENV } from './control.ts';
import type { ServiceRecord } from './db.ts';
import { controlSocket, type ServiceHome } from './home.ts';
import { openLog } from './logs.ts';
import { childrenOf, identify } from './proc.ts';

/** The waiter: the command (the script's arguments) in the foreground, then its status on fd 3. */
const WAITER = '"$@" 3>&-; echo "exit $?" >&3';
/** How long the CLI looks for the run under its waiter (sh forks within a millisecond or two). */
const FIND_RUN_MS = 2000;
/** How long the supervisor waits for a waiter to write the status of a run it saw end. */
export const EXIT_FILE_WAIT_MS = 1000;

export type Outcome = { code: number | null; signal: NodeJS.Signals | null; exit: string };

export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exit code ${code}`;
}

/** The exit file of a service's waited first run. */
export function exitFile(home: ServiceHome, name: string): string {
  return join(home.run, `${name}.exit`);
}

/** The service's environment: the one recorded when it was added (not whichever CLI call started it), its --env, and its control socket. */
export function serviceEnv(home: ServiceHome, record: ServiceRecord): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...(record.baseEnv ?? process.env), ...record.env };
  delete env[CONTROL_ENV];
  if (record.runUrl !== null) env[CONTROL_ENV] = controlSocket(home, record.name);
  return env;
}

/** Opens the service's log files and calls `body` with their fds (closed after: the child has its own). */
export function withLogs<T>(record: ServiceRecord, body: (out: number, err: number) => T): T {
  const out = openLog(record.stdout, record.name);
  let err = out;
  try {
    if (record.stderr !== record.stdout) err = openLog(record.stderr, record.name);
    return body(out, err);
  } finally {
    closeSync(out);
    if (err !== out) closeSync(err);
  }
}

let setsid: string | null | undefined;
/** The setsid command, if this system has one where util-linux or busybox put it. */
function setsidCommand(): string | null {
  setsid ??= ['/usr/bin/setsid', '/bin/setsid'].find((path) => existsSync(path)) ?? null;
  return setsid;
}

const sleepSync = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

/**
 * Starts the service's first run under a waiter (see above), from the CLI; returns the run's pid
 * and start time, or null when it ended before it could be found (its status is in the exit file).
 */
export function startWaited(home: ServiceHome, record: ServiceRecord): { pid: number; start: number } | null {
  mkdirSync(home.run, { recursive: true, mode: 0o700 });
  const file = exitFile(home, record.name);
  rmSync(file, { force: true });
  // Created anew (never a file of an earlier run, nor a link planted in its place), owner-only.
  const exitFd = openSync(file, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
  const wrapper = setsidCommand();
  let waiter: ChildProcess;
  try {
    waiter = withLogs(record, (out, err) =>
      process.getBuiltinModule('node:child_process').spawn('/bin/sh', ['-c', WAITER, 'livemod-service', ...(wrapper !== null ? [wrapper] : []), ...record.command], {
        cwd: record.cwd,
        env: serviceEnv(home, record),
        stdio: ['ignore', out, err, exitFd],
        detached: true,
      }),
    );
  } finally {
    closeSync(exitFd);
  }
  // Its exit is the supervisor's business, read from the file; nothing of it keeps this CLI call alive.
  waiter.on('error', () => {});
  waiter.unref();
  const shell = waiter.pid;
  if (shell === undefined) throw new LivemodError('service', ErrorCodes.SERVICE_START, `cannot start service ${record.name}: /bin/sh did not spawn`, { name: record.name });
  const deadline = Date.now() + FIND_RUN_MS;
  for (;;) {
    const [pid] = childrenOf(shell);
    if (pid !== undefined) {
      const identity = identify(pid);
      if (identity) return { pid, start: identity.start };
    }
    if (identify(shell) === null || Date.now() > deadline) return null;
    sleepSync(1);
  }
}

/**
 * Takes the first run's status from its exit file, if the run was a waited one: the file is
 * removed once read. An empty file is waited on a little: the waiter writes it just after its run
 * ends. Null: no waited run (no file), or a waiter that ended without writing (killed with its group).
 */
export async function takeFirstExit(home: ServiceHome, name: string): Promise<Outcome | null> {
  const file = exitFile(home, name);
  const deadline = Date.now() + EXIT_FILE_WAIT_MS;
  for (;;) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return null;
    }
    const match = /^exit (\d{1,3})\n/.exec(text);
    if (match || Date.now() > deadline) {
      rmSync(file, { force: true });
      return match ? outcomeOf(Number(match[1])) : null;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A shell status: 128 + N is signal N (as sh reports a command a signal ended). */
function outcomeOf(status: number): Outcome {
  if (status > 128) {
    const signals = process.getBuiltinModule('node:os').constants.signals as Record<string, number>;
    const signal = Object.keys(signals).find((name) => signals[name] === status - 128) as NodeJS.Signals | undefined;
    if (signal) return { code: null, signal, exit: describeExit(null, signal) };
  }
  return { code: status, signal: null, exit: describeExit(status, null) };
}

/** Forgets a waited run's exit file (the supervisor starts runs of its own from here on). */
export function dropExitFile(home: ServiceHome, name: string): void {
  rmSync(exitFile(home, name), { force: true });
}

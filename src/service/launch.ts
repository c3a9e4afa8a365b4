// How a service's process is started, and how its first run's exit status reaches the supervisor.
//
// A CLI call that starts a service (add, start, restart) does not wait for a supervisor to boot
// before the service starts: that put two Node starts in series in front of the service's own
// (about 200 ms here). The CLI starts the first run itself, under a waiter — `/bin/sh` running the
// command in the foreground — and then starts the supervisor, which adopts the run. The
// supervisor is not the first run's parent, so it could not learn the exit status by waiting;
// the waiter, its parent, hands it over through the run's journal, `run/NAME.exit` (mode 0600,
// in the 0700 run/ folder), one line each:
//   boot <boot id>    written by the CLI as it creates the file: a file of another boot is void
//   waiter <pid>      written by the waiter before it starts the run, and by the CLI once spawned
//   exit <status>     written by the waiter when the run has ended
// A supervisor (or a start) that finds a waiter still living — the process named by the journal
// and holding it open — adopts the waiter's run even if the CLI never recorded it (the CLI killed
// mid-start, or the run not found in time), so no second copy is started beside it. The
// supervisor removes the file with the transaction that records the outcome, and starts every
// later run itself, as its child.
//
// The waiter is started detached (a session of its own), and runs the service through setsid(1)
// (util-linux, or busybox), so the service leads a session and process group of its own, exactly
// as a run the supervisor starts: a signal to its group (stop, `kill -- -PID`) reaches the service
// and its children, never the CLI, the supervisor or the waiter. Without a setsid command the
// service runs through env(1) (so a command named like a shell builtin is still the program) and
// shares the waiter's group, which a stop then signals (proc.ts signalGroup); the waiter dies with
// it and no status is written, which a stop does not need. The service does not inherit the
// journal (`3>&-`). sh reports a run ended by signal N as 128 + N, read back as that signal (so a
// first run that itself exits with 129–192 is reported as killed by that signal).
import type { ChildProcess } from 'node:child_process';
import { accessSync, closeSync, existsSync, constants as fsConstants, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { CONTROL_ENV } from './control.ts';
import type { ServiceRecord } from './db.ts';
import { controlSocket, type ServiceHome } from './home.ts';
import { openLog } from './logs.ts';
import { childrenOf, currentBoot, identify, processGroup } from './proc.ts';

/** The waiter: its pid, the command (the script's arguments) in the foreground, then its status, on fd 3. */
const WAITER = 'echo "waiter $$" >&3; "$@" 3>&-; echo "exit $?" >&3';
/** The waiter's $0: what `ps` shows a waiter as. */
const WAITER_NAME = 'livemod-service';

/** How long the CLI looks for the run under its waiter (sh forks within a millisecond or two). */
const FIND_RUN_MS = 2000;

export type Outcome = { code: number | null; signal: NodeJS.Signals | null; exit: string };

export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exit code ${code}`;
}

/** The journal of a service's first run (the CLI's). */
function exitFile(home: ServiceHome, name: string): string {
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

let wrapper: string | null | undefined;
/** setsid, where util-linux or busybox put it or on PATH; else env; else none. */
function wrapperCommand(): string | null {
  if (wrapper === undefined) {
    const dirs = ['/usr/bin', '/bin', ...(process.env.PATH ?? '').split(delimiter).filter((dir) => dir.startsWith('/'))];
    const executable = (path: string): boolean => {
      try {
        accessSync(path, fsConstants.X_OK);
        return true;
      } catch {
        return false;
      }
    };
    const find = (name: string): string | undefined => dirs.map((dir) => join(dir, name)).find(executable);
    wrapper = find('setsid') ?? find('env') ?? null;
  }
  return wrapper;
}

/** The run a waiter runs now, once it counts: with setsid, once it leads its group (a stop signals that group). */
function runOf(waiter: number): { pid: number; start: number } | null {
  const [pid] = childrenOf(waiter);
  const identity = pid === undefined ? null : identify(pid);
  if (identity === null) return null;
  const leads = wrapperCommand()?.endsWith('/setsid') === true;
  return !leads || processGroup(identity.pid) === identity.pid ? { pid: identity.pid, start: identity.start } : null;
}

const sleepSync = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

function startError(record: ServiceRecord, why: string): LivemodError {
  return new LivemodError('service', ErrorCodes.SERVICE_START, `cannot start service ${record.name}: ${why}`, { name: record.name });
}

/**
 * Starts the service's first run under a waiter (see above), from the CLI; returns the run's pid
 * and start time, or null when it was not found running (it ended at once, its status in the
 * journal; or it was not found in time, and its supervisor adopts it through the journal).
 */
export function startWaited(home: ServiceHome, record: ServiceRecord): { pid: number; start: number } | null {
  if (!existsSync(record.cwd) || !statSync(record.cwd).isDirectory()) throw startError(record, `its folder ${record.cwd} is gone; remove the service and add it again with an existing --cwd`);
  mkdirSync(home.run, { recursive: true, mode: 0o700 });
  const file = exitFile(home, record.name);
  rmSync(file, { force: true });
  // Created anew (never a file of an earlier run, nor a link planted in its place), owner-only;
  // appended to by this process and the waiter.
  const journal = openSync(file, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW | fsConstants.O_APPEND, 0o600);
  const command = wrapperCommand();
  let waiter: ChildProcess;
  try {
    writeSync(journal, `boot ${currentBoot()}\n`);
    waiter = withLogs(record, (out, err) =>
      process.getBuiltinModule('node:child_process').spawn('/bin/sh', ['-c', WAITER, WAITER_NAME, ...(command !== null ? [command, '--'] : []), ...record.command], {
        cwd: record.cwd,
        env: serviceEnv(home, record),
        stdio: ['ignore', out, err, journal],
        detached: true,
      }),
    );
  } catch (error) {
    rmSync(file, { force: true });
    throw error;
  } finally {
    closeSync(journal);
  }
  // Its exit is the supervisor's business, read from the journal; nothing of it keeps this CLI call alive.
  waiter.on('error', () => {});
  waiter.unref();
  const shell = waiter.pid;
  if (shell === undefined) {
    rmSync(file, { force: true });
    throw startError(record, '/bin/sh did not spawn');
  }
  // The waiter writes its pid too, first thing; whichever comes first names it.
  const again = openSync(file, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_NOFOLLOW);
  try {
    writeSync(again, `waiter ${shell}\n`);
  } finally {
    closeSync(again);
  }
  const deadline = Date.now() + FIND_RUN_MS;
  for (let round = 0; ; round += 1) {
    const run = runOf(shell);
    if (run !== null) return run;
    if (identify(shell) === null || Date.now() > deadline) return null;
    // Millisecond looks at first (sh forks at once); less often after, as without /proc's
    // children file each look reads every process's stat.
    sleepSync(round < 20 ? 1 : 10);
  }
}

/** What the journal of a first run says: nothing (no file, or one of another boot), its status, or its waiter. */
type Journal = { readonly exit: Outcome } | { readonly waiter: number | null };

function readJournal(home: ServiceHome, name: string): Journal | null {
  let text: string;
  try {
    text = readFileSync(exitFile(home, name), 'utf8');
  } catch {
    return null;
  }
  const boot = /^boot (\S+)$/m.exec(text)?.[1];
  if (boot !== currentBoot()) {
    dropExitFile(home, name);
    return null;
  }
  const exit = /^exit (\d{1,3})$/m.exec(text);
  if (exit) return { exit: outcomeOf(Number(exit[1])) };
  const waiter = Number(/^waiter (\d+)$/m.exec(text)?.[1]);
  return { waiter: Number.isSafeInteger(waiter) && waiter > 0 ? waiter : null };
}

/**
 * Whether the process is the waiter of this journal: alive, and holding the journal itself open
 * (same device and inode; sh keeps it as fd 3, or moves it aside — dash to fd 10 — while its
 * command runs with fd 3 closed). A pid alone could name any process by now.
 */
function isWaiterOf(pid: number, home: ServiceHome, name: string): boolean {
  if (identify(pid) === null) return false;
  try {
    const journal = statSync(exitFile(home, name));
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const held = statSync(`/proc/${pid}/fd/${fd}`);
        if (held.ino === journal.ino && held.dev === journal.dev) return true;
      } catch {
        // Closed meanwhile.
      }
    }
  } catch {
    // The process or the journal is gone.
  }
  return false;
}

/** Whether the journal's waiter lives, and the run it runs now (null between runs: not yet forked, or ended); null when no waiter lives. */
export function liveWaiter(home: ServiceHome, name: string): { run: { pid: number; start: number } | null } | null {
  const journal = readJournal(home, name);
  if (journal === null || 'exit' in journal || journal.waiter === null || !isWaiterOf(journal.waiter, home, name)) return null;
  return { run: runOf(journal.waiter) };
}

/** The NOT_OBSERVED outcome: a run whose end nobody reported. */
export const NOT_OBSERVED: Outcome = { code: null, signal: null, exit: 'exited (adopted: exit status not observed)' };

/**
 * The status of a first run whose waiter is gone: its exit line; NOT_OBSERVED for a journal
 * without one (the waiter killed with its group); null when there is no journal (a run an
 * earlier supervisor started, or none).
 */
export function firstExit(home: ServiceHome, name: string): Outcome | null {
  const journal = readJournal(home, name);
  if (journal === null) return null;
  return 'exit' in journal ? journal.exit : NOT_OBSERVED;
}

/** When the journal was last written: about when its run began (the waiter's line comes just before it). */
export function journalTime(home: ServiceHome, name: string): number | null {
  try {
    return statSync(exitFile(home, name)).mtimeMs;
  } catch {
    return null;
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

/** Forgets a first run's journal (its outcome recorded, or the supervisor starting runs of its own). */
export function dropExitFile(home: ServiceHome, name: string): void {
  rmSync(exitFile(home, name), { force: true });
}

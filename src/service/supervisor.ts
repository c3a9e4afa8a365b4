// A service's supervisor: a small detached process (its own session), one per service, started
// by the service CLI (supervisor-entry.ts NAME). The CLI call that starts a service starts its
// first run itself, under a waiter that hands the run's exit status over (launch.ts), and the
// supervisor adopts that run. It starts every later run itself, in a session and process group of
// its own (so a signal to the group reaches the service and its children, never the supervisor),
// with stdin from /dev/null and stdout/stderr appended to the log files, records its pid and start
// time, restarts it per its policy with exponential backoff, marks it `errored` after repeated
// fast crashes, rotates its logs, and exits when the service is to stop.
// There is no central daemon: if a supervisor dies, its service runs on (nothing of the service
// passes through the supervisor), and the next CLI call starts a new supervisor that adopts it.
import type { ChildProcess } from 'node:child_process';
import { isLivemodError } from '../errors.ts';
import { ServiceDb, type ServiceRecord } from './db.ts';
import type { ServiceHome } from './home.ts';
import { describeExit, dropExitFile, firstExit, journalTime, liveWaiter, NOT_OBSERVED, serviceEnv, withLogs, type Outcome } from './launch.ts';
import { rotateIfLarge } from './logs.ts';
import { currentBoot, identify, isRunning, signalGroup } from './proc.ts';

/** A run shorter than this is a fast crash; this many in a row mark the service errored. */
export const MIN_UPTIME_MS = 1000;
export const MAX_FAST_CRASHES = 5;
const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 10_000;
const POLL_MS = 100;
/** A multiple of POLL_MS. */
const ROTATE_EVERY_MS = 1000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function backoffMs(fastCrashes: number): number {
  return Math.min(BACKOFF_BASE_MS * 2 ** Math.max(0, fastCrashes - 1), BACKOFF_MAX_MS);
}

export async function supervise(home: ServiceHome, name: string): Promise<number> {
  const db = ServiceDb.open(home);
  const me = identify(process.pid);
  const registered = db.transaction(() => {
    const record = db.get(name);
    if (!record) return null;
    const other = record.supervisorPid !== null && record.supervisorPid !== process.pid && isRunning({ pid: record.supervisorPid, start: record.supervisorStart, boot: record.boot });
    if (other) return null;
    db.update(name, { supervisor_pid: process.pid, supervisor_start: me?.start ?? null, boot: currentBoot() });
    return record;
  });
  if (!registered) {
    db.close();
    return 0;
  }
  const release = (): void => {
    db.transaction(() => {
      if (db.get(name)?.supervisorPid === process.pid) db.update(name, { supervisor_pid: null, supervisor_start: null });
    });
  };
  try {
    await run(db, home, name, registered);
  } finally {
    release();
    db.close();
  }
  return 0;
}

async function run(db: ServiceDb, home: ServiceHome, name: string, first: ServiceRecord): Promise<void> {
  let fastCrashes = 0;
  let began = first.startedAt ?? Date.now();
  // The run going on when this supervisor started is adopted: watched until it ends. It is the
  // recorded one (the CLI's first run, or one an earlier supervisor started), or a first run the
  // CLI started but did not record (killed mid-start), found through its live waiter. Its status
  // comes from the journal its waiter writes; a run without one (an earlier supervisor's) ends
  // unobserved.
  let adoptedAny = false;
  let recorded: { pid: number; start: number } | null = first.pid !== null && first.pidStart !== null ? { pid: first.pid, start: first.pidStart } : null;
  for (;;) {
    const live = recorded !== null && isRunning({ ...recorded, boot: first.boot }) ? recorded : null;
    recorded = null;
    const waiting = live === null ? liveWaiter(home, name) : null;
    const current = live ?? waiting?.run ?? null;
    if (current !== null) {
      adoptedAny = true;
      // Found through its waiter (never recorded): it began about when the journal was written.
      const since = live === null ? journalTime(home, name) : null;
      if (since !== null) began = since;
      const desired = db.transaction(() => {
        db.update(name, { status: 'running', pid: current.pid, pid_start: current.start, boot: currentBoot(), ...(since !== null ? { started_at: Math.round(since) } : {}) });
        return db.get(name)?.desired;
      });
      // A run found through its waiter after a stop was recorded: no CLI knew its pid to signal it.
      if (!(await watchAdopted(db, name, current, first, live === null && desired !== 'running'))) return stopped(db, home, name, firstExit(home, name)?.exit ?? 'exited while adopted');
      continue;
    }
    if (db.get(name)?.desired !== 'running') return stopped(db, home, name, firstExit(home, name)?.exit ?? null);
    // A live waiter with no run: its run has just ended (its status comes next) or is not forked yet.
    if (waiting !== null) {
      await sleep(20);
      continue;
    }
    break;
  }
  let adopted = firstExit(home, name);
  if (adopted === null && adoptedAny) adopted = NOT_OBSERVED;
  for (;;) {
    let outcome = adopted;
    adopted = null;
    if (outcome === null) {
      const record = db.get(name);
      if (!record || record.desired !== 'running') return stopped(db, home, name, null);
      began = Date.now();
      outcome = await runOnce(db, home, record);
    }
    const after = db.get(name);
    if (!after || after.desired !== 'running') return stopped(db, home, name, outcome.exit);
    // An unobserved exit counts as a failure: `never` leaves it exited, the others restart it.
    const failed = outcome === NOT_OBSERVED || outcome.code !== 0 || outcome.signal !== null;
    // A first run's journal goes with the transaction that records its outcome: a concurrent
    // start, which makes a new journal in a transaction of its own, cannot come in between.
    if (after.restart === 'never' || (after.restart === 'on-failure' && !failed)) {
      db.transaction(() => {
        db.update(name, { status: 'exited', pid: null, pid_start: null, last_exit: outcome.exit, desired: 'stopped', supervisor_pid: null, supervisor_start: null });
        dropExitFile(home, name);
      });
      return;
    }
    fastCrashes = Date.now() - began < MIN_UPTIME_MS ? fastCrashes + 1 : 0;
    if (fastCrashes >= MAX_FAST_CRASHES) {
      db.transaction(() => {
        db.update(name, { status: 'errored', pid: null, pid_start: null, last_exit: `${outcome.exit}; ${MAX_FAST_CRASHES} exits within ${MIN_UPTIME_MS} ms of starting in a row`, supervisor_pid: null, supervisor_start: null });
        dropExitFile(home, name);
      });
      return;
    }
    const wait = fastCrashes === 0 ? BACKOFF_BASE_MS : backoffMs(fastCrashes);
    db.transaction(() => {
      db.update(name, { status: 'backoff', pid: null, pid_start: null, last_exit: outcome.exit, restarts: after.restarts + 1 });
      dropExitFile(home, name);
    });
    for (let waited = 0; waited < wait; waited += POLL_MS) {
      await sleep(Math.min(POLL_MS, wait - waited));
      if (db.get(name)?.desired !== 'running') return stopped(db, home, name, outcome.exit);
    }
  }
}

function stopped(db: ServiceDb, home: ServiceHome, name: string, exit: string | null): void {
  db.transaction(() => {
    if (db.get(name)) db.update(name, { status: 'stopped', pid: null, pid_start: null, ...(exit !== null ? { last_exit: exit } : {}) });
    dropExitFile(home, name);
  });
}

/** Rotation must never end the supervisor (a full disk, a file made unwritable): it says why in its own log. */
function rotateLogs(record: ServiceRecord): void {
  for (const path of new Set([record.stdout, record.stderr])) {
    try {
      rotateIfLarge(path, record.maxLogBytes);
    } catch (error) {
      process.stderr.write(`[livemod service] ${record.name}: cannot rotate ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); it keeps growing\n`);
    }
  }
}

async function runOnce(db: ServiceDb, home: ServiceHome, record: ServiceRecord): Promise<Outcome> {
  // From here on every run is this supervisor's child: no exit file of an earlier run stays to be misread.
  dropExitFile(home, record.name);
  let child: ChildProcess;
  try {
    child = withLogs(record, (out, err) => process.getBuiltinModule('node:child_process').spawn(record.command[0]!, record.command.slice(1), { cwd: record.cwd, env: serviceEnv(home, record), stdio: ['ignore', out, err], detached: true }));
  } catch (error) {
    // A log that cannot be opened (its own message), or a synchronous refusal of the spawn (E2BIG: an environment too large): a failed start.
    if (isLivemodError(error)) return { code: 1, signal: null, exit: `not started: ${error.message}` };
    return { code: 127, signal: null, exit: `not started: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` };
  }
  const ended = new Promise<Outcome>((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) => resolve({ code: 127, signal: null, exit: `not started: ${error.code ?? error.message}` }));
    child.once('exit', (code, signal) => resolve({ code, signal, exit: describeExit(code, signal) }));
  });
  const stopper = stopFor(record);
  if (child.pid !== undefined) {
    const identity = identify(child.pid);
    const desired = db.transaction(() => {
      db.update(record.name, { status: 'running', pid: child.pid!, pid_start: identity?.start ?? null, boot: currentBoot(), started_at: Date.now() });
      return db.get(record.name)?.desired;
    });
    // A stop recorded while this child was being started: the CLI read no pid of it, so this ends it now.
    stopper(child.pid, desired, true);
  }
  let ticks = 0;
  const watch = setInterval(() => {
    if (child.pid !== undefined) stopper(child.pid, db.get(record.name)?.desired, false);
    ticks += 1;
    if (ticks % (ROTATE_EVERY_MS / POLL_MS) === 0) rotateLogs(record);
  }, POLL_MS);
  try {
    return await ended;
  } finally {
    clearInterval(watch);
  }
}

/**
 * The supervisor's part in a stop of a run it watches. The CLI's stop signals the run whose pid
 * it read in the transaction that recorded the stop, and escalates to SIGKILL itself; a second
 * SIGTERM from here would cut short a service that takes a second one as "exit now". So the
 * supervisor signals at once only a run the CLI could not know of (`unknown`: recorded after the
 * stop), and otherwise only as a safety net for a stop whose CLI died: SIGTERM once the kill
 * timeout has passed since it saw the stop, SIGKILL one kill timeout after that.
 */
function stopFor(record: ServiceRecord): (pid: number, desired: string | undefined, unknown: boolean) => void {
  let noticed: number | null = null;
  let terminated: number | null = null;
  return (pid, desired, unknown) => {
    if (desired === 'running') return;
    const now = Date.now();
    noticed ??= unknown ? now - record.killTimeoutMs : now;
    if (terminated === null && now - noticed >= record.killTimeoutMs) {
      terminated = now;
      signalGroup(pid, 'SIGTERM');
    } else if (terminated !== null && now - terminated > record.killTimeoutMs) {
      signalGroup(pid, 'SIGKILL');
    }
  };
}

/**
 * Waits for a run this supervisor did not start (so cannot wait for) to end, rotating its logs
 * meanwhile; true if it ended while the service was still to run. A stop recorded meanwhile is
 * seen to as for a run of its own (stopFor); `unknown`: the run was found through its waiter
 * after the stop was recorded, so no CLI signalled it.
 */
async function watchAdopted(db: ServiceDb, name: string, run: { pid: number; start: number }, record: ServiceRecord, unknown: boolean): Promise<boolean> {
  const boot = currentBoot();
  const stopper = stopFor(record);
  let ticks = 0;
  while (isRunning({ ...run, boot })) {
    stopper(run.pid, db.get(name)?.desired, unknown);
    await sleep(POLL_MS);
    ticks += 1;
    if (ticks % (ROTATE_EVERY_MS / POLL_MS) === 0) rotateLogs(record);
  }
  // A start that came in after a stop wants it running again: the policy decides, as for a run of its own.
  return db.get(name)?.desired === 'running';
}

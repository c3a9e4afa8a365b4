// Is a recorded pid still the process we started? A pid alone is not an identity: once the
// process is gone the kernel gives the number to the next one. A process is ours when
// /proc/<pid>/stat's start time (field 22, clock ticks since boot) and the boot's id both match
// what was recorded when it started; a zombie (state Z: exited, not yet reaped) is not running.
import { existsSync, readFileSync, readdirSync } from 'node:fs';

export interface ProcessIdentity {
  readonly pid: number;
  /** Start time in clock ticks after boot. */
  readonly start: number;
  readonly boot: string;
}

let bootId: string | undefined;

export function currentBoot(): string {
  if (bootId === undefined) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootId = 'unknown';
    }
  }
  return bootId;
}

/**
 * The fields of /proc/PID/stat from field 3 (state) on, so field N is at N − 3; null when the
 * process is gone. The command name (field 2) is in parentheses and may hold spaces or ')':
 * the fields follow the last ')'.
 */
function statFields(pid: number | string): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** The process's identity now, or null when no such process runs (gone, or a zombie). */
export function identify(pid: number): ProcessIdentity | null {
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  const fields = statFields(pid);
  if (fields === null) return null;
  const state = fields[0];
  const start = Number(fields[19]);
  if (state === 'Z' || state === 'X' || !Number.isFinite(start)) return null;
  return { pid, start, boot: currentBoot() };
}

/** Whether the recorded process still runs: the same pid, start time and boot. */
export function isRunning(recorded: { pid: number | null; start: number | null; boot: string | null }): boolean {
  if (recorded.pid === null || recorded.start === null) return false;
  const now = identify(recorded.pid);
  return now !== null && now.start === recorded.start && (recorded.boot === null || now.boot === recorded.boot);
}

/**
 * The pids of a process's children: its main thread's /proc/PID/task/PID/children, or, on a
 * kernel without that file (CONFIG_PROC_CHILDREN), the processes whose parent it is. None if it is gone.
 */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !existsSync(`/proc/${pid}`)) return [];
  }
  // Field 4: the parent's pid.
  return readdirSync('/proc').filter((entry) => /^\d+$/.test(entry) && Number(statFields(entry)?.[1]) === pid).map(Number);
}

/** The process group of a process (field 5 of /proc/PID/stat), or null when it is gone. */
export function processGroup(pid: number): number | null {
  const group = Number(statFields(pid)?.[2]);
  return Number.isSafeInteger(group) && group > 0 ? group : null;
}

/**
 * A signal to the process group the service runs in — its own, as every run leads one, except a
 * first run on a system without setsid, which shares its waiter's (launch.ts) — else to the pid
 * alone; never to this process's own group. A process gone already is no error.
 */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  const group = processGroup(pid);
  try {
    if (group === null || group === processGroup(process.pid)) throw new Error('not a group of its own');
    process.kill(-group, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Gone already.
    }
  }
}

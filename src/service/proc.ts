// Is a recorded pid still the process we started? A pid alone is not an identity: once the
// process is gone the kernel gives the number to the next one. A process is ours when
// /proc/<pid>/stat's start time (field 22, clock ticks since boot) and the boot's id both match
// what was recorded when it started; a zombie (state Z: exited, not yet reaped) is not running.
import { readFileSync } from 'node:fs';

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

/** The process's identity now, or null when no such process runs (gone, or a zombie). */
export function identify(pid: number): ProcessIdentity | null {
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces or ')': fields follow the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
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

/** A signal to the process group a service leads (it is started detached), else to the pid alone; a process gone already is no error. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Gone already.
    }
  }
}

// The store's one lock: it serialises the few read-modify-write steps on origins (commit, touch,
// repair) and prune's decision of what is unreferenced. Blob writes never take it.
//
// Why a lock file and not a compare-and-swap: a commit is two renames (manifest.json, then
// state.json) that must not interleave with another commit's, and prune must not delete a blob
// between a commit's "every blob is present" check and its rename. POSIX offers no atomic
// multi-file swap and Node has no flock(), so the lock is a file created with O_EXCL (`wx`):
// creation either succeeds for exactly one process or fails with EEXIST. Holders keep it for
// milliseconds (a commit) to seconds (a prune of a large store); waiters poll with a growing
// back-off and give up after `timeoutMs` with an error naming the holder.
//
// Stale locks (a holder killed while holding it) are detected, not waited out: the file says
// `<host> <pid> <nonce> <time>`; it is stale when that pid is gone on this host, when it was
// taken before this machine booted, or past `staleMs` (pid reuse, another host sharing the
// folder). Breaking it is itself serialised by a second O_EXCL file, `lock.break`, and the
// breaker re-reads the lock under it and removes it only if it still holds the stale content:
// so a breaker never removes a lock that a live process has just taken. The one remaining race
// needs a breaker to be killed inside its few-microsecond break (its `lock.break` is then removed
// by age, and two breakers could act at once); the accepted cost is that, at worst, two commits
// overlap once, and even then each rename is atomic and readers verify hashes.
import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { uptime } from 'node:os';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { HOST_TAG, ioError, pidAlive, randomHex, sleepSync, tryUnlink } from './files.ts';

export interface LockOptions {
  /** Give up waiting for a live holder after this long. */
  readonly timeoutMs: number;
  /** A lock held longer than this is stale even if its pid looks alive (pids are reused). */
  readonly staleMs: number;
}

/** A half-written lock (its writer died between create and write) is stale after this long. */
const UNREADABLE_STALE_MS = 2000;
/** Breaking takes microseconds: a `lock.break` older than this belongs to a breaker that died. */
const BREAK_STALE_MS = 2000;
const MAX_BACKOFF_MS = 25;

interface Holder {
  readonly raw: string;
  readonly host: string | null;
  readonly pid: number | null;
  readonly at: number;
}

// Locks this thread holds, by path: a nested request (e.g. a repair inside a commit) re-enters.
const held = new Set<string>();

function readHolder(path: string): Holder | null {
  let raw: string;
  let mtimeMs: number;
  try {
    raw = readFileSync(path, 'utf8');
    mtimeMs = statSync(path).mtimeMs;
  } catch {
    return null;
  }
  const match = /^([0-9a-f]{8}) (\d{1,10}) [0-9a-f]+ (\d{1,16})\n$/.exec(raw);
  if (!match) return { raw, host: null, pid: null, at: mtimeMs };
  return { raw, host: match[1]!, pid: Number(match[2]), at: Number(match[3]) };
}

function isStale(holder: Holder, staleMs: number, now: number): boolean {
  if (holder.pid === null) return now - holder.at > UNREADABLE_STALE_MS;
  if (now - holder.at > staleMs) return true;
  if (holder.at < now - uptime() * 1000) return true;
  return holder.host === HOST_TAG && !pidAlive(holder.pid);
}

function createExclusive(path: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

function lockContent(): string {
  return `${HOST_TAG} ${process.pid} ${randomHex(6)} ${Date.now()}\n`;
}

/**
 * Removes the lock if it still holds `staleRaw`. False when it could not (another breaker at
 * work, the lock changed hands, or the unlink was refused): the caller then waits as for a live lock.
 */
function breakStale(path: string, staleRaw: string, now: number): boolean {
  const breakPath = `${path}.break`;
  let mine: boolean;
  try {
    mine = createExclusive(breakPath, lockContent());
  } catch {
    return false;
  }
  if (!mine) {
    const breaker = readHolder(breakPath);
    if (breaker && isStale(breaker, BREAK_STALE_MS, now)) tryUnlink(breakPath);
    return false;
  }
  try {
    const current = readHolder(path);
    return current !== null && current.raw === staleRaw && tryUnlink(path);
  } finally {
    tryUnlink(breakPath);
  }
}

/** Runs `fn` holding the store lock at `path` (`dir` names the store in errors). */
export function withLock<T>(dir: string, path: string, options: LockOptions, fn: () => T): T {
  if (held.has(path)) return fn();
  const content = lockContent();
  const deadline = Date.now() + options.timeoutMs;
  let delay = 1;
  for (;;) {
    let created: boolean;
    try {
      created = createExclusive(path, content);
    } catch (error) {
      throw ioError(error, dir, 'take the lock', path);
    }
    if (created) break;
    const now = Date.now();
    const holder = readHolder(path);
    if (holder === null) continue;
    if (isStale(holder, options.staleMs, now) && breakStale(path, holder.raw, now)) continue;
    if (now >= deadline) {
      const who = holder.pid === null ? 'a process' : `pid ${holder.pid}${holder.host === HOST_TAG ? '' : ' on another host'}`;
      throw new LivemodError('store', ErrorCodes.STORE_LOCKED, `the store at ${dir} stayed locked by ${who} for over ${options.timeoutMs} ms; if no livemod process is running, remove ${path}`, { dir, path, pid: holder.pid });
    }
    sleepSync(delay);
    delay = Math.min(delay * 2, MAX_BACKOFF_MS);
  }
  held.add(path);
  try {
    return fn();
  } finally {
    held.delete(path);
    // Only our own lock is removed: if it was broken as stale (we held it past staleMs) the
    // file may now be another process's.
    try {
      if (readFileSync(path, 'utf8') === content) unlinkSync(path);
    } catch {
      // Gone already.
    }
  }
}

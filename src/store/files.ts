// File primitives of the store: atomic writes through tmp/, temp names that say who wrote them,
// the clean-up of what killed writers left, and the mapping of errno to one-line errors.
//
// Atomicity: a file is written in full to tmp/ (same folder tree, so the same filesystem),
// fsync'd, then rename()d over its final name. rename is atomic on POSIX: a reader opens either
// the old file or the new one, never a partial one, and two writers of the same content-addressed
// blob just replace equal bytes with equal bytes.
import { closeSync, constants, existsSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync, type BigIntStats } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { sha256Hex } from '../snapshot/index.ts';

/**
 * A file as the kernel knows it: device, inode, size, and mtime and ctime in ns. A write in place,
 * a rename over it, a new link or a utimes call changes it (the kernel sets ctime on each; no
 * user sets it back on Linux or macOS): the store records one to know a file it checked before.
 */
function fileIdentity(stat: BigIntStats): string {
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
}

export const IDENTITY_PATTERN: RegExp = /^\d+:\d+:\d+:\d+:\d+$/;

/** Errors that say the path is not a regular file one could read (a folder, a socket, a loop of links). */
const NOT_A_FILE = new Set(['EISDIR', 'ENXIO', 'ELOOP']);

/**
 * A file's bytes and identity through one descriptor, the identity taken before and after the
 * read and kept only when both agree (a write in place meanwhile leaves none). null: no such
 * file; `bytes: null`: not a regular file of at most `max` bytes (a folder, a FIFO — opened
 * without blocking, so never waited on — a socket). Other errors are thrown as they come.
 */
export function readIdentified(path: string, max: number): { bytes: Buffer | null; identity: string | null } | null {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const before = fstatSync(fd, { bigint: true });
    if (!before.isFile() || before.size > BigInt(max)) return { bytes: null, identity: null };
    const bytes = readFileSync(fd);
    const identity = fileIdentity(before);
    return { bytes, identity: fileIdentity(fstatSync(fd, { bigint: true })) === identity ? identity : null };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    if (code !== undefined && NOT_A_FILE.has(code)) return { bytes: null, identity: null };
    throw error;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Temp files older than this are taken as abandoned even when their writer's pid looks alive (pids are reused). */
export const TMP_MAX_AGE_MS: number = 60_000;

/**
 * Identifies this host in temp and lock names: a pid only means something on the host that
 * issued it, and a cache folder may be shared (NFS, a mounted home).
 */
export const HOST_TAG: string = sha256Hex(hostname()).slice(0, 8);

// `<host>.<pid>.<counter>.<random>.tmp`: unique per process (counter) and across pid reuse (random,
// drawn once per process: a later process with the same pid draws its own, and a cold sync of
// 2,000 blobs no longer asks the system for randomness 2,000 times).
const TMP_NAME = /^([0-9a-f]{8})\.(\d{1,10})\.\d+\.[0-9a-f]+\.tmp$/;
let counter = 0;
let nonce: string | undefined;

/**
 * `bytes` random bytes as hex, for names that must not collide across processes and hosts (temp
 * files, run views, lock tokens), never for secrets: V8's Math.random, seeded per process from the
 * system's entropy, so a start does not load node:crypto for a name (6-10 ms). Names made from it
 * are created exclusively or renamed into place, so a guessed one can only fail a write.
 */
export function randomHex(bytes: number): string {
  let hex = '';
  for (let i = 0; i < bytes; i++) hex += Math.floor(Math.random() * 256).toString(16).padStart(2, '0');
  return hex;
}

export function tempName(): string {
  counter += 1;
  nonce ??= randomHex(4);
  return `${HOST_TAG}.${process.pid}.${counter}.${nonce}.tmp`;
}

/** Whether a process of this host with that pid exists (EPERM: it does, owned by someone else). */
export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A temp file is abandoned when its writer (on this host) is gone, or when it is older than maxAgeMs. */
export function abandoned(name: string, mtimeMs: number, now: number, maxAgeMs: number = TMP_MAX_AGE_MS): boolean {
  if (now - mtimeMs > maxAgeMs) return true;
  const match = TMP_NAME.exec(name);
  if (!match) return false;
  return match[1] === HOST_TAG && !pidAlive(Number(match[2]));
}

/** A folder a live writer of this host is still filling (laying out a big version can take more than a minute). */
function inProgress(name: string): boolean {
  const match = TMP_NAME.exec(name);
  return match !== null && match[1] === HOST_TAG && pidAlive(Number(match[2]));
}

/** Removes abandoned temp files; returns how many and their bytes. Races with other cleaners are harmless (ENOENT). */
export function cleanTmp(tmpDir: string, options: { readonly now?: number; readonly dryRun?: boolean; readonly maxAgeMs?: number } = {}): { removed: number; bytes: number } {
  const now = options.now ?? Date.now();
  let removed = 0;
  let bytes = 0;
  let names: string[];
  try {
    names = readdirSync(tmpDir);
  } catch {
    return { removed, bytes };
  }
  for (const name of names) {
    const path = join(tmpDir, name);
    try {
      const stat = lstatSync(path);
      if (!abandoned(name, stat.mtimeMs, now, options.maxAgeMs) || (stat.isDirectory() && inProgress(name))) continue;
      // A version being laid out is a folder here (store/program.ts); a stray one must not make tmp/ grow forever.
      if (!options.dryRun) {
        if (stat.isDirectory()) rmSync(path, { recursive: true, force: true });
        else unlinkSync(path);
      }
      removed += 1;
      bytes += stat.size;
    } catch {
      // Gone already (another process cleaned it, or its writer renamed it into place).
    }
  }
  return { removed, bytes };
}

/** Turns an fs error into the store's one-line error, naming the path and the fix. */
export function ioError(error: unknown, dir: string, action: string, path: string): LivemodError {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOTDIR' || code === 'EEXIST') {
    return new LivemodError('store', ErrorCodes.STORE_UNWRITABLE, `cannot ${action} in the store at ${dir} (${code} on ${path}); make that folder writable or point LIVEMOD_CACHE at a writable folder`, { dir, path, errno: code }, { cause: error });
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new LivemodError('store', ErrorCodes.STORE_FULL, `cannot ${action} in the store at ${dir}: the disk is full (${code}); free space, run \`livemod cache prune\`, or point LIVEMOD_CACHE elsewhere`, { dir, path, errno: code }, { cause: error });
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new LivemodError('store', ErrorCodes.STORE_IO, `cannot ${action} in the store at ${dir}: ${reason}`, { dir, path, errno: code ?? null }, { cause: error });
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.byteLength) offset += writeSync(fd, bytes, offset, bytes.byteLength - offset);
}

function writeTemp(tmpDir: string, bytes: Uint8Array, durable: boolean): string {
  const temp = join(tmpDir, tempName());
  let fd: number;
  try {
    fd = openSync(temp, 'wx', 0o644);
  } catch (error) {
    // tmp/ removed under a running process (a user cleared the cache): recreate it once.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    mkdirSync(tmpDir, { recursive: true });
    fd = openSync(temp, 'wx', 0o644);
  }
  try {
    writeAll(fd, bytes);
    if (durable) fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    tryUnlink(temp);
    throw error;
  }
  closeSync(fd);
  return temp;
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

/**
 * Writes `bytes` to `target` atomically: temp file in `tmpDir` (created exclusively), fsync
 * (when `durable`), rename. ENOENT from the rename means the target's folder is missing (`prepare` makes it), or
 * that another process's clean-up removed our temp file (a write slower than TMP_MAX_AGE_MS):
 * then the write is redone, a bounded number of times.
 */
export function writeAtomic(tmpDir: string, target: string, bytes: Uint8Array, prepare: () => void, durable = true): void {
  for (let attempt = 1; ; attempt += 1) {
    const temp = writeTemp(tmpDir, bytes, durable);
    try {
      renameSync(temp, target);
      return;
    } catch (error) {
      if (errno(error) !== 'ENOENT') {
        tryUnlink(temp);
        throw error;
      }
    }
    if (existsSync(temp)) {
      try {
        prepare();
        renameSync(temp, target);
        return;
      } catch (error) {
        tryUnlink(temp);
        if (errno(error) !== 'ENOENT' || attempt >= 3) throw error;
      }
    } else if (attempt >= 3) {
      throw Object.assign(new Error(`temp file for ${target} was removed while being written, ${attempt} times`), { code: 'ENOENT' });
    }
  }
}

/** fsync of a folder makes the renames into it durable; refused on some systems (EISDIR, EINVAL, EPERM), where it is skipped. */
export function fsyncDir(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // Best effort: durability across a power cut, not correctness (reads verify every blob).
  } finally {
    closeSync(fd);
  }
}

export function tryUnlink(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Blocks this thread for `ms`: the store is synchronous, and waits only for another process's lock. */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

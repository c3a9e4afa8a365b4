// A service's output files. The service writes to them directly (opened for appending, handed to
// it as stdout and stderr), never through its supervisor, so it keeps writing if the supervisor
// dies. Rotation is therefore copy-then-truncate: past the size limit the file is copied to
// `.1` (older copies shift to `.2` and `.3`, the oldest is dropped) and truncated, and the
// service's next append lands at the start of the emptied file. Lines written between the copy
// and the truncation (microseconds) are lost: the price of rotating without the writer's help.
import { closeSync, copyFileSync, existsSync, fstatSync, openSync, readSync, renameSync, statSync, truncateSync } from 'node:fs';
import { ErrorCodes, LivemodError } from '../errors.ts';

export const KEPT_ROTATIONS = 3;

/** Opens a log file for appending (creating it, mode 0640): the fd a service writes to. */
export function openLog(path: string, service: string): number {
  try {
    return openSync(path, 'a', 0o640);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new LivemodError('service', ErrorCodes.SERVICE_LOG, `cannot open ${path} for service ${service}'s log (${code}); make its folder exist and be writable, or pass another --stdout/--stderr`, { path, service });
  }
}

/** Rotates the file when it is over `maxBytes`; says whether it did. */
export function rotateIfLarge(path: string, maxBytes: number): boolean {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return false;
  }
  if (size <= maxBytes) return false;
  for (let index = KEPT_ROTATIONS - 1; index >= 1; index -= 1) {
    if (existsSync(`${path}.${index}`)) renameSync(`${path}.${index}`, `${path}.${index + 1}`);
  }
  copyFileSync(path, `${path}.1`);
  truncateSync(path, 0);
  return true;
}

/**
 * The last `count` lines of a file (read from its end, at most 4 MiB back), and `end`: where
 * they end, so that following the file from there (`follow`) misses no line written after they
 * were read, and repeats none. A last line still being written (no newline yet) is among them
 * only with `unfinished`; without, it is left to the follow.
 */
export function lastLines(path: string, count: number, unfinished = true): { lines: string[]; end: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { lines: [], end: 0 };
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, 4 * 1024 * 1024);
    const buffer = Buffer.alloc(length);
    const read = readSync(fd, buffer, 0, length, size - length);
    const lines = buffer.subarray(0, read).toString('utf8').split('\n');
    const last = lines.pop()!;
    let end = size - length + read;
    if (unfinished && last !== '') lines.push(last);
    else end -= Buffer.byteLength(last);
    return { lines: count <= 0 ? [] : lines.slice(-count), end };
  } finally {
    closeSync(fd);
  }
}

/**
 * Follows files as `tail -f` does, polling their sizes: calls `onLine` for each new line, from
 * `from` (where lastLines stopped), else the end each file had when following began. A file
 * that shrank was rotated: it is read from its start. Returns a function that stops following.
 */
export function follow(paths: readonly string[], onLine: (path: string, line: string) => void, intervalMs = 200, from?: ReadonlyMap<string, number>): () => void {
  const offsets = new Map(paths.map((path) => [path, from?.get(path) ?? sizeOf(path)]));
  const partial = new Map<string, string>();
  const timer = setInterval(() => {
    for (const path of paths) {
      const size = sizeOf(path);
      let offset = offsets.get(path)!;
      if (size < offset) offset = 0;
      if (size === offset) continue;
      const fd = openSync(path, 'r');
      try {
        const buffer = Buffer.alloc(size - offset);
        readSync(fd, buffer, 0, buffer.length, offset);
        const text = (partial.get(path) ?? '') + buffer.toString('utf8');
        const lines = text.split('\n');
        partial.set(path, lines.pop()!);
        for (const line of lines) onLine(path, line);
      } finally {
        closeSync(fd);
      }
      offsets.set(path, size);
    }
  }, intervalMs);
  return () => clearInterval(timer);
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

// Reading an open file whole, for the builder's module files and the store's blobs, packs and
// resolutions records.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Reads `size` bytes of an open file from its start: fewer when the file is shorter now (the caller decides whether that is truncation). */
export function readFully(fd: number, size: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  let offset = 0;
  while (offset < size) {
    const read = readSync(fd, bytes, offset, size - offset, offset);
    if (read === 0) break;
    offset += read;
  }
  return offset === size ? bytes : bytes.subarray(0, offset);
}

/**
 * Reads a file, at most `maxBytes`: its size is taken from the open file, so a file that grew
 * since it was looked at is refused, not read whole. Null when it is larger; throws when it
 * cannot be opened or read.
 */
export function readAtMost(file: string, maxBytes: number): Buffer | null {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    return size > maxBytes ? null : readFully(fd, size);
  } finally {
    closeSync(fd);
  }
}

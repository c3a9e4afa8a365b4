// Reading an open file whole, for the builder's module files and the store's blobs and packs.
import { readSync } from 'node:fs';

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

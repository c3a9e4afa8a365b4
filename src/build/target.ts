// Where a static snapshot is written: the one seam between publishSnapshot (what is written, in
// which order, and the checks on what is there already) and a place that stores files. A folder
// is one target; an S3 bucket (./s3.ts) is the other. A target only stores and reports: it never
// decides what to write or when, so the order (blobs, pack, manifest last) is kept in one place.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ErrorCodes, LivemodError } from '../errors.ts';

export interface SnapshotTarget {
  /** Where, as the user named it (a folder path, s3://bucket/prefix/): for messages and the result. */
  readonly location: string;
  /** What the target is called in a fix ("folder", "prefix"). */
  readonly noun: string;
  /** Blob writes allowed at once: a network store gains from several, a disk does not. */
  readonly parallel: number;
  /**
   * The bytes of the manifest there now, or null when there is none. A place that holds other
   * things and no manifest is refused here (OUT_INVALID): publishing would mix a snapshot into
   * someone's files.
   */
  readManifest(): Promise<Uint8Array | null>;
  /** Which of these blobs (hash → bytes) are stored already, whole: those are not written again. */
  presentBlobs(blobs: ReadonlyMap<string, Uint8Array>): Promise<ReadonlySet<string>>;
  putBlob(hash: string, bytes: Uint8Array): Promise<void>;
  /** `path` is content-addressed (pack/<sha256>.pack): one that exists with this size is kept. */
  putPack(path: string, bytes: Uint8Array): Promise<void>;
  /** Called only after every blob and the pack are stored; replaces the manifest whole. */
  putManifest(bytes: Uint8Array): Promise<void>;
  /** Releases connections; idempotent. */
  close(): Promise<void>;
}

function writeAtomic(path: string, data: Uint8Array): void {
  const temporary = `${path}.tmp-${process.pid}-${Date.now()}`;
  writeFileSync(temporary, data, { mode: 0o644 });
  renameSync(temporary, path);
}

/**
 * `mkdir -p`, one level at a time from the deepest folder that exists. Node's recursive mkdir
 * retries forever where a parent exists but refuses children (it spun on /proc/x); here the
 * first refusal is the error, at once.
 */
function makeFolders(path: string, out: string): void {
  const missing: string[] = [];
  let at = resolve(path);
  while (!statSync(at, { throwIfNoEntry: false })) {
    missing.push(at);
    const parent = dirname(at);
    if (parent === at) break;
    at = parent;
  }
  const existing = statSync(at, { throwIfNoEntry: false });
  if (existing && !existing.isDirectory()) throw new LivemodError('publish', ErrorCodes.OUT_INVALID, `cannot create ${path}: ${at} is not a folder; pass another --out`, { out });
  for (const folder of missing.reverse()) {
    try {
      mkdirSync(folder);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && statSync(folder, { throwIfNoEntry: false })?.isDirectory()) continue;
      throw new LivemodError('publish', ErrorCodes.OUT_INVALID, `cannot create the folder ${folder} (${code ?? 'error'}); pass an --out inside a folder you can write to`, { out, code }, { cause: error });
    }
  }
}

/**
 * A folder servable by any web server. Every file is written to a temporary name and renamed,
 * so a reader sees a file whole or not at all; the manifest's rename is the moment the new
 * snapshot appears.
 */
export function folderTarget(out: string): SnapshotTarget {
  let made = false;
  const write = (path: string, bytes: Uint8Array): void => {
    if (!made) {
      makeFolders(join(out, 'blobs'), out);
      makeFolders(join(out, 'pack'), out);
      made = true;
    }
    try {
      writeAtomic(join(out, path), bytes);
    } catch (error) {
      throw new LivemodError('publish', ErrorCodes.OUT_INVALID, `cannot write the snapshot to ${out}: ${(error as Error).message}; check the folder's permissions and free space`, { out }, { cause: error });
    }
  };
  const sameSize = (path: string, size: number): boolean => statSync(join(out, path), { throwIfNoEntry: false })?.size === size;
  return {
    location: out,
    noun: 'folder',
    parallel: 1,
    async readManifest() {
      const kind = statSync(out, { throwIfNoEntry: false });
      if (kind && !kind.isDirectory()) throw new LivemodError('publish', ErrorCodes.OUT_INVALID, `${out} exists and is not a folder; pass a folder (new or holding a previous snapshot) to --out`, { out });
      const path = join(out, 'manifest.json');
      if (existsSync(path)) return readFileSync(path);
      if (kind && readdirSync(out).some((name) => !['blobs', 'pack'].includes(name))) {
        throw new LivemodError('publish', ErrorCodes.OUT_INVALID, `${out} is not empty and holds no livemod manifest; publish into an empty folder or a previous snapshot`, { out });
      }
      return null;
    },
    async presentBlobs(blobs) {
      const present = new Set<string>();
      for (const [hash, bytes] of blobs) if (sameSize(join('blobs', hash), bytes.byteLength)) present.add(hash);
      return present;
    },
    async putBlob(hash, bytes) {
      write(join('blobs', hash), bytes);
    },
    async putPack(path, bytes) {
      if (!sameSize(path, bytes.byteLength)) write(path, bytes);
    },
    async putManifest(bytes) {
      write('manifest.json', bytes);
    },
    async close() {},
  };
}

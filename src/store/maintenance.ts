// Whole-store operations: list what is kept, verify every byte, prune what no origin needs.
// They walk the folders, so they are for commands and tools, not for a program's start-up path.
import { lstatSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { isHash, MAX_MANIFEST_BYTES, sha256Hex } from '../snapshot/index.ts';
import { dropFoldersLinking, pruneProgram, type ProgramPrune } from './program.ts';
import { pruneCodeCache } from './code-cache.ts';
import { forgetRunPackChecks, pruneRunPacks } from './run-pack.ts';
import { pruneBuilds } from './builds.ts';
import { listPacks, removePack } from './packs.ts';
import { inspectBlob } from './blobs.ts';
import type { StoreContext } from './context.ts';
import { cleanTmp } from './files.ts';
import { LAYOUT, ORIGIN_ID_PATTERN, normaliseOrigin, originId } from './location.ts';
import { absentBlobs, loadFolder, removeOriginIf } from './origins.ts';
import { parseStoredManifest, stateOrigin, type StoredManifest } from './records.ts';

export interface OriginSummary {
  readonly origin: string;
  readonly version: number;
  /** The app its manifest is a snapshot of. */
  readonly name: string;
  readonly keyId: string;
  readonly acceptedAt: number;
  readonly checkedAt: number;
  readonly modules: number;
  /** Distinct blobs (code and maps) the manifest references. */
  readonly blobs: number;
  /** Their total size: what a cold start of this origin reads. */
  readonly bytesNeeded: number;
  /** How many of them the store lacks (the next sync fetches them). */
  readonly missing: number;
}

export interface StoreListing {
  readonly origins: OriginSummary[];
  /** Blobs (files and packed) and their total size on disk. */
  readonly blobs: number;
  readonly bytes: number;
  /** Origin folders whose record cannot be read (`verify()` removes them). */
  readonly damaged: number;
}

export interface VerifyReport {
  /** Blobs re-hashed (files and packed). */
  readonly checked: number;
  /** Store-relative paths found bad and removed: blobs, stray files, origin records. */
  readonly corrupt: string[];
  /** Origins whose torn or unreadable state was rebuilt from their manifest. */
  readonly repaired: string[];
  /** Origins whose manifest names blobs the store lacks (the next sync refetches them). */
  readonly incomplete: { readonly origin: string; readonly missing: string[] }[];
}

export interface PruneOptions {
  /** Count what would go, remove nothing. */
  readonly dryRun?: boolean;
  /**
   * Blobs younger than this are kept even if no stored manifest needs them: a sync in another
   * process may have just written them for a manifest it has not committed yet (10 min).
   */
  readonly graceMs?: number;
}

export interface PruneReport {
  /** Files removed (or, with dryRun, that would be): unneeded blobs, stray files, abandoned temp files. */
  readonly removed: number;
  readonly freedBytes: number;
  /** Blobs kept. */
  readonly kept: number;
  /** Of those, kept only for being younger than the grace period. */
  readonly young: number;
  readonly dryRun: boolean;
  /** Laid-out version and package folders (store/program.ts) removed and kept. */
  readonly folders: ProgramPrune;
  /** V8 code cache entries and run packs removed (of blobs or manifests not kept, or of another V8). */
  readonly codeCache: number;
  /** Local build cache files (transforms, build records) removed for being idle a month. */
  readonly builds: number;
}

export const DEFAULT_PRUNE_GRACE_MS: number = 10 * 60_000;

interface BlobFile {
  /** Store-relative, posix. */
  readonly rel: string;
  readonly path: string;
  /** null: not a blob (bad name, wrong folder, not a file). */
  readonly hash: string | null;
  readonly size: number;
  readonly mtimeMs: number;
}

function entries(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function* blobFiles(context: StoreContext): Generator<BlobFile> {
  for (const prefix of entries(context.blobs)) {
    const folder = join(context.blobs, prefix);
    const stat = lstatSync(folder, { throwIfNoEntry: false });
    if (!stat) continue;
    if (!stat.isDirectory() || !/^[0-9a-f]{2}$/.test(prefix)) {
      yield { rel: `${LAYOUT.blobs}/${prefix}`, path: folder, hash: null, size: stat.size, mtimeMs: stat.mtimeMs };
      continue;
    }
    for (const name of entries(folder)) {
      const path = join(folder, name);
      const file = lstatSync(path, { throwIfNoEntry: false });
      if (!file) continue;
      const hash = file.isFile() && isHash(name) && name.startsWith(prefix) ? name : null;
      yield { rel: `${LAYOUT.blobs}/${prefix}/${name}`, path, hash, size: file.size, mtimeMs: file.mtimeMs };
    }
  }
}

function removePath(path: string): boolean {
  try {
    rmSync(path, { recursive: true, force: true });
    return true;
  } catch {
    return false;
  }
}

/** Origin folders with the origin their state names, if it names one that maps to that folder. */
function originFolders(context: StoreContext): { id: string; folder: string; origin: string | null }[] {
  return entries(context.origins).map((id) => {
    const folder = join(context.origins, id);
    let origin: string | null = null;
    if (ORIGIN_ID_PATTERN.test(id)) {
      try {
        const named = stateOrigin(readFileSync(join(folder, LAYOUT.state)));
        if (named !== null && normaliseOrigin(named) === named && originId(named) === id) origin = named;
      } catch {
        origin = null;
      }
    }
    return { id, folder, origin };
  });
}

function parseQuietly(bytes: Buffer, source: string): StoredManifest | null {
  try {
    return parseStoredManifest(bytes, source);
  } catch {
    return null;
  }
}

export function listStore(context: StoreContext): StoreListing {
  let blobs = 0;
  let bytes = 0;
  for (const file of blobFiles(context)) {
    if (file.hash === null) continue;
    blobs += 1;
    bytes += file.size;
  }
  for (const pack of listPacks(context)) {
    if (pack.blobs === null) continue;
    blobs += pack.blobs.size;
    bytes += pack.size;
  }
  const origins: OriginSummary[] = [];
  let damaged = 0;
  for (const { origin } of originFolders(context)) {
    const stored = origin === null ? null : loadFolder(context, origin);
    const parsed = stored && parseQuietly(stored.manifestBytes, stored.state.origin);
    if (!stored || !parsed) {
      damaged += 1;
      continue;
    }
    const { state } = stored;
    origins.push({
      origin: state.origin,
      version: state.version,
      name: parsed.name,
      keyId: state.keyId,
      acceptedAt: state.acceptedAt,
      checkedAt: state.checkedAt,
      modules: parsed.modules,
      blobs: parsed.blobs.length,
      bytesNeeded: parsed.blobs.reduce((total, ref) => total + ref.size, 0),
      missing: absentBlobs(context, parsed).length,
    });
  }
  origins.sort((a, b) => (a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0));
  return { origins, blobs, bytes, damaged };
}

export function verifyStore(context: StoreContext): VerifyReport {
  let checked = 0;
  const corrupt: string[] = [];
  const bad = new Set<string>();
  for (const file of blobFiles(context)) {
    if (file.hash === null) {
      if (removePath(file.path)) corrupt.push(file.rel);
      continue;
    }
    checked += 1;
    const before = lstatSync(file.path, { throwIfNoEntry: false });
    const result = inspectBlob(context, file.hash);
    if (typeof result === 'string' && result !== 'absent') {
      corrupt.push(file.rel);
      if (before) bad.add(`${before.dev}:${before.ino}`);
    }
  }
  // A pack with one bad blob goes whole (its blobs are refetched when needed); no folder links into a pack.
  for (const pack of listPacks(context)) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(pack.path);
    } catch {
      continue;
    }
    const blobs = pack.blobs;
    if (blobs !== null) checked += blobs.size;
    const good =
      blobs !== null &&
      [...blobs].every(([hash, [offset, size]]) => {
        const blob = bytes.subarray(offset, offset + size);
        return blob.byteLength === size && sha256Hex(blob) === hash;
      });
    if (!good) {
      removePack(context, pack.name, pack.ino);
      corrupt.push(`packs/${pack.name}`);
    }
  }
  // A laid-out file is a hard link to its blob: the folders holding a bad one go too (the next run lays them out again).
  if (bad.size > 0) for (const rel of dropFoldersLinking(context, bad)) corrupt.push(rel);
  const repaired: string[] = [];
  const incomplete: { origin: string; missing: string[] }[] = [];
  for (const { id, folder, origin } of originFolders(context)) {
    const rel = `${LAYOUT.origins}/${id}`;
    if (origin === null) {
      // Without a readable state the folder cannot be tied to an origin (its name is a hash).
      if (removePath(folder)) corrupt.push(rel);
      continue;
    }
    const { result: stored, events: fresh } = context.collect(() => loadFolder(context, origin, true));
    if (fresh.some((event) => event.type === 'origin-repaired')) repaired.push(origin);
    if (!stored) {
      if (fresh.some((event) => event.type === 'origin-removed')) corrupt.push(rel);
      continue;
    }
    const parsed = parseQuietly(stored.manifestBytes, origin);
    if (!parsed) {
      if (removeOriginIf(context, origin, stored.state.manifestHash, 'manifest.json is malformed')) corrupt.push(`${rel}/${LAYOUT.manifest}`);
      continue;
    }
    const missing = absentBlobs(context, parsed);
    if (missing.length > 0) incomplete.push({ origin, missing });
  }
  for (const stray of entries(context.origins)) {
    const stat = statSync(join(context.origins, stray), { throwIfNoEntry: false });
    if (stat && !stat.isDirectory() && removePath(join(context.origins, stray))) corrupt.push(`${LAYOUT.origins}/${stray}`);
  }
  // Run packs are hashed when a start reads them, once per file (run-pack.ts): their records go,
  // so the next start that reads each hashes it again.
  forgetRunPackChecks(context);
  return { checked, corrupt, repaired, incomplete };
}

export function pruneStore(context: StoreContext, options: PruneOptions = {}): PruneReport {
  const dryRun = options.dryRun === true;
  const graceMs = options.graceMs ?? DEFAULT_PRUNE_GRACE_MS;
  if (!Number.isFinite(graceMs) || graceMs < 0) throw new RangeError(`prune: graceMs must be a duration ≥ 0 in ms, not ${graceMs}`);
  const run = (): PruneReport => {
    // Read from manifest.json itself, not through the state: after a commit torn between its
    // two renames the manifest is the newer one, and it is what a repair will accept.
    const keep = new Set<string>();
    const trees = new Set<string>();
    for (const { folder } of originFolders(context)) {
      let bytes: Buffer;
      try {
        const path = join(folder, LAYOUT.manifest);
        if (statSync(path).size > MAX_MANIFEST_BYTES) continue;
        bytes = readFileSync(path);
      } catch {
        continue;
      }
      const parsed = parseQuietly(bytes, folder);
      for (const ref of parsed?.blobs ?? []) keep.add(ref.hash);
      if (parsed?.layout) trees.add(parsed.layout.tree);
      // The signed bytes as a blob: what workers and children of a running program open it by.
      keep.add(sha256Hex(bytes));
    }
    const now = Date.now();
    let removed = 0;
    let freedBytes = 0;
    let kept = 0;
    let young = 0;
    for (const file of blobFiles(context)) {
      if (file.hash !== null && keep.has(file.hash)) {
        kept += 1;
        continue;
      }
      if (file.hash !== null && now - file.mtimeMs < graceMs) {
        kept += 1;
        young += 1;
        continue;
      }
      if (!dryRun) {
        try {
          if (file.hash === null) rmSync(file.path, { recursive: true, force: true });
          else unlinkSync(file.path);
        } catch {
          continue;
        }
      }
      removed += 1;
      freedBytes += file.size;
    }
    // A pack stays whole while any manifest needs a blob of it.
    for (const pack of listPacks(context)) {
      // A pack whose header cannot be read holds nothing usable: it goes like a stray file.
      const count = pack.blobs?.size ?? 1;
      if (pack.blobs !== null && [...pack.blobs.keys()].some((hash) => keep.has(hash))) {
        kept += count;
        continue;
      }
      if (now - pack.mtimeMs < graceMs) {
        kept += count;
        young += count;
        continue;
      }
      if (!dryRun) removePack(context, pack.name, pack.ino);
      removed += count;
      freedBytes += pack.size;
    }
    const tmp = cleanTmp(context.tmp, { dryRun });
    const program = pruneProgram(context, trees, { graceMs, dryRun });
    const codeEntries = pruneCodeCache(context, keep, dryRun) + pruneRunPacks(context, dryRun);
    return { removed: removed + tmp.removed, freedBytes: freedBytes + tmp.bytes, kept, young, dryRun, folders: program, codeCache: codeEntries, builds: pruneBuilds(context, dryRun) };
  };
  // A dry run changes nothing, so it need not hold up other processes' commits.
  return dryRun ? run() : context.locked(run);
}

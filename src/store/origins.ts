// Per-origin records: the last accepted manifest's exact bytes (manifest.json) and its state
// (state.json). A commit writes the manifest, then the state, both atomically, under the store
// lock; state.json names the sha256 of manifest.json, so a reader can tell a consistent pair from
// a commit torn between its two renames (a writer killed there) and repair it.
//
// A start that had the stored manifest confirmed (a 304) records, beside the state, which file it
// opened with which pinned key (`checked`, below). A later start that finds the same file there
// (same device, inode, size, mtime and ctime: on Linux and macOS the kernel moves ctime on every
// write, link, rename and utimes, and no user can set it back) re-opens it without hashing it or
// checking its signature again, which spares a warm start node:crypto (docs/protocol.md, "Client
// store", where the limits of this are said).
import { existsSync, lstatSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { MAX_MANIFEST_BYTES, PUBLIC_KEY_PATTERN, sha256Hex, shortHash, type Manifest } from '../snapshot/index.ts';
import { quoted } from '../text.ts';
import type { StoreContext } from './context.ts';
import { IDENTITY_PATTERN, fsyncDir, ioError, readIdentified, writeAtomic } from './files.ts';
import { LAYOUT, blobPath, normaliseOrigin, originId, originPath } from './location.ts';
import { packedBlob, packPresent, type PackedBlob } from './packs.ts';
import { MAX_ETAG_LENGTH, MAX_STATE_BYTES, parseState, parseStoredManifest, serialiseState, type OriginState, type StoredManifest } from './records.ts';

export interface StoredOrigin {
  readonly state: OriginState;
  /** The manifest's exact bytes as the host served them: re-open them with the pinned key before use. */
  readonly manifestBytes: Buffer;
  /**
   * The pinned key (`ed25519:…`) that opened these very bytes before, when the file read is the
   * one a start opened with it and had confirmed, unchanged since; else null. With that key the
   * bytes need no second signature check (reopenManifest); with any other, they do.
   */
  readonly openedWith: string | null;
  /** The manifest file's identity as read (device, inode, size, mtime, ctime), for touchOrigin's `opened`. */
  readonly identity: string | null;
  /** With `openedWith`: where the `packages` value lies in the signed part, as recorded then (packagesRange), or null. */
  readonly packagesAt: readonly [number, number] | null;
}

export interface CommitInput {
  /** The manifest's exact bytes, as fetched (the signature covers them). */
  readonly bytes: Uint8Array;
  /** Those bytes, opened and verified by the caller (signature, structure, expiry). */
  readonly manifest: Manifest;
  /** The response's ETag, or null. */
  readonly etag: string | null;
  /**
   * The blobs that must be stored for the commit (a client fetches only what runs: the modules
   * the entry reaches, the files and packages); default: every blob the manifest references.
   */
  readonly needed?: readonly string[];
}

export interface TouchFields {
  /** When the host confirmed the manifest unchanged (a 304), in ms since the epoch. */
  readonly checkedAt: number;
  /** A new ETag the host sent with the 304, if any. */
  readonly etag?: string | null;
  /** The version the caller checked: if the store holds another one by now, nothing changes. */
  readonly version?: number;
  /**
   * The record the caller read (readOrigin) and had confirmed: a confirmation alone is then
   * written for its manifest without reading the record again (a 1,700-file snapshot's manifest
   * is 200 KB, read and hashed on every warm start). It names that manifest's hash, so it never
   * counts for a newer one another process committed meanwhile.
   */
  readonly read?: OriginState;
  /**
   * The caller opened the manifest of `read` (its signature checked, or re-opened as `openedWith`
   * allows) with this pinned key, from the file of this identity: recorded with the confirmation,
   * so the next start can re-open that file without a second check.
   */
  readonly opened?: { readonly key: string; readonly identity: string; readonly packages?: readonly [number, number] | null };
}

interface Files {
  readonly folder: string;
  readonly stateBytes: Buffer | null;
  readonly manifestBytes: Buffer | null;
  /** The identity of the manifest file those bytes were read from (readIdentified in files.ts). */
  readonly identity: string | null;
}

/** A record file's bytes and identity (readIdentified); anything but a regular file of at most `max` bytes reads as empty, which never parses, so it is repaired or removed. */
function readOptional(context: StoreContext, path: string, max: number): { bytes: Buffer; identity: string | null } | null {
  try {
    const read = readIdentified(path, max);
    return read && { bytes: read.bytes ?? Buffer.alloc(0), identity: read.identity };
  } catch (error) {
    throw ioError(error, context.dir, 'read an origin record', path);
  }
}

function readFiles(context: StoreContext, folder: string): Files {
  // state.json first: a commit renames the manifest first, so a consistent state read before
  // the manifest can only be matched by its own manifest or a newer one (a mismatch: retried under the lock).
  const stateBytes = readOptional(context, join(folder, LAYOUT.state), MAX_STATE_BYTES)?.bytes ?? null;
  const manifest = readOptional(context, join(folder, LAYOUT.manifest), MAX_MANIFEST_BYTES);
  return { folder, stateBytes, manifestBytes: manifest?.bytes ?? null, identity: manifest?.identity ?? null };
}

/**
 * A pair whose manifest hashes to what the state names; the hash is not computed again when the
 * confirmation names that manifest and this very file (so it was hashed, and verified, before).
 */
function consistent(files: Files, origin: string, confirmation: Confirmation | null): StoredOrigin | null {
  if (!files.stateBytes || !files.manifestBytes) return null;
  const state = parseState(files.stateBytes, origin);
  if (!state) return null;
  const known = confirmation !== null && confirmation.hash === state.manifestHash && confirmation.identity !== null && confirmation.identity === files.identity;
  if (!known && sha256Hex(files.manifestBytes) !== state.manifestHash) return null;
  return { state, manifestBytes: files.manifestBytes, openedWith: known ? confirmation.key : null, identity: files.identity, packagesAt: known ? confirmation.packages : null };
}

function removeOriginFolder(context: StoreContext, folder: string, origin: string, reason: string): void {
  try {
    rmSync(folder, { recursive: true, force: true });
  } catch (error) {
    throw ioError(error, context.dir, `remove the damaged record of ${origin}`, folder);
  }
  context.record({ type: 'origin-removed', origin, reason });
}

function writeState(context: StoreContext, folder: string, state: OriginState): void {
  const path = join(folder, LAYOUT.state);
  try {
    writeAtomic(context.tmp, path, serialiseState(state), () => mkdirSync(folder, { recursive: true }));
  } catch (error) {
    throw ioError(error, context.dir, `record the state of ${state.origin}`, path);
  }
}

/**
 * Under the lock: a pair that is still inconsistent is not a commit in progress but one torn by
 * a killed writer, or damage. A manifest that parses and does not go below the recorded version
 * becomes the state (it was written only after every check a commit makes); this keeps the
 * origin's rollback floor, which dropping the record would lose. Anything else is removed.
 */
function repair(context: StoreContext, files: Files, origin: string): StoredOrigin | null {
  const state = files.stateBytes ? parseState(files.stateBytes, origin) : null;
  if (files.manifestBytes && files.manifestBytes.length > 0) {
    let parsed: StoredManifest | null = null;
    try {
      parsed = parseStoredManifest(files.manifestBytes, `${origin} (stored)`);
    } catch {
      parsed = null;
    }
    if (parsed && parsed.version >= (state?.version ?? 0)) {
      const same = state?.version === parsed.version;
      let mtime = Date.now();
      try {
        mtime = Math.floor(lstatSync(join(files.folder, LAYOUT.manifest)).mtimeMs);
      } catch {
        // Keep now.
      }
      const repaired: OriginState = Object.freeze({
        origin,
        version: parsed.version,
        name: parsed.name,
        // The recorded ETag was sent with other bytes (the pair did not match), so the next fetch is unconditional.
        etag: null,
        keyId: parsed.keyId,
        manifestHash: sha256Hex(files.manifestBytes),
        acceptedAt: same ? state.acceptedAt : mtime,
        checkedAt: state?.checkedAt ?? mtime,
        ...(parsed.layout ? { layout: parsed.layout } : {}),
      });
      writeState(context, files.folder, repaired);
      const reason = state ? `state.json named another manifest (version ${state.version})` : 'state.json was missing or unreadable';
      context.record({ type: 'origin-repaired', origin, version: parsed.version, reason });
      return { state: repaired, manifestBytes: files.manifestBytes, openedWith: null, identity: files.identity, packagesAt: null };
    }
  }
  if (files.stateBytes === null && files.manifestBytes === null) return null;
  removeOriginFolder(context, files.folder, origin, files.manifestBytes ? 'manifest.json is unreadable or older than its state' : 'manifest.json is missing');
  return null;
}

/** The consistent record of a normalised origin, repairing a torn one; caller may hold the lock. */
/**
 * The last confirmation of a 304, kept beside the state (`checked`: "<ms> <manifest sha256>",
 * then, from a start that opened that manifest, " <file identity> <pinned key> [<start>-<end>
 * of its packages value]"): written
 * without the lock or an fsync, since losing one only makes the cache look older and the next
 * start check the signature again. It counts only for the manifest it names, so a commit of a
 * newer version makes it stale, and its identity only for the file it names.
 */
const CHECKED = 'checked';

interface Confirmation {
  readonly at: number;
  readonly hash: string;
  readonly identity: string | null;
  readonly key: string | null;
  readonly packages: readonly [number, number] | null;
}

const RANGE = /^(\d{1,15})-(\d{1,15})$/;

function range(text: string | undefined): [number, number] | null {
  const match = text === undefined ? null : RANGE.exec(text);
  return match ? [Number(match[1]), Number(match[2])] : null;
}

function readConfirmation(folder: string): Confirmation | null {
  let bytes: Buffer | null | undefined;
  try {
    // Through readIdentified, as the manifest: a FIFO or a huge file in its place is no confirmation.
    bytes = readIdentified(join(folder, CHECKED), 1024)?.bytes;
  } catch {
    return null;
  }
  if (!bytes) return null;
  const [at, hash, identity, key, packages] = bytes.toString('latin1').split(' ');
  const time = Number(at);
  if (!Number.isSafeInteger(time) || hash === undefined) return null;
  const opened = identity !== undefined && key !== undefined && IDENTITY_PATTERN.test(identity) && PUBLIC_KEY_PATTERN.test(key);
  return { at: time, hash, identity: opened ? identity : null, key: opened ? key : null, packages: opened ? range(packages) : null };
}

function withConfirmation(stored: StoredOrigin, confirmation: Confirmation | null): StoredOrigin {
  const checkedAt = confirmation?.hash === stored.state.manifestHash ? Math.max(stored.state.checkedAt, confirmation.at) : stored.state.checkedAt;
  return checkedAt === stored.state.checkedAt ? stored : { ...stored, state: Object.freeze({ ...stored.state, checkedAt }) };
}

/** `rehash`: hash the manifest even when the confirmation knows its file (verify's whole-store check). */
function load(context: StoreContext, origin: string, rehash = false): StoredOrigin | null {
  const folder = originPath(context.dir, originId(origin));
  const files = readFiles(context, folder);
  if (files.stateBytes === null && files.manifestBytes === null) return null;
  const confirmation = readConfirmation(folder);
  const found = consistent(files, origin, rehash ? null : confirmation);
  if (found) return withConfirmation(found, confirmation);
  const repaired = context.locked(() => {
    const again = readFiles(context, folder);
    return consistent(again, origin, null) ?? repair(context, again, origin);
  });
  return repaired && withConfirmation(repaired, readConfirmation(folder));
}

export function readOrigin(context: StoreContext, origin: string | URL): StoredOrigin | null {
  return load(context, normaliseOrigin(origin));
}

/** The stored blobs a manifest needs that are absent or the wrong size. */
export function absentBlobs(context: StoreContext, parsed: StoredManifest): string[] {
  const missing: string[] = [];
  // Each pack relied on is looked at once: another process may have removed it since this one indexed it.
  const present = new Map<string, boolean>();
  const inPresentPack = (packed: PackedBlob | undefined, size: number): boolean => {
    if (packed?.size !== size) return false;
    let there = present.get(packed.pack);
    if (there === undefined) present.set(packed.pack, (there = packPresent(context, packed.pack)));
    return there;
  };
  for (const ref of parsed.blobs) {
    // A blob the packs this process knows hold needs no look for a file (a failed stat per
    // packed blob: 29 ms of a 2,000-module cold start's commit); the pack's presence is checked.
    if (inPresentPack(packedBlob(context, ref.hash, true), ref.size)) continue;
    const stat = statSync(blobPath(context.dir, ref.hash), { throwIfNoEntry: false });
    if (stat?.isFile() && stat.size === ref.size) continue;
    // Not a blob file: maybe in a pack written since (packs.ts).
    if (stat === undefined && inPresentPack(packedBlob(context, ref.hash), ref.size)) continue;
    missing.push(ref.hash);
  }
  return missing;
}

function wrongApp(origin: string, name: string, recorded: string, dir: string): LivemodError {
  return new LivemodError('store', ErrorCodes.WRONG_APP, `manifest for ${origin} is the snapshot of app ${quoted(name)}, but the store at ${dir} accepted app ${quoted(recorded)} from that origin; refused: a host serving another app's snapshot there is an attack or a mistake (if the publisher really moved another app there, run \`livemod cache forget ${origin}\`)`, { origin, name, recorded });
}

export function commitManifest(context: StoreContext, originInput: string | URL, input: CommitInput): OriginState {
  const origin = normaliseOrigin(originInput);
  const { bytes, manifest } = input;
  // An ETag is an opaque hint for the next conditional fetch: one that is not a sane string is dropped, not stored.
  const etag = typeof input.etag === 'string' && input.etag.length <= MAX_ETAG_LENGTH ? input.etag : null;
  if (!(bytes instanceof Uint8Array)) throw new TypeError('commitManifest: bytes must be the manifest bytes as fetched (a Uint8Array)');
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new LivemodError('store', ErrorCodes.TOO_LARGE, `manifest for ${origin} is ${bytes.byteLength} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`, { origin });
  }
  // What prune keeps is read from the stored bytes, so the completeness check reads them too.
  const parsed = parseStoredManifest(bytes, `${origin} (to commit)`);
  if (parsed.version !== manifest.version || parsed.keyId !== manifest.keyId || parsed.name !== manifest.name) {
    throw new LivemodError('store', ErrorCodes.USAGE, `commitManifest for ${origin}: the bytes hold version ${parsed.version} (key ${parsed.keyId}) but the manifest given is version ${manifest.version} (key ${manifest.keyId}); pass the bytes the manifest was opened from`, { origin });
  }
  const manifestHash = sha256Hex(bytes);
  const folder = originPath(context.dir, originId(origin));
  return context.locked(() => {
    const current = load(context, origin);
    if (current && parsed.version < current.state.version) {
      throw new LivemodError('store', ErrorCodes.ROLLBACK, `manifest version ${parsed.version} for ${origin} is older than version ${current.state.version} already accepted in the store at ${context.dir}; refused as a rollback (another process may have just synced the newer one: read it with readOrigin)`, { origin, version: parsed.version, storedVersion: current.state.version });
    }
    if (current?.state.name && current.state.name !== parsed.name) {
      throw wrongApp(origin, parsed.name, current.state.name, context.dir);
    }
    const needed = input.needed ? new Set(input.needed) : null;
    const missing = absentBlobs(context, needed ? { ...parsed, blobs: parsed.blobs.filter((ref) => needed.has(ref.hash)) } : parsed);
    if (missing.length > 0) {
      throw new LivemodError('store', ErrorCodes.STORE_INCOMPLETE, `manifest version ${parsed.version} for ${origin} needs ${missing.length} blob(s) the store at ${context.dir} lacks (first ${shortHash(missing[0]!)}); write every blob it references (missingBlobs lists them) before committing it`, { origin, version: parsed.version, missing });
    }
    const now = Date.now();
    const same = current?.state.manifestHash === manifestHash;
    if (!same) {
      const path = join(folder, LAYOUT.manifest);
      try {
        mkdirSync(folder, { recursive: true });
        writeAtomic(context.tmp, path, bytes, () => mkdirSync(folder, { recursive: true }));
      } catch (error) {
        throw ioError(error, context.dir, `record the manifest of ${origin}`, path);
      }
    }
    const state: OriginState = Object.freeze({
      origin,
      version: parsed.version,
      name: parsed.name,
      etag,
      keyId: parsed.keyId,
      manifestHash,
      acceptedAt: same && current ? current.state.acceptedAt : now,
      checkedAt: now,
      ...(parsed.layout ? { layout: parsed.layout } : {}),
    });
    writeState(context, folder, state);
    fsyncDir(folder);
    return state;
  });
}

export function touchOrigin(context: StoreContext, originInput: string | URL, fields: TouchFields): OriginState | null {
  const origin = normaliseOrigin(originInput);
  if (typeof fields?.checkedAt !== 'number' || !Number.isFinite(fields.checkedAt)) throw new TypeError('touchOrigin: checkedAt must be a time in ms since the epoch');
  // A confirmation alone (the common 304): one small file beside the state, no lock, no fsync.
  if (fields.etag === undefined) {
    const read = fields.read?.origin === origin ? fields.read : undefined;
    const current = read ?? load(context, origin)?.state;
    if (!current) return null;
    if (fields.version !== undefined && fields.version !== current.version) return current;
    const checkedAt = Math.max(current.checkedAt, Math.floor(fields.checkedAt));
    const folder = originPath(context.dir, originId(origin));
    const given = fields.opened;
    const packages = given?.packages && given.packages.every((offset) => Number.isSafeInteger(offset) && offset >= 0) ? ` ${given.packages[0]}-${given.packages[1]}` : '';
    const opened = read && given && IDENTITY_PATTERN.test(given.identity) && PUBLIC_KEY_PATTERN.test(given.key) ? ` ${given.identity} ${given.key}${packages}` : '';
    try {
      writeAtomic(context.tmp, join(folder, CHECKED), Buffer.from(`${checkedAt} ${current.manifestHash}${opened}`, 'latin1'), () => undefined, false);
    } catch (error) {
      // The record read was removed since (cache forget, a verify, another process's repair):
      // there is nothing to confirm, as when a read finds no record.
      if (read && (error as NodeJS.ErrnoException).code === 'ENOENT' && !existsSync(folder)) return null;
      throw ioError(error, context.dir, 'record the confirmation', join(folder, CHECKED));
    }
    return Object.freeze({ ...current, checkedAt });
  }
  return context.locked(() => {
    const current = load(context, origin);
    if (!current) return null;
    if (fields.version !== undefined && fields.version !== current.state.version) return current.state;
    const next: OriginState = Object.freeze({
      ...current.state,
      checkedAt: Math.max(current.state.checkedAt, Math.floor(fields.checkedAt)),
      etag: fields.etag === undefined ? current.state.etag : typeof fields.etag === 'string' && fields.etag.length <= MAX_ETAG_LENGTH ? fields.etag : null,
    });
    writeState(context, originPath(context.dir, originId(origin)), next);
    return next;
  });
}

/** For maintenance: the consistent record in an origin folder, whose origin is read from its state. */
export function loadFolder(context: StoreContext, origin: string, rehash = false): StoredOrigin | null {
  return load(context, origin, rehash);
}

/** Removes an origin's record if it still holds the manifest with `manifestHash` (under the lock). */
export function removeOriginIf(context: StoreContext, origin: string, manifestHash: string, reason: string): boolean {
  return context.locked(() => {
    const current = load(context, origin);
    if (!current || current.state.manifestHash !== manifestHash) return false;
    removeOriginFolder(context, originPath(context.dir, originId(origin)), origin, reason);
    return true;
  });
}

/** Removes an origin's record, whatever it holds (under the lock); true if there was one. */
export function forgetOrigin(context: StoreContext, originInput: string | URL): boolean {
  const origin = normaliseOrigin(originInput);
  return context.locked(() => {
    const folder = originPath(context.dir, originId(origin));
    if (!statSync(folder, { throwIfNoEntry: false })) return false;
    removeOriginFolder(context, folder, origin, 'forgotten on request');
    return true;
  });
}

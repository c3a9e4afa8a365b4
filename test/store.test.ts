// The client store against real folders and real processes: verified reads, atomic writes,
// commits refused when unsafe, repair of torn records, prune, and many writers at once.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, watch, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { manifestBlobs, sha256Hex } from '../src/snapshot/index.ts';
import { STORE_CHANNEL, defaultStoreDir, normaliseOrigin, openStore, originId, type Store } from '../src/store/index.ts';
import { tempDir } from './helpers/fs.ts';
import { blobSnapshot, buildVersions, writeFixture, type Versions } from './helpers/store-fixtures.ts';

const HELPERS = fileURLToPath(new URL('./helpers/', import.meta.url));
const ORIGIN = 'http://127.0.0.1:8080/app/';
/** How the store tags this host in temp and lock names (sha256 of the hostname, 8 hex). */
const HOST_TAG = sha256Hex(hostname()).slice(0, 8);

function code(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

function blobFile(store: Store, hash: string): string {
  return join(store.dir, 'blobs', hash.slice(0, 2), hash);
}

function originFolder(store: Store, origin: string): string {
  return join(store.dir, 'origins', originId(normaliseOrigin(origin)));
}

/** A pid that no process has now: a child that already exited and was reaped. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  return child.pid!;
}

function writeAll(store: Store, versions: Versions, index: number): void {
  const snapshot = versions.snapshots[index]!;
  for (const [hash, bytes] of snapshot.blobs) store.writeBlob(hash, bytes);
}

function commit(store: Store, versions: Versions, index: number, etag: string | null = null): ReturnType<Store['commitManifest']> {
  const snapshot = versions.snapshots[index]!;
  return store.commitManifest(ORIGIN, { bytes: snapshot.sealed.bytes, manifest: snapshot.manifest, etag });
}

// Built once: a 30-module tree in 3 versions is plenty for every single-process test.
let shared: Versions | undefined;
function versions(): Versions {
  if (!shared) {
    const dir = tempDir({ after: (fn) => process.once('exit', fn) }, 'livemod-store-tree-');
    shared = buildVersions(dir, { modules: 30, versions: 3 });
  }
  return shared;
}

test('default location: LIVEMOD_CACHE, then $XDG_CACHE_HOME/livemod, then ~/.cache/livemod', () => {
  assert.equal(defaultStoreDir({ LIVEMOD_CACHE: '/srv/cache', XDG_CACHE_HOME: '/x' }), '/srv/cache');
  assert.equal(defaultStoreDir({ XDG_CACHE_HOME: '/x' }), '/x/livemod');
  assert.equal(defaultStoreDir({ LIVEMOD_CACHE: '', XDG_CACHE_HOME: 'relative' }).endsWith('/.cache/livemod'), true);
  assert.equal(defaultStoreDir({ HOME: '/home/u' }).endsWith('/.cache/livemod'), true);
});

test('origins normalise: case, default port, credentials, query, manifest.json and a missing slash', () => {
  assert.equal(normaliseOrigin('HTTP://Tools.EXAMPLE:80/app/manifest.json?x=1#y'), 'http://tools.example/app/');
  assert.equal(normaliseOrigin('https://u:p@h:443/app'), 'https://h/app/');
  assert.equal(normaliseOrigin('http://h:1/app/'), 'http://h:1/app/');
  assert.equal(normaliseOrigin(new URL('http://h:1/')), 'http://h:1/');
  assert.throws(() => normaliseOrigin('file:///etc/'), (error) => code(error) === 'ERR_LIVEMOD_USAGE');
  assert.throws(() => normaliseOrigin('not a url'), (error) => code(error) === 'ERR_LIVEMOD_USAGE');
});

test('blobs: write, read back verified, existence, missing list; bad bytes and bad names refused', (t) => {
  const store = openStore({ dir: tempDir(t), maxBlobBytes: 1024 });
  const bytes = Buffer.from('export default 1;\n');
  const hash = sha256Hex(bytes);
  assert.equal(store.hasBlob(hash), false);
  store.writeBlob(hash, bytes);
  store.writeBlob(hash, new Uint8Array(bytes)); // a second write of the same blob is harmless
  assert.deepEqual(store.readBlob(hash), bytes);
  assert.equal(store.hasBlob(hash), true);
  const other = sha256Hex('other');
  assert.deepEqual(store.missingBlobs([hash, other, other]), [other]);

  assert.throws(() => store.writeBlob(other, bytes), (error) => code(error) === 'ERR_LIVEMOD_HASH_MISMATCH' && /not stored/.test(String(error)));
  assert.equal(existsSync(blobFile(store, other)), false);
  const big = Buffer.alloc(2048);
  assert.throws(() => store.writeBlob(sha256Hex(big), big), (error) => code(error) === 'ERR_LIVEMOD_TOO_LARGE');
  for (const name of ['../../etc/passwd', hash.toUpperCase(), `${hash}/x`, '']) {
    assert.throws(() => store.readBlob(name), (error) => code(error) === 'ERR_LIVEMOD_USAGE');
    assert.throws(() => store.hasBlob(name), (error) => code(error) === 'ERR_LIVEMOD_USAGE');
  }
  assert.deepEqual(readdirSync(join(store.dir, 'tmp')), []);
});

test('a blob tampered on disk reads as null, its file is removed, and the removal is reported', (t) => {
  const store = openStore({ dir: tempDir(t) });
  const bytes = Buffer.from('export const answer = 42;\n');
  const hash = sha256Hex(bytes);
  store.writeBlob(hash, bytes);
  const file = blobFile(store, hash);
  const onDisk = readFileSync(file);
  onDisk[3]! ^= 0x01;
  writeFileSync(file, onDisk);

  const published: unknown[] = [];
  const listener = (message: unknown): void => void published.push(message);
  subscribe(STORE_CHANNEL, listener);
  try {
    assert.equal(store.readBlob(hash), null);
  } finally {
    unsubscribe(STORE_CHANNEL, listener);
  }
  assert.equal(existsSync(file), false);
  assert.deepEqual(store.takeEvents(), [{ type: 'blob-removed', hash, reason: 'hash-mismatch' }]);
  assert.deepEqual(published, [{ dir: store.dir, event: { type: 'blob-removed', hash, reason: 'hash-mismatch' } }]);
  assert.deepEqual(store.takeEvents(), []);
  // Refetched, it is good again.
  store.writeBlob(hash, bytes);
  assert.deepEqual(store.readBlob(hash), bytes);
});

test('commit then read back: exact bytes, state fields, and the equal-version re-commit', (t) => {
  const v = versions();
  const store = openStore({ dir: tempDir(t) });
  assert.equal(store.readOrigin(ORIGIN), null);
  writeAll(store, v, 0);
  const before = Date.now();
  const state = commit(store, v, 0, '"e1"');
  assert.equal(state.version, 1000);
  assert.equal(state.origin, ORIGIN);
  assert.equal(state.etag, '"e1"');
  assert.equal(state.keyId, v.key.keyId);
  assert.ok(state.acceptedAt >= before && state.checkedAt === state.acceptedAt);

  const stored = store.readOrigin('HTTP://127.0.0.1:8080/app/manifest.json');
  assert.ok(stored);
  assert.deepEqual(stored.manifestBytes, v.snapshots[0]!.sealed.bytes);
  assert.deepEqual(stored.state, state);
  const onDisk = JSON.parse(readFileSync(join(originFolder(store, ORIGIN), 'state.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(onDisk).sort(), ['acceptedAt', 'checkedAt', 'etag', 'keyId', 'manifestHash', 'name', 'origin', 'version']);
  assert.equal(state.name, v.snapshots[0]!.manifest.name, 'the app is recorded with the version floor');

  const again = commit(store, v, 0, '"e1b"');
  assert.equal(again.acceptedAt, state.acceptedAt);
  assert.equal(again.etag, '"e1b"');
});

test('a lower version is refused as a rollback; the stored one stays', (t) => {
  const v = versions();
  const store = openStore({ dir: tempDir(t) });
  writeAll(store, v, 0);
  writeAll(store, v, 1);
  commit(store, v, 1);
  assert.throws(() => commit(store, v, 0), (error) => code(error) === 'ERR_LIVEMOD_ROLLBACK' && /version 1000 .* older than version 2000/.test(String(error)));
  assert.equal(store.readOrigin(ORIGIN)?.state.version, 2000);
});

test('a commit is refused while a blob the manifest names is missing, and names the missing ones', (t) => {
  const v = versions();
  const store = openStore({ dir: tempDir(t) });
  const hashes = manifestBlobs(v.snapshots[0]!.manifest).map((ref) => ref.hash);
  for (const hash of hashes.slice(1)) store.writeBlob(hash, v.blobs.get(hash)!);
  assert.throws(() => commit(store, v, 0), (error) => {
    assert.equal(code(error), 'ERR_LIVEMOD_STORE_INCOMPLETE');
    assert.deepEqual((error as { details: { missing: string[] } }).details.missing, [hashes[0]]);
    return true;
  });
  assert.equal(store.readOrigin(ORIGIN), null);
  assert.equal(existsSync(originFolder(store, ORIGIN)), false);
  assert.deepEqual(store.missingBlobs(hashes), [hashes[0]]);
  store.writeBlob(hashes[0]!, v.blobs.get(hashes[0]!)!);
  assert.equal(commit(store, v, 0).version, 1000);
});

test('a commit whose bytes are not those of the manifest given is refused', (t) => {
  const v = versions();
  const store = openStore({ dir: tempDir(t) });
  writeAll(store, v, 0);
  writeAll(store, v, 1);
  assert.throws(
    () => store.commitManifest(ORIGIN, { bytes: v.snapshots[0]!.sealed.bytes, manifest: v.snapshots[1]!.manifest, etag: null }),
    (error) => code(error) === 'ERR_LIVEMOD_USAGE',
  );
  assert.throws(
    () => store.commitManifest(ORIGIN, { bytes: Buffer.from('{"signed":{}}'), manifest: v.snapshots[0]!.manifest, etag: null }),
    (error) => code(error) === 'ERR_LIVEMOD_MANIFEST_INVALID',
  );
});

test('touchOrigin after a 304 moves checkedAt and the ETag, unless another version is stored by now', (t) => {
  const v = versions();
  const store = openStore({ dir: tempDir(t) });
  assert.equal(store.touchOrigin(ORIGIN, { checkedAt: Date.now() }), null);
  writeAll(store, v, 0);
  const state = commit(store, v, 0, '"a"');
  const touched = store.touchOrigin(ORIGIN, { checkedAt: state.checkedAt + 5000, etag: '"b"', version: 1000 });
  assert.equal(touched?.checkedAt, state.checkedAt + 5000);
  assert.equal(touched?.etag, '"b"');
  assert.equal(touched?.acceptedAt, state.acceptedAt);
  assert.deepEqual(store.readOrigin(ORIGIN)?.state, touched);
  const stale = store.touchOrigin(ORIGIN, { checkedAt: state.checkedAt + 9000, etag: '"c"', version: 999 });
  assert.deepEqual(stale, touched);
  assert.equal(store.touchOrigin(ORIGIN, { checkedAt: 0 })?.checkedAt, state.checkedAt + 5000, 'checkedAt never goes back');
});

test('a confirmation alone rewrites no state (no lock, no fsync), and a newer commit makes it stale', (t) => {
  const v = versions();
  const store = openStore({ dir: tempDir(t) });
  writeAll(store, v, 0);
  writeAll(store, v, 1);
  const state = commit(store, v, 0, '"a"');
  const statePath = join(originFolder(store, ORIGIN), 'state.json');
  const before = readFileSync(statePath);
  const touched = store.touchOrigin(ORIGIN, { checkedAt: state.checkedAt + 60_000 });
  assert.equal(touched?.checkedAt, state.checkedAt + 60_000);
  assert.deepEqual(readFileSync(statePath), before, 'state.json untouched');
  assert.equal(store.readOrigin(ORIGIN)?.state.checkedAt, state.checkedAt + 60_000, 'read back from the confirmation');
  const newer = commit(store, v, 1);
  assert.equal(store.readOrigin(ORIGIN)?.state.checkedAt, newer.checkedAt, 'the confirmation named the older manifest: it no longer counts');
});

test('a confirmation of the record the caller read is written without reading the record again, and names its manifest', (t) => {
  const v = versions();
  const store = openStore({ dir: tempDir(t) });
  writeAll(store, v, 0);
  writeAll(store, v, 1);
  const state = commit(store, v, 0, '"a"');
  const read = store.readOrigin(ORIGIN)!.state;
  // Another process commits a newer version between this one's read and its 304.
  const newer = commit(store, v, 1);
  const manifestPath = join(originFolder(store, ORIGIN), 'manifest.json');
  const manifestBefore = readFileSync(manifestPath);
  // The record on disk is not read: a torn one (the manifest gone) would be repaired or removed by a read.
  rmSync(manifestPath);
  const touched = store.touchOrigin(ORIGIN, { checkedAt: state.checkedAt + 60_000, read });
  assert.equal(touched?.checkedAt, state.checkedAt + 60_000);
  assert.equal(touched?.version, read.version);
  writeFileSync(manifestPath, manifestBefore);
  assert.equal(store.readOrigin(ORIGIN)?.state.checkedAt, newer.checkedAt, 'the confirmation named the manifest read: it does not count for the newer one');
  // A record of another origin is not taken for this one's.
  assert.equal(store.touchOrigin(ORIGIN, { checkedAt: newer.checkedAt + 5, read: { ...read, origin: 'http://elsewhere/' } })?.version, newer.version);
  // The record removed while the 304 was on its way (cache forget): nothing to confirm, no error.
  const again = store.readOrigin(ORIGIN)!.state;
  assert.equal(store.forgetOrigin(ORIGIN), true);
  assert.equal(store.touchOrigin(ORIGIN, { checkedAt: again.checkedAt + 5, read: again }), null);
  assert.equal(store.readOrigin(ORIGIN), null);
});

test('malformed state.json next to a sound manifest: rebuilt from the manifest, keeping the rollback floor', (t) => {
  const v = versions();
  const store = openStore({ dir: tempDir(t) });
  writeAll(store, v, 1);
  commit(store, v, 1, '"x"');
  const statePath = join(originFolder(store, ORIGIN), 'state.json');
  for (const garbage of ['{"origin": "http://127.0.0.1:8080/app/", "version": "lots"', 'null', '[]', '\u0000\u0001', JSON.stringify({ origin: 'http://elsewhere/', version: 5 })]) {
    writeFileSync(statePath, garbage);
    const stored = store.readOrigin(ORIGIN);
    assert.equal(stored?.state.version, 2000, `after ${JSON.stringify(garbage)}`);
    assert.equal(stored?.state.etag, null);
    assert.deepEqual(stored?.manifestBytes, v.snapshots[1]!.sealed.bytes);
    assert.equal(store.takeEvents()[0]?.type, 'origin-repaired');
  }
  writeAll(store, v, 0);
  assert.throws(() => commit(store, v, 0), (error) => code(error) === 'ERR_LIVEMOD_ROLLBACK');
});

test('malformed state.json without a usable manifest: treated as absent and removed', (t) => {
  const v = versions();
  const store = openStore({ dir: tempDir(t) });
  const folder = originFolder(store, ORIGIN);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'state.json'), '{not json');
  assert.equal(store.readOrigin(ORIGIN), null);
  assert.equal(existsSync(folder), false);

  writeAll(store, v, 0);
  commit(store, v, 0);
  writeFileSync(join(folder, 'manifest.json'), '{"signed": 1}');
  assert.equal(store.readOrigin(ORIGIN), null);
  assert.equal(existsSync(folder), false);
  assert.equal(store.takeEvents().filter((event) => event.type === 'origin-removed').length, 2);
});

test('a commit torn between its two renames (new manifest, old state) is repaired to the new manifest', (t) => {
  const v = versions();
  const store = openStore({ dir: tempDir(t) });
  writeAll(store, v, 0);
  writeAll(store, v, 1);
  const first = commit(store, v, 0, '"v1"');
  // What a writer killed after renaming manifest.json and before renaming state.json leaves.
  writeFileSync(join(originFolder(store, ORIGIN), 'manifest.json'), v.snapshots[1]!.sealed.bytes);
  const stored = store.readOrigin(ORIGIN);
  assert.equal(stored?.state.version, 2000);
  assert.equal(stored?.state.etag, null, 'the old ETag belongs to the old manifest');
  assert.equal(stored?.state.checkedAt, first.checkedAt);
  assert.equal(stored?.state.manifestHash, sha256Hex(v.snapshots[1]!.sealed.bytes));
});

test('prune keeps what the newest manifest of each origin needs, removes the rest, and spares young blobs', (t) => {
  const v = versions();
  const store = openStore({ dir: tempDir(t) });
  writeAll(store, v, 0);
  writeAll(store, v, 2);
  commit(store, v, 2);
  const loose = Buffer.from('written by a sync that has not committed yet');
  store.writeBlob(sha256Hex(loose), loose);
  const needed = new Set(manifestBlobs(v.snapshots[2]!.manifest).map((ref) => ref.hash));
  const unneeded = [...v.snapshots[0]!.blobs.keys()].filter((hash) => !needed.has(hash));
  assert.ok(unneeded.length > 0);
  // Abandoned temp files go too: one whose writer is dead, one from another host that is old.
  writeFileSync(join(store.dir, 'tmp', `${HOST_TAG}.${deadPid()}.1.ab.tmp`), 'partial');
  const foreign = join(store.dir, 'tmp', `ffffffff.${process.pid}.1.ab.tmp`);
  writeFileSync(foreign, 'partial');
  utimesSync(foreign, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));

  const young = store.prune();
  assert.equal(young.removed, 2, 'only the temp files: every blob is younger than the default grace');
  assert.equal(young.young, unneeded.length + 1);

  const dry = store.prune({ dryRun: true, graceMs: 0 });
  assert.equal(dry.removed, unneeded.length + 1);
  assert.equal(store.list().blobs, needed.size + unneeded.length + 1, 'a dry run removes nothing');

  const report = store.prune({ graceMs: 0 });
  assert.equal(report.kept, needed.size);
  assert.equal(report.removed, dry.removed);
  assert.ok(report.freedBytes > 0);
  for (const hash of needed) assert.ok(store.readBlob(hash), 'needed blob kept');
  for (const hash of unneeded) assert.equal(store.hasBlob(hash), false, 'unneeded blob removed');
  assert.equal(store.hasBlob(sha256Hex(loose)), false);
  assert.deepEqual(readdirSync(join(store.dir, 'tmp')), []);
  assert.equal(store.prune({ graceMs: 0 }).removed, 0);
});

test('planning a fetch marks the blobs found as fresh, so a concurrent prune spares them until the commit', (t) => {
  const store = openStore({ dir: tempDir(t) });
  const bytes = Buffer.from('an old blob a new manifest needs again');
  const hash = sha256Hex(bytes);
  store.writeBlob(hash, bytes);
  const hourAgo = new Date(Date.now() - 3600_000);
  utimesSync(blobFile(store, hash), hourAgo, hourAgo);
  assert.equal(store.prune({ dryRun: true }).removed, 1, 'unreferenced and old: prune would take it');
  assert.deepEqual(store.missingBlobs([hash]), []);
  assert.deepEqual(store.prune(), { removed: 0, freedBytes: 0, kept: 1, young: 1, dryRun: false, folders: { removed: 0, kept: 0 }, codeCache: 0, builds: 0 });
  assert.ok(store.readBlob(hash));
});

test('a blob file over the size cap is not read but removed', (t) => {
  const dir = tempDir(t);
  const bytes = Buffer.alloc(4096, 1);
  const hash = sha256Hex(bytes);
  openStore({ dir }).writeBlob(hash, bytes);
  const small = openStore({ dir, maxBlobBytes: 1024 });
  assert.equal(small.readBlob(hash), null);
  assert.deepEqual(small.takeEvents(), [{ type: 'blob-removed', hash, reason: 'too-large' }]);
  assert.equal(small.hasBlob(hash), false);
});

test('list and verify: what is stored, what is missing, what was corrupt', (t) => {
  const v = versions();
  const store = openStore({ dir: tempDir(t) });
  const other = 'https://mirror.example/tools/';
  writeAll(store, v, 0);
  commit(store, v, 0);
  writeAll(store, v, 1);
  store.commitManifest(other, { bytes: v.snapshots[1]!.sealed.bytes, manifest: v.snapshots[1]!.manifest, etag: null });
  const refs = manifestBlobs(v.snapshots[0]!.manifest);

  const listing = store.list();
  assert.deepEqual(listing.origins.map((origin) => [origin.origin, origin.version, origin.missing]), [[ORIGIN, 1000, 0], [other, 2000, 0]]);
  const first = listing.origins[0]!;
  assert.equal(first.modules, Object.keys(v.snapshots[0]!.manifest.modules).length);
  assert.equal(first.blobs, refs.length);
  assert.equal(first.bytesNeeded, refs.reduce((total, ref) => total + ref.size, 0));
  assert.equal(listing.blobs, new Set([...v.snapshots[0]!.blobs.keys(), ...v.snapshots[1]!.blobs.keys()]).size);
  assert.equal(listing.damaged, 0);

  // Damage: one blob flipped, one stray file, one origin record without a readable state.
  const victim = refs[0]!.hash;
  const file = blobFile(store, victim);
  const bytes = readFileSync(file);
  bytes[0]! ^= 0xff;
  writeFileSync(file, bytes);
  writeFileSync(join(store.dir, 'blobs', victim.slice(0, 2), 'junk'), 'x');
  const orphan = join(store.dir, 'origins', 'f'.repeat(32));
  mkdirSync(orphan);
  writeFileSync(join(orphan, 'state.json'), 'garbage');
  assert.equal(store.list().damaged, 1);

  const report = store.verify();
  assert.equal(report.checked, listing.blobs);
  assert.deepEqual(report.corrupt.sort(), [`blobs/${victim.slice(0, 2)}/${victim}`, `blobs/${victim.slice(0, 2)}/junk`, `origins/${'f'.repeat(32)}`].sort());
  const missing = report.incomplete.find((entry) => entry.origin === ORIGIN);
  assert.deepEqual(missing?.missing, [victim]);
  assert.equal(store.list().origins.find((origin) => origin.origin === ORIGIN)?.missing, 1);
  assert.deepEqual(store.verify().corrupt, []);
});

test('an unwritable cache folder is a one-line error naming it and LIVEMOD_CACHE', (t) => {
  const root = tempDir(t);
  const file = join(root, 'a-file');
  writeFileSync(file, '');
  const dir = join(file, 'cache');
  assert.throws(() => openStore({ dir }), (error) => {
    assert.equal(code(error), 'ERR_LIVEMOD_STORE_UNWRITABLE');
    const message = (error as Error).message;
    assert.match(message, /^\[livemod store\] /);
    assert.ok(message.includes(dir), message);
    assert.match(message, /LIVEMOD_CACHE/);
    assert.equal(message.includes('\n'), false);
    return true;
  });
});

test('opening a store removes temp files of dead writers and old ones, and keeps a live writer\'s', (t) => {
  const dir = tempDir(t);
  openStore({ dir });
  const tmp = join(dir, 'tmp');
  assert.deepEqual(readdirSync(tmp), []);
  const tag = HOST_TAG;
  const dead = join(tmp, `${tag}.${deadPid()}.1.aa.tmp`);
  const live = join(tmp, `${tag}.${process.pid}.999.bb.tmp`);
  const old = join(tmp, `${tag}.${process.pid}.998.cc.tmp`);
  const foreign = join(tmp, 'not-ours.tmp');
  for (const path of [dead, live, old, foreign]) writeFileSync(path, 'partial');
  const past = new Date(Date.now() - 61_000);
  utimesSync(old, past, past);
  openStore({ dir });
  assert.deepEqual(readdirSync(tmp).sort(), [live, foreign].map((path) => path.slice(tmp.length + 1)).sort());
});

test('a lock left by a dead process is broken; a live holder makes a commit wait, then fail clearly', (t) => {
  const v = versions();
  const dir = tempDir(t);
  const store = openStore({ dir, lockTimeoutMs: 200 });
  writeAll(store, v, 0);
  const tag = HOST_TAG;
  writeFileSync(join(dir, 'lock'), `${tag} ${deadPid()} abcdef ${Date.now()}\n`);
  assert.equal(commit(store, v, 0).version, 1000);
  assert.equal(existsSync(join(dir, 'lock')), false);

  // Held by a live pid (this one, as another thread or store would): wait, then a clear error.
  writeFileSync(join(dir, 'lock'), `${tag} ${process.pid} abcdef ${Date.now()}\n`);
  const started = Date.now();
  assert.throws(() => commit(store, v, 0), (error) => code(error) === 'ERR_LIVEMOD_STORE_LOCKED' && String(error).includes(`pid ${process.pid}`));
  assert.ok(Date.now() - started >= 200);
  // Reads never take the lock.
  assert.equal(store.readOrigin(ORIGIN)?.state.version, 1000);
});

interface Child {
  readonly lines: AsyncIterableIterator<string>;
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;
  readonly child: ReturnType<typeof spawn>;
  readonly stderr: () => string;
}

function start(t: TestContext, script: string, args: string[]): Child {
  const child = spawn(process.execPath, [join(HELPERS, script), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
  return { child, exited, lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator](), stderr: () => stderr };
}

async function nextLine(child: Child): Promise<string> {
  const { value, done } = await child.lines.next();
  if (done) throw new Error(`child ended without a line; stderr: ${child.stderr()}`);
  return value;
}

test('8 processes write the same blobs (half as blob files, half as one pack each) and commit versions into one empty store at once', { timeout: 30_000 }, async (t) => {
  const work = tempDir(t);
  const v = buildVersions(join(work, 'tree'), { modules: 96, versions: 3, changes: 2 });
  assert.ok(v.blobs.size >= 200, `${v.blobs.size} blobs`);
  const fixture = join(work, 'fixture.json');
  writeFixture(fixture, ORIGIN, v);
  const dir = join(work, 'store');
  // Ascending, descending (its later commits are rollbacks), single ones, and a repeat.
  const plans = ['0,1,2', '2,1,0', '1', '2,2', '0', '1,2', '2,0', '0,2,1'];
  const children = plans.map((plan, index) => start(t, 'store-writer.ts', [dir, fixture, plan, String(index + 1), '10', index % 2 === 0 ? 'pack' : 'files']));
  for (const child of children) assert.equal(await nextLine(child), 'ready');
  for (const child of children) child.child.stdin!.write('write\n');
  for (const child of children) assert.equal(await nextLine(child), 'written');
  for (const child of children) child.child.stdin!.write('commit\n');
  const reports = await Promise.all(children.map(async (child) => {
    const line = await nextLine(child);
    const [status] = await child.exited;
    assert.equal(status, 0, child.stderr());
    return JSON.parse(line) as { results: { version: number; outcome: string }[]; seen: number[] };
  }));
  for (const { results, seen } of reports) {
    assert.deepEqual(seen, [...seen].sort((a, b) => a - b), 'the stored version never went down');
    for (const { version, outcome } of results) {
      assert.ok(outcome === `committed ${version}` || outcome === 'ERR_LIVEMOD_ROLLBACK', `${version}: ${outcome}`);
    }
  }

  const store = openStore({ dir });
  assert.equal(store.readOrigin(ORIGIN)?.state.version, 3000);
  assert.deepEqual(store.readOrigin(ORIGIN)?.manifestBytes, v.snapshots[2]!.sealed.bytes);
  const report = store.verify();
  // Each blob is a file and packed too (the packing writers all wrote the same pack).
  assert.equal(report.checked, 2 * v.blobs.size);
  assert.equal(readdirSync(join(dir, 'packs')).length, 1);
  assert.deepEqual(report.corrupt, []);
  assert.deepEqual(report.repaired, []);
  assert.deepEqual(readdirSync(join(dir, 'tmp')), []);
  assert.equal(existsSync(join(dir, 'lock')), false);
  assert.equal(existsSync(join(dir, 'lock.break')), false);
});

for (const mode of ['files', 'pack'] as const) test(`a writer SIGKILLed mid-write (blobs as ${mode === 'pack' ? 'one pack' : 'files'}) leaves a store that reopens clean: tmp emptied, blobs sound, state the last complete one`, { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'tmp'));
  const rounds = 6;
  let leftovers = 0;
  for (let round = 0; round < rounds; round += 1) {
    // A new origin each round, so a lock the previous child died holding must be broken by this one.
    const origin = `http://127.0.0.1:9/killed-${round}/`;
    const child = start(t, 'store-killed.ts', [dir, origin, mode]);
    let committed = 0;
    let attempted = 0;
    const progress = (async (): Promise<void> => {
      for await (const line of child.lines) {
        const [word, version] = line.split(' ');
        if (word === 'committing') attempted = Number(version);
        if (word === 'committed') committed = Number(version);
      }
    })();
    // Killed on the n-th temp file created after the first commit: with blob files n = 1…4 land in
    // blob writes of version 2, 5 in its manifest, 6 in its state (after the manifest's rename: a
    // torn commit); with packs, 1 in version 2's pack, 2 its manifest, 3 its state, 4… version 3's.
    const names = new Set<string>();
    const watcher = watch(join(dir, 'tmp'));
    await new Promise<void>((resolve) => {
      watcher.on('change', (_event, name) => {
        if (committed < 1 || !String(name).endsWith('.tmp')) return;
        names.add(String(name));
        if (names.size === round + 1) {
          child.child.kill('SIGKILL');
          resolve();
        }
      });
    });
    watcher.close();
    const [, signal] = await child.exited;
    await progress;
    assert.equal(signal, 'SIGKILL');
    if (readdirSync(join(dir, 'tmp')).length > 0) leftovers += 1;

    const store = openStore({ dir });
    assert.deepEqual(readdirSync(join(dir, 'tmp')), [], 'temp files of the killed writer are removed on open');
    const report = store.verify();
    assert.deepEqual(report.corrupt, []);
    assert.ok(report.checked > 0);
    const stored = store.readOrigin(origin);
    assert.ok(stored, 'the completed commit of version 1 survives');
    assert.ok(stored.state.version === committed || stored.state.version === attempted, `version ${stored.state.version}, committed ${committed}, attempted ${attempted}`);
    assert.equal(stored.state.manifestHash, sha256Hex(stored.manifestBytes));
    assert.deepEqual(report.incomplete, [], 'every blob of each stored manifest is present');
    // Killed among version 2's blob writes (it had not said "committing 2": its stdout is read to
    // the end, so that is known exactly): the state is exactly version 1. Killed in its manifest or
    // state write: version 1, or version 2 when its manifest was already renamed (repaired). On a
    // loaded machine the kill can land later than the temp file that triggered it, so the round
    // alone does not say which.
    if (attempted < 2) assert.equal(stored.state.version, 1);
  }
  assert.ok(leftovers >= rounds / 2, `only ${leftovers} of ${rounds} kills left a partial temp file: they did not land mid-write`);
  // The last child may have died holding the lock: a commit still goes through.
  const store = openStore({ dir });
  const blob = Buffer.from('after the kill');
  store.writeBlob(sha256Hex(blob), blob);
  const { key } = versions();
  const snapshot = blobSnapshot(key, [blob], 5);
  assert.equal(store.commitManifest('http://127.0.0.1:9/after/', { bytes: snapshot.sealed.bytes, manifest: snapshot.manifest, etag: null }).version, 5);
  assert.equal(existsSync(join(dir, 'lock')), false);
});

// Real snapshots for the store tests: a generated TS tree built by SnapshotBuilder and signed
// with a fresh publisher key, in successive versions that change a few modules each; and the
// fixture file the store's child processes read (blobs and manifests, base64, one JSON).
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatePublisherKey, manifestBlobs, openManifest, parsePublicKey, sha256Hex, signSnapshot, type Manifest, type ModuleRecord, type PublisherKey, type Snapshot } from '../../src/snapshot/index.ts';
import { SnapshotBuilder } from '../../src/build/index.ts';
import { generateTree } from './tree.ts';

export interface Versions {
  readonly key: PublisherKey;
  /** Ascending versions of one tree. */
  readonly snapshots: readonly Snapshot[];
  /** Every blob of every version. */
  readonly blobs: ReadonlyMap<string, Buffer>;
}

/**
 * `versions` snapshots of a `modules`-module tree (plus main.ts) in `dir`; each version after
 * the first edits `changes` modules. Versions are 1000, 2000, … so tests can name them.
 */
export function buildVersions(dir: string, options: { modules: number; versions: number; changes?: number; seed?: number }): Versions {
  const src = join(dir, 'src');
  const tree = generateTree(src, options.modules, { seed: options.seed ?? 7 });
  const key = generatePublisherKey();
  const builder = new SnapshotBuilder(src);
  const snapshots: Snapshot[] = [];
  const blobs = new Map<string, Buffer>();
  for (let index = 0; index < options.versions; index += 1) {
    if (index > 0) {
      const edited: string[] = [];
      for (let change = 0; change < (options.changes ?? 3); change += 1) {
        const path = tree.modules[(index * 7 + change * 13) % (tree.modules.length - 1)]!;
        appendFileSync(join(src, path), `\nexport const edit${index}_${change}: number = ${index};\n`);
        edited.push(path);
      }
      builder.invalidate(edited);
    }
    const snapshot = signSnapshot(builder.build().content, key, { version: (index + 1) * 1000 });
    for (const [hash, bytes] of snapshot.blobs) blobs.set(hash, bytes);
    snapshots.push(snapshot);
  }
  return { key, snapshots, blobs };
}

/** A signed snapshot whose modules are exactly these blobs (any bytes), for tests about blobs rather than code. */
export function blobSnapshot(key: PublisherKey, contents: readonly Buffer[], version: number): Snapshot {
  const blobs = new Map<string, Buffer>();
  const modules: Record<string, ModuleRecord> = {};
  contents.forEach((bytes, index) => {
    const hash = sha256Hex(bytes);
    blobs.set(hash, bytes);
    modules[`m${String(index).padStart(4, '0')}.js`] = { blob: { hash, size: bytes.length }, map: null, imports: [], exports: ['default'], star: [], tla: false };
  });
  return signSnapshot({ name: 'blob-test', modules, entry: null, blobs }, key, { version });
}

/** What a child process needs to write and commit: JSON with base64 bytes. */
export interface StoreFixture {
  readonly origin: string;
  readonly publicKey: string;
  readonly blobs: Readonly<Record<string, string>>;
  readonly manifests: readonly { readonly version: number; readonly bytes: string }[];
}

export function writeFixture(path: string, origin: string, versions: Versions): void {
  const blobs: Record<string, string> = {};
  for (const [hash, bytes] of versions.blobs) blobs[hash] = bytes.toString('base64');
  const manifests = versions.snapshots.map((snapshot) => ({ version: snapshot.manifest.version, bytes: snapshot.sealed.bytes.toString('base64') }));
  const fixture: StoreFixture = { origin, publicKey: versions.key.publicKeyString, blobs, manifests };
  writeFileSync(path, JSON.stringify(fixture));
}

/** Opens a fixture manifest as sync would: signature by the pinned key, structure. */
export function openFixtureManifest(fixture: StoreFixture, index: number): { bytes: Buffer; manifest: Manifest; hashes: string[] } {
  const bytes = Buffer.from(fixture.manifests[index]!.bytes, 'base64');
  const manifest = openManifest(bytes, parsePublicKey(fixture.publicKey), 'fixture');
  return { bytes, manifest, hashes: manifestBlobs(manifest).map((ref) => ref.hash) };
}

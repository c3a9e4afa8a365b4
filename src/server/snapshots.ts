// What the server can serve: the current snapshot, plus the blobs of the last `keepVersions`
// snapshots so a client mid-sync of an older manifest still completes. Blobs are held by
// reference count, so a blob shared by many versions is stored once and freed with the last.
// Only blobs a manifest references are servable: nothing else in a Snapshot's map, nor any
// file, can ever leave the server.
import { ErrorCodes, LivemodError } from '../errors.ts';
import { eachBlob, shortHash, type Snapshot } from '../snapshot/index.ts';

export interface PublishedSnapshot {
  readonly snapshot: Snapshot;
  readonly moduleCount: number;
  /** Sum of the sizes of the distinct blobs the manifest references. */
  readonly blobBytes: number;
  /** The distinct referenced blob hashes, which this entry holds a reference to. */
  readonly hashes: readonly string[];
}

/** Collects the referenced blobs, refusing a snapshot that lacks one: it would 404 its own manifest. */
function referencedBlobs(snapshot: Snapshot): Map<string, Buffer> {
  const found = new Map<string, Buffer>();
  eachBlob(snapshot.manifest, (ref, what) => {
    if (found.has(ref.hash)) return;
    const bytes = snapshot.blobs.get(ref.hash);
    if (!bytes || bytes.byteLength !== ref.size) {
      throw new LivemodError('serve', ErrorCodes.SERVE_FAILED, `snapshot version ${snapshot.manifest.version} ${bytes ? `holds ${bytes.byteLength} bytes` : 'holds no bytes'} for blob ${shortHash(ref.hash)} of "${what}", which the manifest says is ${ref.size} bytes; rebuild the snapshot`, { module: what, hash: ref.hash });
    }
    found.set(ref.hash, bytes);
  });
  return found;
}

export class SnapshotStore {
  private readonly keepVersions: number;
  /** Oldest first; the last entry is current. */
  private readonly history: PublishedSnapshot[] = [];
  private readonly blobs = new Map<string, { bytes: Buffer; refs: number }>();
  private publishCount = 0;

  constructor(keepVersions: number) {
    this.keepVersions = keepVersions;
  }

  get current(): PublishedSnapshot | undefined {
    return this.history.at(-1);
  }

  get published(): number {
    return this.publishCount;
  }

  /** Makes `snapshot` current. Refuses a version that does not exceed the current one: clients would refuse it as a rollback. */
  publish(snapshot: Snapshot): PublishedSnapshot {
    const previous = this.current?.snapshot.manifest.version;
    const version = snapshot.manifest.version;
    if (previous !== undefined && version <= previous) {
      throw new LivemodError('serve', ErrorCodes.ROLLBACK, `cannot publish version ${version}: the server already serves version ${previous}, and clients refuse a version that does not go up; sign it with previousVersion ${previous}`, { version, previous });
    }
    const referenced = referencedBlobs(snapshot);
    let blobBytes = 0;
    for (const [hash, bytes] of referenced) {
      blobBytes += bytes.byteLength;
      const held = this.blobs.get(hash);
      if (held) held.refs += 1;
      else this.blobs.set(hash, { bytes, refs: 1 });
    }
    const entry: PublishedSnapshot = { snapshot, moduleCount: Object.keys(snapshot.manifest.modules).length, blobBytes, hashes: [...referenced.keys()] };
    this.history.push(entry);
    this.publishCount += 1;
    while (this.history.length > this.keepVersions) this.release(this.history.shift()!);
    return entry;
  }

  blob(hash: string): Buffer | undefined {
    return this.blobs.get(hash)?.bytes;
  }

  private release(entry: PublishedSnapshot): void {
    for (const hash of entry.hashes) {
      const held = this.blobs.get(hash)!;
      held.refs -= 1;
      if (held.refs === 0) this.blobs.delete(hash);
    }
  }
}

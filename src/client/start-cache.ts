// The code cache a start uses: its run pack's entries (one read for the whole start), else the
// store's entry per blob. Shared by remote starts (remote.ts) and local runs (connect.ts).
import type { ModuleCodeCache } from '../runtime/index.ts';
import { runPackKey, type RunPackEntry, type Store } from '../store/index.ts';

/** Where a unit's blobs are read from when its pack is written. */
interface BlobReader {
  get(hash: string): Buffer | undefined;
}

/** A set of modules whose code cache is kept as one run pack: the start's, or a graph grown into the run later. */
interface Unit {
  readonly key: string | null;
  readonly code: readonly string[];
  readonly blobs: BlobReader;
  readonly pack: ReadonlyMap<string, RunPackEntry> | null;
  /** Its pack on disk holds the data this process has for it. */
  written: boolean;
}

/**
 * The code cache of a start: entries from its run pack, else the store's per-blob ones; once V8
 * made new data (a module compiled, not deserialised), the start's blobs and all their data are
 * written as its run pack, so the next start reads one file. A graph grown into the run later (a
 * lazily imported graph a local build deferred: `grow`) has a run pack of its own, the same way.
 */
export function startCache(store: Store, pack: ReadonlyMap<string, RunPackEntry> | null, key: string | null, code: readonly string[], blobs: ReadonlyMap<string, Buffer>): ModuleCodeCache {
  const base = store.codeCache();
  const data = new Map<string, Buffer>();
  const units: Unit[] = [];
  /** Each reached blob's units. */
  const reached = new Map<string, Unit[]>();
  const perBlob: [string, Buffer][] = [];
  let timer: NodeJS.Timeout | undefined;
  const add = (unit: Unit): void => {
    units.push(unit);
    for (const hash of unit.code) {
      let list = reached.get(hash);
      if (!list) reached.set(hash, (list = []));
      list.push(unit);
    }
  };
  add({ key, code, blobs, pack, written: false });
  const write = (): void => {
    for (const unit of units) {
      if (unit.written || unit.key === null || !unit.code.every((hash) => data.has(hash))) continue;
      const entries = new Map<string, { blob: Buffer; cache: Buffer }>();
      for (const hash of unit.code) {
        const blob = unit.blobs.get(hash);
        if (blob) entries.set(hash, { blob, cache: data.get(hash)! });
      }
      if (entries.size !== unit.code.length) continue;
      unit.written = true;
      store.writeRunPack(unit.key, entries);
    }
    clearTimeout(timer);
    timer = undefined;
    process.off('exit', write);
  };
  // No pack yet, every module deserialised from its own entry (nothing compiled, so no flush
  // calls done): the pack is still written, a second after the first read or at exit (one timer
  // for the start, not one per module read).
  const later = (): void => {
    if (timer !== undefined) return;
    process.on('exit', write);
    timer = setTimeout(write, 1000);
    timer.unref();
  };
  return {
    get(hash) {
      let packed: Buffer | undefined;
      for (const unit of reached.get(hash) ?? []) {
        packed = unit.pack?.get(hash)?.cache ?? undefined;
        if (packed) break;
      }
      const found = packed ?? base.get(hash);
      if (found) data.set(hash, found);
      if (found && !packed && reached.get(hash)?.some((unit) => !unit.written)) later();
      return found;
    },
    put(hash, bytes) {
      data.set(hash, bytes);
      const mine = reached.get(hash);
      if (!mine) {
        // An import() graph's module: its own entry is how the next start finds it.
        base.put(hash, bytes);
        return;
      }
      // New data: the packs holding this blob are written again.
      for (const unit of mine) unit.written = false;
      // Per blob as well, so a new version that changes one module still finds the others'
      // entries (its run pack differs); but only while the process runs on: a program that is
      // exiting (a command-line tool) writes its one run pack, not a file per module.
      perBlob.push([hash, bytes]);
      if (perBlob.length === 1) setTimeout(() => {
        for (const [each, entry] of perBlob.splice(0)) base.put(each, entry);
      }, 0).unref();
    },
    drop(hash) {
      data.delete(hash);
      base.drop(hash);
    },
    done() {
      write();
    },
    grow(code, moreBlobs) {
      // Only what no unit holds yet: a graph that shares modules with the start's adds the rest.
      const more = code.filter((hash) => !reached.has(hash));
      if (more.length === 0) return;
      const moreKey = runPackKey(more);
      let morePack: ReadonlyMap<string, RunPackEntry> | null = null;
      try {
        // The build has the blobs: only the pack's code cache is read.
        morePack = store.readRunPack(moreKey, { blobs: false });
      } catch {
        // A pack that cannot be read is one to write again.
      }
      add({ key: moreKey, code: more, blobs: moreBlobs, pack: morePack, written: false });
    },
  };
}

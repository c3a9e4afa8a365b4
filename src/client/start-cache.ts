// The code cache a start uses: its run pack's entries (one read for the whole start), else the
// store's entry per blob. Shared by remote starts (remote.ts) and local runs (connect.ts).
import type { ModuleCodeCache } from '../runtime/index.ts';
import type { RunPackEntry, Store } from '../store/index.ts';

/**
 * The code cache of a start: entries from its run pack, else the store's per-blob ones; once V8
 * made new data (a module compiled, not deserialised), the start's blobs and all their data are
 * written as its run pack, so the next start reads one file.
 */
export function startCache(store: Store, pack: ReadonlyMap<string, RunPackEntry> | null, key: string | null, code: readonly string[], blobs: ReadonlyMap<string, Buffer>): ModuleCodeCache {
  const base = store.codeCache();
  const data = new Map<string, Buffer>();
  const reached = new Set(code);
  const perBlob: [string, Buffer][] = [];
  let written = false;
  let timer: NodeJS.Timeout | undefined;
  const write = (): void => {
    if (written || key === null || !code.every((hash) => blobs.has(hash) && data.has(hash))) return;
    written = true;
    clearTimeout(timer);
    process.off('exit', write);
    store.writeRunPack(key, new Map(code.map((hash) => [hash, { blob: blobs.get(hash)!, cache: data.get(hash)! }])));
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
      const packed = pack?.get(hash)?.cache;
      const found = packed ?? base.get(hash);
      if (found) data.set(hash, found);
      if (found && !packed && !written) later();
      return found;
    },
    put(hash, bytes) {
      data.set(hash, bytes);
      if (!reached.has(hash)) {
        // An import() graph's module: its own entry is how the next start finds it.
        base.put(hash, bytes);
        return;
      }
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
      written = false;
      write();
    },
  };
}

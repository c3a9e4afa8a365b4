// Watch mode: file events → incremental rebuild → a new signed version. Saves coalesce, and the
// last save always wins: events that arrive while a build runs cause one more build after it,
// and every changed path is looked at again once chokidar's 50 ms change throttle has passed
// (chokidar drops a second `change` of one path inside that window instead of delaying it).
import { watch, type FSWatcher } from 'chokidar';
import { relative, sep } from 'node:path';
import type { BuildResult, SnapshotBuilder } from '../build/index.ts';

export interface WatchOptions {
  readonly builder: SnapshotBuilder;
  /** A build that changed at least one blob. */
  readonly onBuild: (result: BuildResult) => void;
  /** A build that failed (a syntax error mid-edit): the previous snapshot stays current. */
  readonly onError: (error: unknown) => void;
  /** Quiet time before a build starts, so a burst of saves makes one build. */
  readonly debounceMs?: number;
  /** When to look at a changed path again, past chokidar's change throttle. */
  readonly recheckMs?: number;
}

export interface FolderWatch {
  /** Resolves once the initial scan of the watcher is done and edits are seen. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

export function watchFolder(options: WatchOptions): FolderWatch {
  const { builder } = options;
  const debounceMs = options.debounceMs ?? 5;
  const recheckMs = options.recheckMs ?? 60;
  const excluded = builder.options.exclude;
  let timer: NodeJS.Timeout | undefined;
  const rechecks = new Map<string, NodeJS.Timeout>();
  let closed = false;
  let closing: Promise<void> | undefined;

  const ignored = (path: string): boolean => {
    const rel = relative(builder.root, path);
    if (rel === '') return false;
    if (excluded.some((dir) => path === dir || path.startsWith(dir + sep))) return true;
    return rel.split(sep).some((part) => part.startsWith('.') || part === 'node_modules');
  };

  const run = (): void => {
    timer = undefined;
    if (closed) return;
    // build() is synchronous: events that land meanwhile queue up and schedule the next build.
    try {
      const result = builder.build();
      if (result.changed.length > 0) options.onBuild(result);
    } catch (error) {
      options.onError(error);
    }
  };

  const schedule = (): void => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(run, debounceMs);
  };

  const touched = (path: string, recheck: boolean): void => {
    const rel = relative(builder.root, path).split(sep).join('/');
    builder.invalidate([rel]);
    schedule();
    if (!recheck || closed) return;
    clearTimeout(rechecks.get(rel));
    rechecks.set(rel, setTimeout(() => {
      rechecks.delete(rel);
      builder.invalidate([rel]);
      schedule();
    }, recheckMs));
  };

  // Symlinks are not followed: a linked folder is the builder's to judge (its real path must stay
  // inside the root), and following it let events name paths under links that leave the folder
  // or loop back into it.
  const watcher: FSWatcher = watch(builder.root, { ignoreInitial: true, ignored, followSymlinks: false });
  watcher.on('add', (path) => touched(path, false));
  watcher.on('change', (path) => touched(path, true));
  watcher.on('unlink', (path) => touched(path, false));
  watcher.on('addDir', () => {
    builder.rescan();
    schedule();
  });
  watcher.on('unlinkDir', () => {
    builder.rescan();
    schedule();
  });
  watcher.on('error', (error) => options.onError(error));
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()));

  return {
    ready,
    close(): Promise<void> {
      closing ??= (async () => {
        closed = true;
        clearTimeout(timer);
        for (const handle of rechecks.values()) clearTimeout(handle);
        rechecks.clear();
        await watcher.close();
      })();
      return closing;
    },
  };
}

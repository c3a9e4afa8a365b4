// Watch mode: file events → incremental rebuild → a new signed version. Saves coalesce, and the
// last save always wins: events that arrive while a build runs cause one more build after it,
// and every changed path is looked at again once chokidar's 50 ms change throttle has passed
// (chokidar drops a second `change` of one path inside that window instead of delaying it).
import type * as Chokidar from 'chokidar';
import type { FSWatcher } from 'chokidar';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { relative, sep } from 'node:path';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { formatBroken, type BuildResult, type SnapshotBuilder } from './build.ts';

export interface WatchOptions {
  readonly builder: SnapshotBuilder;
  /** A build that changed at least one blob. */
  readonly onBuild: (result: BuildResult) => void;
  /**
   * A build that failed, or one in which a module that parsed in the last published build no
   * longer does (a save mid-edit): the previous snapshot stays current.
   */
  readonly onError: (error: unknown) => void;
  /** Modules already published broken (they never parsed): they do not hold a build back. */
  readonly broken?: Iterable<string>;
  /** Quiet time before a build starts, so a burst of saves makes one build. */
  readonly debounceMs?: number;
  /** When to look at a changed path again, past chokidar's change throttle. */
  readonly recheckMs?: number;
  /** How often to look for the folder once it was removed. */
  readonly pollMs?: number;
}

export interface FolderWatch {
  /** Resolves once the initial scan of the watcher is done and edits are seen. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

export function watchFolder(options: WatchOptions): FolderWatch {
  const { builder } = options;
  // No quiet time by default: a save builds at once, and saves that land while a build runs make
  // one more build after it (a burst still ends on its last save).
  const debounceMs = options.debounceMs ?? 0;
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

  let watcher: FSWatcher | undefined;
  let poll: NodeJS.Timeout | undefined;

  /**
   * The folder itself went away (`rm -rf dist && mkdir dist`, a branch switch): say so once,
   * keep serving the last version, and watch again from scratch when the folder is back.
   */
  const rootGone = (): boolean => {
    if (existsSync(builder.root)) return false;
    if (poll || closed) return true;
    options.onError(new LivemodError('serve', ErrorCodes.DIR_INVALID, `${builder.root} was removed; still serving the last version, and watching again once the folder is back`, { dir: builder.root }));
    void watcher?.close();
    watcher = undefined;
    poll = setInterval(() => {
      if (closed || !existsSync(builder.root)) return;
      clearInterval(poll);
      poll = undefined;
      builder.rescan();
      start();
      schedule();
    }, options.pollMs ?? 250);
    return true;
  };

  // A file that never parsed is published marked, as any build does; a file that parsed in the
  // last published build and no longer does is a save mid-edit, and its build is held back.
  let published = new Set(options.broken);

  const run = (): void => {
    timer = undefined;
    if (closed || rootGone()) return;
    // build() is synchronous: events that land meanwhile queue up and schedule the next build.
    try {
      const result = builder.build();
      if (result.changed.length === 0) return;
      const newly = result.broken.filter((item) => !published.has(item.path));
      if (newly.length > 0) {
        const more = newly.length > 1 ? ` (and ${newly.length - 1} more)` : '';
        options.onError(new LivemodError('build', ErrorCodes.BUILD_FAILED, `${formatBroken(newly[0]!)}${more}; still serving the last version until it parses again`, { path: newly[0]!.path, line: newly[0]!.line, column: newly[0]!.column }));
        return;
      }
      published = new Set(result.broken.map((item) => item.path));
      options.onBuild(result);
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
    // A file that just became empty is most often an editor's truncate-then-write caught halfway:
    // it is looked at again at the recheck instead of being published empty now.
    const emptied = recheck && statSync(path, { throwIfNoEntry: false })?.size === 0;
    if (!emptied) {
      builder.invalidate([rel]);
      schedule();
    }
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
  const start = (): Promise<void> => {
    // Loaded here: a build or a local run that does not watch should not pay for the watcher.
    const { watch } = createRequire(import.meta.url)('chokidar') as typeof Chokidar;
    const current = watch(builder.root, { ignoreInitial: true, ignored, followSymlinks: false });
    watcher = current;
    current.on('add', (path) => touched(path, false));
    current.on('change', (path) => touched(path, true));
    current.on('unlink', (path) => touched(path, false));
    current.on('addDir', () => {
      builder.rescan();
      schedule();
    });
    current.on('unlinkDir', (path) => {
      builder.rescan();
      if (path === builder.root) rootGone();
      else schedule();
    });
    current.on('error', (error) => {
      if (!rootGone()) options.onError(error);
    });
    return new Promise<void>((resolve) => current.once('ready', () => resolve()));
  };
  const ready = start();

  return {
    ready,
    close(): Promise<void> {
      closing ??= (async () => {
        closed = true;
        clearTimeout(timer);
        clearInterval(poll);
        for (const handle of rechecks.values()) clearTimeout(handle);
        rechecks.clear();
        await watcher?.close();
      })();
      return closing;
    },
  };
}

// The local build cache in the store's builds/ folder (written by src/build/cache.ts): transforms
// by file content and whole-build records by folder. Both are caches a local run rebuilds from the
// folder, so prune removes what has not been written or used for BUILD_MAX_IDLE_MS (a record a
// start reads is marked used at most once a day).
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { StoreContext } from './context.ts';

export const BUILD_MAX_IDLE_MS: number = 30 * 24 * 3600 * 1000;

/** Removes build cache files idle for BUILD_MAX_IDLE_MS; their count (with dryRun: what would go). */
export function pruneBuilds(context: StoreContext, dryRun: boolean, now: number = Date.now()): number {
  const root = join(context.dir, 'builds');
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(root, { recursive: true }) as string[];
  } catch {
    return 0;
  }
  for (const name of names) {
    const path = join(root, name);
    try {
      const stats = statSync(path);
      if (!stats.isFile() || now - stats.mtimeMs < BUILD_MAX_IDLE_MS) continue;
      if (!dryRun) rmSync(path, { force: true });
      removed += 1;
    } catch {
      // Gone already.
    }
  }
  return removed;
}

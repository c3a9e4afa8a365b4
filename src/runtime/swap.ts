// Planning a swap: given the module versions running now and the next manifest, which modules
// get a new version (the changed ones, and importers that must re-run up to an accepting
// boundary), which accept callbacks take the new versions, and whether the change reaches a
// root that nothing accepts. Pure: the transaction itself is the registry's.
import type { Manifest, ModuleRecord } from '../snapshot/index.ts';
import type { HotHandlers } from './hot.ts';

export interface PlannedModule {
  readonly path: string;
  readonly record: ModuleRecord;
  readonly hot: HotHandlers;
}

export interface SwapPlan {
  /** Loaded modules whose record differs in the next manifest (or that it no longer has). */
  readonly changed: readonly string[];
  /** Modules that get a new version: the changed ones still in the manifest, and importers that re-run. */
  readonly rerun: ReadonlySet<string>;
  /** Modules whose own accept callbacks take their new version. */
  readonly selfAccepted: readonly string[];
  /** Importers that take new versions of their dependencies: importer → accept entries to call. */
  readonly depAccepted: ReadonlyMap<string, readonly number[]>;
  /** Roots (no importer) that a change reached without any module accepting it. */
  readonly unaccepted: readonly string[];
  /** A module that declined updates and that a change reached. */
  readonly declined: string | null;
  /** Loaded modules the next manifest no longer has. */
  readonly removed: readonly string[];
}

/**
 * Whether a module is unchanged: the same blob (its exports, star exports, indirect exports and
 * top-level await follow from the code) imported from the same places. A local build reuses the
 * record object of an unchanged file, so identity answers most of the time.
 */
function sameRecord(a: ModuleRecord, b: ModuleRecord | undefined): boolean {
  if (b === undefined) return false;
  if (a === b) return true;
  return a.blob.hash === b.blob.hash && JSON.stringify(a.imports) === JSON.stringify(b.imports) && JSON.stringify(a.error) === JSON.stringify(b.error);
}

/** What the planner needs of the loaded modules. */
export interface LoadedModules {
  paths(): Iterable<string>;
  get(path: string): PlannedModule | undefined;
  /** Loaded modules that import `path` statically. */
  importers(path: string): Iterable<string>;
}

export function planSwap(loaded: LoadedModules, next: Manifest, forced: readonly string[] = []): SwapPlan {
  const changed: string[] = [];
  const removed: string[] = [];
  for (const path of loaded.paths()) {
    const record = Object.hasOwn(next.modules, path) ? next.modules[path] : undefined;
    if (!record) removed.push(path);
    else if (!sameRecord(loaded.get(path)!.record, record)) changed.push(path);
  }
  const changedSet = new Set([...changed, ...removed]);
  const rerun = new Set<string>();
  const selfAccepted: string[] = [];
  const depAccepted = new Map<string, number[]>();
  const unaccepted: string[] = [];
  let declined: string | null = null;
  const visited = new Set<string>();

  const propagate = (path: string, invalidated = false): void => {
    if (visited.has(path)) return;
    visited.add(path);
    const module = loaded.get(path)!;
    if (Object.hasOwn(next.modules, path)) rerun.add(path);
    if (module.hot.declined) declined ??= path;
    // A module that accepts itself takes its new version; one that re-runs only because a
    // dependency changed takes it too (its code is the same: it re-evaluates in place). One that
    // invalidated itself asks its importers to take it instead.
    if (module.hot.selfAccept && !invalidated) {
      selfAccepted.push(path);
      return;
    }
    const above = [...loaded.importers(path)];
    if (above.length === 0) {
      unaccepted.push(path);
      return;
    }
    for (const importer of above) {
      const hot = loaded.get(importer)!.hot;
      const entries: number[] = [];
      hot.depAccepts.forEach((entry, index) => {
        if (entry.deps.includes(path)) entries.push(index);
      });
      // An importer that changes itself re-runs anyway: its old accept callbacks do not apply.
      if (entries.length > 0 && !changedSet.has(importer)) {
        const list = depAccepted.get(importer) ?? [];
        for (const index of entries) if (!list.includes(index)) list.push(index);
        depAccepted.set(importer, list);
      } else {
        propagate(importer);
      }
    }
  };
  for (const path of changed) propagate(path);
  for (const path of forced) if (loaded.get(path) && !changedSet.has(path)) propagate(path, true);
  for (const path of removed) {
    // A removed module's importers changed too (their imports no longer name it), and they
    // propagate as changed modules; the removed module itself is pruned once nothing imports it.
    for (const importer of loaded.importers(path)) if (!visited.has(importer)) propagate(importer);
  }
  return { changed, rerun, selfAccepted, depAccepted, unaccepted, declined, removed };
}

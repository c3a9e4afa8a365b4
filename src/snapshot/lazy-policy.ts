// Which imports lazy mode defers: one decision shared by the registry (which evaluates a lazy
// import's module at the first read of a binding) and the local builder (which leaves a lazy
// import's graph unbuilt until then), so the two never disagree about an edge.
import { staticClosure, type ImportRecord, type ModuleRecord } from './manifest.ts';

/** Imports that stay eager in lazy mode. */
export interface EagerRules {
  /** Exact specifiers as written, or module paths in the snapshot (`lib/db.ts`). */
  readonly modules?: readonly string[];
  /** Specifier or module-path prefixes (`./vendor/`, `lib/`). */
  readonly prefixes?: readonly string[];
  /** Called with the importing module's path and the specifier: true keeps the import eager. */
  readonly filter?: (importer: string, specifier: string) => boolean;
}

export interface LazyPolicy {
  /** `normal`: imports of live modules wait for a first read; `all`: packages' too (named and default imports). */
  readonly lazy: 'none' | 'normal' | 'all';
  readonly eager?: EagerRules;
}

export interface LazyDecision {
  readonly lazy: boolean;
  /** Why an import lazy mode could defer stays eager (the load report shows it). */
  readonly reason?: string;
}

/**
 * Whether import `index` of `importer` (its record, or the fields of it this needs) is lazy under
 * `policy`, leaving one question to the caller: a live module's import is lazy only if the graph
 * below its target has no top-level await.
 */
export function lazyEdge(policy: LazyPolicy, importer: Pick<ModuleRecord, 'star' | 'indirect'> & { readonly imports: readonly Omit<ImportRecord, 'kind' | 'module'>[] }, index: number, importerPath: string, kind: ImportRecord['kind'], target: string | undefined): LazyDecision {
  if (policy.lazy === 'none') return { lazy: false };
  const entry = importer.imports[index]!;
  if (entry.phase !== undefined || entry.dynamic || entry.defer === true) return { lazy: false };
  if (kind === 'external') {
    if (policy.lazy !== 'all') return { lazy: false };
    if (entry.attributes !== undefined) return { lazy: false, reason: 'import attributes' };
    // A namespace's names are the package's, unknown until it loads.
    if (entry.names.includes('*')) return { lazy: false, reason: 'namespace import of a package' };
  } else if (kind !== 'module') {
    return { lazy: false };
  }
  if (entry.names.length === 0) return { lazy: false, reason: 'side-effect import' };
  const eager = policy.eager;
  if (eager) {
    const path = target ?? entry.specifier;
    if (eager.modules?.includes(entry.specifier) || eager.modules?.includes(path)) return { lazy: false, reason: 'eager rule: modules' };
    if (eager.prefixes?.some((prefix) => entry.specifier.startsWith(prefix) || path.startsWith(prefix))) return { lazy: false, reason: 'eager rule: prefixes' };
    if (eager.filter?.(importerPath, entry.specifier) === true) return { lazy: false, reason: 'eager rule: filter' };
  }
  // A re-export shows the binding on the importer's own face, read without the trigger.
  if (importer.star.includes(index) || (importer.indirect && Object.values(importer.indirect).some(([at]) => at === index))) return { lazy: false, reason: 're-export' };
  return { lazy: true };
}

/** What of a policy changes which imports a build defers (a build record's key takes it in; a builder does not defer under a filter function). */
export function policyKey(policy: LazyPolicy | null): unknown {
  if (policy === null || policy.lazy === 'none') return null;
  const { modules, prefixes } = policy.eager ?? {};
  return [policy.lazy, modules ?? [], prefixes ?? []];
}

/**
 * The modules whose static graph (imports other than `import()`) has top-level await: a module
 * has it when it or a module it imports has. A module `modules` does not hold counts as having it
 * when `unknownHasTla` says so. Linear, and without recursion (graphs can be deep).
 */
export function withTlaBelow(modules: Readonly<Record<string, ModuleRecord>>, unknownHasTla: (path: string) => boolean = () => false): Set<string> {
  const importers = new Map<string, string[]>();
  const queue: string[] = [];
  for (const [path, record] of Object.entries(modules)) {
    if (record.tla) queue.push(path);
    for (const entry of record.imports) {
      if (entry.dynamic || entry.kind !== 'module' || entry.module === undefined) continue;
      let list = importers.get(entry.module);
      if (!list) importers.set(entry.module, (list = []));
      list.push(path);
      if (!Object.hasOwn(modules, entry.module) && unknownHasTla(entry.module)) queue.push(entry.module);
    }
  }
  const found = new Set<string>();
  for (let at = 0; at < queue.length; at += 1) {
    const path = queue[at]!;
    if (found.has(path)) continue;
    found.add(path);
    for (const importer of importers.get(path) ?? []) queue.push(importer);
  }
  return found;
}

/**
 * What `roots` reach through static imports that `policy` does not make lazy (a lazy import
 * whose target has top-level await below it stays eager): what a start loads. The rest of the
 * static graph waits for a first read.
 */
export function eagerClosure(manifest: { readonly modules: Readonly<Record<string, ModuleRecord>> }, roots: Iterable<string>, policy: LazyPolicy): Set<string> {
  const tla = withTlaBelow(manifest.modules);
  return staticClosure(manifest, roots, (path, record, index) => {
    const target = record.imports[index]!.module!;
    return tla.has(target) || !lazyEdge(policy, record, index, path, 'module', target).lazy;
  });
}

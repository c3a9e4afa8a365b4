// Which imports lazy mode defers: one decision shared by the registry (which evaluates a lazy
// import's module at the first read of a binding) and the local builder (which leaves a lazy
// import's graph unbuilt until then), so the two never disagree about an edge.
import type { ImportRecord, ModuleRecord } from './manifest.ts';

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

/** What of a policy changes which imports a build defers (a build record's key takes it in). */
export function policyKey(policy: LazyPolicy | null): unknown {
  if (policy === null || policy.lazy === 'none') return null;
  const { modules, prefixes, filter } = policy.eager ?? {};
  return [policy.lazy, modules ?? [], prefixes ?? [], filter ? String(filter) : null];
}

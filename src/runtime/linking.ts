// Export resolution as the spec defines it (ResolveExport and GetExportedNames of Source Text
// Module Records), over manifest records: a module's own exports are `exports` minus
// `indirect`, its indirect exports are `indirect`, its star exports are `star`. Externals are
// Node's own modules: their names are their namespace's keys.
//
// A binding's identity is its module and the name it is exported under there (or the module's
// namespace). The spec compares local names; the manifest records export names, so two export
// names of one local binding offered by two star sources count as two bindings (ambiguous)
// where the spec sees one. docs/protocol.md lists this.
import type { ImportRecord, ModuleRecord } from '../snapshot/index.ts';

export interface Binding {
  /** A module path, or `external:<url>` for an external. */
  readonly module: string;
  /** The export name there, or null for the module's namespace (`export * as ns`). */
  readonly name: string | null;
  /** With name null: the namespace was imported with `import defer` (its deferred namespace). */
  readonly deferred?: boolean;
}

export type Resolution = Binding | null | 'ambiguous';

export interface LinkGraph {
  record(path: string): ModuleRecord;
  /** Whether the snapshot linked holds `path` (a local build may leave a lazily imported module unbuilt). */
  has(path: string): boolean;
  /** An external import's identity (`external:<resolved url>`) and export names. */
  external(entry: ImportRecord): { readonly key: string; readonly names: readonly string[] };
}

type Target = { readonly kind: 'module'; readonly path: string } | { readonly kind: 'external'; readonly key: string; readonly names: readonly string[] };

export class Linker {
  private readonly graph: LinkGraph;
  private readonly resolved = new Map<string, Resolution>();
  private readonly namespaceNames = new Map<string, readonly string[]>();

  constructor(graph: LinkGraph) {
    this.graph = graph;
  }

  /** Whether the snapshot linked holds the module at `path`. */
  has(path: string): boolean {
    return this.graph.has(path);
  }

  private target(entry: ImportRecord): Target {
    if (entry.kind === 'module') return { kind: 'module', path: entry.module! };
    return { kind: 'external', ...this.graph.external(entry) };
  }

  private resolveIn(target: Target, name: string, resolveSet: Binding[]): Resolution {
    if (target.kind === 'external') return target.names.includes(name) ? { module: target.key, name } : null;
    return this.resolve(target.path, name, resolveSet);
  }

  /** ResolveExport(name) of a live module, with a fresh resolve set; cached. */
  resolveExport(path: string, name: string): Resolution {
    const key = `${path}\0${name}`;
    let resolution = this.resolved.get(key);
    if (resolution === undefined && !this.resolved.has(key)) {
      resolution = this.resolve(path, name, []);
      this.resolved.set(key, resolution);
    }
    return resolution ?? null;
  }

  private resolve(path: string, name: string, resolveSet: Binding[]): Resolution {
    // A circular import request: the name resolves to nothing along this path.
    if (resolveSet.some((seen) => seen.module === path && seen.name === name)) return null;
    resolveSet.push({ module: path, name });
    const record = this.graph.record(path);
    const forward = record.indirect && Object.hasOwn(record.indirect, name) ? record.indirect[name] : undefined;
    if (forward) {
      const entry = record.imports[forward[0]]!;
      const target = this.target(entry);
      if (forward[1] === '*') return { module: target.kind === 'module' ? target.path : target.key, name: null, ...(entry.defer && target.kind === 'module' ? { deferred: true } : {}) };
      return this.resolveIn(target, forward[1], resolveSet);
    }
    if (record.exports.includes(name)) return { module: path, name };
    if (name === 'default') return null;
    let found: Binding | null = null;
    for (const index of record.star) {
      const resolution = this.resolveIn(this.target(record.imports[index]!), name, resolveSet);
      if (resolution === 'ambiguous') return 'ambiguous';
      if (resolution === null) continue;
      if (found === null) found = resolution;
      else if (found.module !== resolution.module || found.name !== resolution.name) return 'ambiguous';
    }
    return found;
  }

  /** GetExportedNames of a live module. */
  private exportedNames(path: string, starSet: Set<string>, into: Set<string>): void {
    if (starSet.has(path)) return;
    starSet.add(path);
    const record = this.graph.record(path);
    for (const name of record.exports) into.add(name);
    for (const index of record.star) {
      const target = this.target(record.imports[index]!);
      const names = new Set<string>();
      if (target.kind === 'module') this.exportedNames(target.path, starSet, names);
      else for (const name of target.names) names.add(name);
      for (const name of names) if (name !== 'default') into.add(name);
    }
  }

  /** The names of a module's namespace, sorted: exported names that resolve unambiguously. */
  names(path: string): readonly string[] {
    let names = this.namespaceNames.get(path);
    if (!names) {
      const all = new Set<string>();
      this.exportedNames(path, new Set(), all);
      const resolved = [...all].filter((name) => {
        const resolution = this.resolveExport(path, name);
        return resolution !== null && resolution !== 'ambiguous';
      });
      // Usually sorted already (the builder lists a module's exports sorted): sort copies the array, 1.7 MB of a 2,000-module start.
      if (!inOrder(resolved)) resolved.sort();
      names = resolved;
      this.namespaceNames.set(path, names);
    }
    return names;
  }

  /** For a name a module gets through `export *`: the index of the star import that provides it. */
  starSource(path: string, name: string): number {
    const record = this.graph.record(path);
    for (const index of record.star) {
      const resolution = this.resolveIn(this.target(record.imports[index]!), name, []);
      if (resolution !== null && resolution !== 'ambiguous') return index;
    }
    return -1;
  }
}

/** Whether `names` is in the order sort() gives strings (UTF-16 code units); a Set's names are distinct. */
function inOrder(names: readonly string[]): boolean {
  for (let index = 1; index < names.length; index += 1) if (names[index - 1]! > names[index]!) return false;
  return true;
}

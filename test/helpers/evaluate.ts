// A minimal linker over a build result, for testing the module format itself: instantiates a
// snapshot's modules (first next() of each generator), then evaluates them depth-first in
// ES module order (second next()). The real registry (src/runtime) adds swaps, lazy
// namespaces and externals; this stays small on purpose.
import { compileModule } from '../../src/runtime/compile.ts';
import type { SnapshotContent } from '../../src/snapshot/index.ts';

type ModuleGenerator = ReturnType<ReturnType<typeof compileModule>>;

export interface Evaluated {
  namespaces: Map<string, Record<string, unknown>>;
  run(path: string): Promise<Record<string, unknown>>;
}

export function evaluator(content: SnapshotContent, externals: Record<string, unknown> = {}): Evaluated {
  const namespaces = new Map<string, Record<string, unknown>>();
  const generators = new Map<string, ModuleGenerator>();
  const evaluated = new Set<string>();

  const namespaceOf = (path: string): Record<string, unknown> => {
    let namespace = namespaces.get(path);
    if (!namespace) {
      namespace = Object.create(null) as Record<string, unknown>;
      namespaces.set(path, namespace);
    }
    return namespace;
  };

  const instantiate = async (path: string): Promise<void> => {
    if (generators.has(path)) return;
    const record = content.modules[path];
    if (!record) throw new Error(`no module ${path}`);
    const namespace = namespaceOf(path);
    const params: unknown[] = [];
    for (const entry of record.imports) {
      if (entry.dynamic) continue;
      if (entry.kind === 'module') params.push(namespaceOf(entry.module!));
      else if (entry.kind === 'external') params.push(externals[entry.specifier] ?? (await import(entry.specifier)));
      else throw Object.assign(new Error(`Cannot find module '${entry.specifier}' imported from ${path}:${entry.line}`), { code: 'ERR_MODULE_NOT_FOUND' });
    }
    const code = content.blobs.get(record.blob.hash)!.toString('utf8');
    const context = {
      x(getters: Record<string, () => unknown>) {
        for (const [name, get] of Object.entries(getters)) Object.defineProperty(namespace, name, { get, enumerable: true });
      },
      meta: { url: `livemod:///${path}` },
      import: async (specifier: string) => {
        const target = record.imports.find((entry) => entry.specifier === specifier);
        if (target?.kind === 'module') return run(target.module!);
        return import(specifier);
      },
    };
    const generator = compileModule(code, params.length, path, record.tla)(context, ...params);
    generators.set(path, generator);
    await generator.next();
    for (const entry of record.imports) if (entry.kind === 'module' && !entry.dynamic) await instantiate(entry.module!);
    for (const index of record.star) {
      const entry = record.imports[index]!;
      const source = entry.kind === 'module' ? namespaceOf(entry.module!) : (externals[entry.specifier] as Record<string, unknown>);
      for (const name of Object.keys(source)) {
        if (name !== 'default' && !Object.hasOwn(namespace, name)) Object.defineProperty(namespace, name, { get: () => source[name], enumerable: true });
      }
    }
  };

  const evaluate = async (path: string): Promise<void> => {
    if (evaluated.has(path)) return;
    evaluated.add(path);
    for (const entry of content.modules[path]!.imports) if (entry.kind === 'module' && !entry.dynamic) await evaluate(entry.module!);
    await generators.get(path)!.next();
  };

  const run = async (path: string): Promise<Record<string, unknown>> => {
    await instantiate(path);
    await evaluate(path);
    return namespaceOf(path);
  };
  return { namespaces, run };
}

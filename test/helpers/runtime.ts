import { pathToFileURL } from 'node:url';
import { localSource } from '../../src/client/local.ts';
import { Registry, type EagerRules, type ModuleSource, type Namespace } from '../../src/runtime/index.ts';
import { generatePublisherKey, signSnapshot, type SnapshotContent } from '../../src/snapshot/index.ts';
import { tempDir, writeFiles } from './fs.ts';

/** Writes a tree to a temp folder and returns a registry over its local build. */
export function registryFor(t: Parameters<typeof tempDir>[0], files: Record<string, string>, externals: Record<string, string> = {}, options: { lazy?: 'none' | 'normal' | 'all'; eager?: EagerRules; report?: boolean } = {}): { registry: Registry; dir: string; run(path: string): Promise<Namespace> } {
  const dir = tempDir(t);
  writeFiles(dir, files);
  const program = tempDir(t);
  writeFiles(program, externals);
  const registry = new Registry(localSource(dir), { externalsFrom: `${pathToFileURL(program).href}/`, ...options });
  return { registry, dir, run: (path) => registry.import(path) };
}

/** A registry over built snapshot content, its modules at `livemod:///<path>`. */
export function evaluator(content: SnapshotContent): { registry: Registry; run(path: string): Promise<Namespace> } {
  const snapshot = signSnapshot(content, generatePublisherKey());
  const source: ModuleSource = {
    manifest: snapshot.manifest,
    base: 'livemod:///',
    blob: (hash) => content.blobs.get(hash)!,
    map: (hash) => content.blobs.get(hash)?.toString('utf8') ?? null,
  };
  const registry = new Registry(source);
  return { registry, run: (path) => registry.import(path) };
}

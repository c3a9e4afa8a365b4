// The package as users install it: every module livemod's own code imports at run time is a
// dependency (not a devDependency), and the exports map and bin point at files that exist.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; exports: Record<string, unknown>; bin: Record<string, string>; files: string[] };

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

test('every package src/ imports or requires at run time is a dependency', () => {
  const used = new Set<string>();
  for (const entry of readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const text = readFileSync(join(entry.parentPath, entry.name), 'utf8');
    // Value imports only: `import type` is erased from the build.
    for (const match of text.matchAll(/^import (?!type )[^;]*? from '([^'.][^']*)';/gm)) used.add(match[1]!);
    for (const match of text.matchAll(/(?<![.\w])(?:require|import)\('([^'.][^']*)'\)/g)) used.add(match[1]!);
  }
  const missing = [...used].filter((specifier) => !specifier.startsWith('node:') && !builtinModules.includes(specifier)).map(packageName).filter((name) => !Object.hasOwn(pkg.dependencies, name));
  assert.deepEqual([...new Set(missing)], [], 'imported at run time but not in dependencies');
});

test('the exports map, bin and files name what the package really holds', () => {
  // Targets are the string values of the map, at any depth of conditions; keys are subpaths.
  const targets: string[] = [];
  const collect = (value: unknown): void => {
    if (typeof value === 'string') targets.push(value);
    else if (value && typeof value === 'object') for (const inner of Object.values(value)) collect(inner);
  };
  collect(pkg.exports);
  assert.ok(targets.length > 0);
  for (const target of targets) {
    const source = target.replace(/^\.\/dist\//, './src/').replace(/\.d\.ts$/, '.ts').replace(/\.js$/, '.ts');
    assert.ok(existsSync(join(root, target)) || existsSync(join(root, source)), `exports target ${target} (or its source) exists`);
    assert.ok(pkg.files.some((folder) => target.startsWith(`./${folder}`)) || target === './package.json', `${target} is in "files"`);
  }
  for (const bin of Object.values(pkg.bin)) assert.ok(existsSync(join(root, bin)), `bin ${bin} exists`);
});

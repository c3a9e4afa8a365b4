// Finds test262's tests and reads each one's frontmatter (the YAML between `/*---` and
// `---*/`), as the suite's INTERPRETING.md describes it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';

export type Goal = 'module' | 'script';
export type NegativePhase = 'parse' | 'resolution' | 'runtime';

export interface TestCase {
  /** Relative to the suite's root with `/` separators, e.g. `test/language/module-code/eval-self-once.js`: the key in every list. */
  readonly path: string;
  readonly file: string;
  readonly goal: Goal;
  readonly flags: readonly string[];
  readonly includes: readonly string[];
  readonly features: readonly string[];
  readonly negative: { readonly phase: NegativePhase; readonly type: string } | null;
  readonly async: boolean;
}

export const REPO_ROOT: string = fileURLToPath(new URL('../../', import.meta.url));

/** `TEST262_DIR`, else the shared copy beside the repository (`../shared/test262`, as CI lays it out too). */
export function suiteDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(REPO_ROOT, env.TEST262_DIR ?? '../shared/test262');
}

export function suiteExists(dir: string): boolean {
  return existsSync(join(dir, 'test')) && existsSync(join(dir, 'harness', 'assert.js'));
}

function stringList(value: unknown, field: string, path: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw new Error(`[test262] ${path}: frontmatter \`${field}\` is not a list of strings`);
  return value;
}

function negativeOf(value: unknown, path: string): TestCase['negative'] {
  if (value === undefined || value === null) return null;
  const { phase, type } = value as { phase?: unknown; type?: unknown };
  if ((phase !== 'parse' && phase !== 'resolution' && phase !== 'runtime') || typeof type !== 'string') {
    throw new Error(`[test262] ${path}: frontmatter \`negative\` needs a phase (parse, resolution or runtime) and a type`);
  }
  return { phase, type };
}

export function parseTest(file: string, path: string, source: string = readFileSync(file, 'utf8')): TestCase {
  const match = /\/\*---([\s\S]*?)---\*\//.exec(source);
  if (!match) throw new Error(`[test262] ${path} has no frontmatter (/*--- … ---*/); a file that is not a test needs _FIXTURE in its name`);
  const meta = (yaml.load(match[1]!) ?? {}) as Record<string, unknown>;
  const flags = stringList(meta.flags, 'flags', path);
  return {
    path,
    file,
    goal: flags.includes('module') ? 'module' : 'script',
    flags,
    includes: stringList(meta.includes, 'includes', path),
    features: stringList(meta.features, 'features', path),
    negative: negativeOf(meta.negative, path),
    async: flags.includes('async'),
  };
}

/** Whether `path` is selected by any of the prefixes (all paths when there are none); `test/` may be left off. */
export function selected(path: string, prefixes: readonly string[]): boolean {
  if (prefixes.length === 0) return true;
  return prefixes.some((prefix) => path.startsWith(prefix) || path.startsWith(`test/${prefix}`));
}

/** Every test under `<dir>/test` in path order; files named `_FIXTURE` are imported by tests, not tests. */
export function listTests(dir: string, prefixes: readonly string[] = []): TestCase[] {
  const root = join(dir, 'test');
  const tests: TestCase[] = [];
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.js') || entry.name.includes('_FIXTURE')) continue;
    const file = join(entry.parentPath, entry.name);
    const path = `test/${file.slice(root.length + 1).split(sep).join('/')}`;
    if (selected(path, prefixes)) tests.push(parseTest(file, path));
  }
  return tests.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A filter given as a path (absolute, or relative to the working directory) becomes a suite path prefix. */
export function normalizePrefix(prefix: string, dir: string): string {
  const absolute = resolve(prefix);
  if (absolute.startsWith(dir + sep)) {
    const relative = absolute.slice(dir.length + 1).split(sep).join('/');
    return prefix.endsWith('/') ? `${relative}/` : relative;
  }
  return prefix.replace(/^\.\//, '');
}

// A deterministic TypeScript module graph for tests and benches: the same seed and count always
// write the same bytes, so a test's snapshot (and a bench's numbers) can be reproduced exactly.
// Shaped like the trees livemod must carry: nested folders, every module importing 1–3 earlier
// ones (so the graph is acyclic and each module's dependencies exist before it), type
// annotations to strip, some `export *`, some extensionless specifiers, and one main.ts that
// imports every leaf (a module nothing else imports), so the whole graph is reachable.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';

export interface TreeOptions {
  readonly seed: number;
  /** Share of relative imports written without an extension (livemod resolves them; Node does not). Default 0.1. */
  readonly extensionless?: number;
}

export interface GeneratedTree {
  /** Module paths (posix, relative to the folder), main.ts last. */
  readonly modules: readonly string[];
  readonly entry: 'main.ts';
  /** Sum of the source files' sizes. */
  readonly bytes: number;
  /** What `main()` in main.ts returns, so a runtime test can check the whole graph evaluated. */
  readonly expected: number;
}

/** mulberry32: tiny, fast and good enough to pick imports; not for anything secret. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function modulePath(index: number): string {
  // Up to 10 folders of up to 10 subfolders: deep enough for `../` specifiers, flat enough to read.
  const id = String(index).padStart(4, '0');
  return `lib/d${index % 10}/s${Math.floor(index / 10) % 10}/m${id}.ts`;
}

function specifier(from: string, to: string, extensionless: boolean): string {
  let relative = posix.relative(posix.dirname(from), to);
  if (!relative.startsWith('.')) relative = `./${relative}`;
  return extensionless ? relative.replace(/\.ts$/, '') : relative;
}

/** Writes `count` modules plus main.ts into `dir` (created if needed) and describes them. */
export function generateTree(dir: string, count: number, options: TreeOptions): GeneratedTree {
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`count must be a positive integer, not ${count}`);
  const next = random(options.seed);
  const extensionless = options.extensionless ?? 0.1;
  const modules: string[] = [];
  const imported = new Set<number>();
  // value(i) = what f_i(1) returns; main sums the leaves' values, so the sum checks evaluation order and bindings.
  const values: number[] = [];
  let bytes = 0;
  const write = (path: string, text: string): void => {
    const file = join(dir, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    bytes += Buffer.byteLength(text);
    modules.push(path);
  };

  for (let index = 0; index < count; index += 1) {
    const path = modulePath(index);
    const deps = new Set<number>();
    if (index > 0) {
      const wanted = 1 + Math.floor(next() * 3);
      // Half the picks from the last 50 modules, so the graph has long chains as well as wide fan-in.
      for (let pick = 0; pick < wanted; pick += 1) {
        const recent = next() < 0.5;
        const low = recent ? Math.max(0, index - 50) : 0;
        deps.add(low + Math.floor(next() * (index - low)));
      }
    }
    const lines = [`// Generated module ${index} (seed ${options.seed}).`];
    const ordered = [...deps].sort((a, b) => a - b);
    for (const dep of ordered) {
      imported.add(dep);
      lines.push(`import { f${dep}, c${dep} } from '${specifier(path, modulePath(dep), next() < extensionless)}';`);
    }
    const star = ordered.length > 0 && next() < 0.2 ? ordered[0]! : null;
    if (star !== null) lines.push(`export * from '${specifier(path, modulePath(star), false)}';`);
    const base = (index % 7) + 1;
    const sum = ordered.map((dep) => `f${dep}(x) + c${dep}`).join(' + ') || '0';
    lines.push(
      '',
      `export interface Shape${index} {`,
      '  readonly id: number;',
      '  readonly label: string;',
      '}',
      '',
      `export const c${index}: number = ${base};`,
      '',
      `/** Value of module ${index}: its constant plus its dependencies' values, mod 1000. */`,
      // Memoised: the graph is a DAG with much fan-in, so plain recursion would make main() call
      // a number of functions exponential in the depth (billions at 2,000 modules).
      `const memo${index} = new Map<number, number>();`,
      `export function f${index}(x: number): number {`,
      `  let value = memo${index}.get(x);`,
      `  if (value === undefined) memo${index}.set(x, (value = (c${index} * x + ${sum}) % 1000));`,
      '  return value;',
      '}',
      '',
      `export function describe${index}(shape: Shape${index}): string {`,
      `  return \`\${shape.label}#\${shape.id} of module ${index}\`;`,
      '}',
      '',
    );
    values.push(ordered.reduce((total, dep) => total + values[dep]! + (dep % 7) + 1, base) % 1000);
    write(path, lines.join('\n'));
  }

  const leaves = [...Array(count).keys()].filter((index) => !imported.has(index));
  const main = ['// Generated entry: imports every leaf, so the whole graph loads.'];
  for (const leaf of leaves) main.push(`import { f${leaf} } from '${specifier('main.ts', modulePath(leaf), false)}';`);
  main.push('', 'export function main(): number {', `  return ${leaves.map((leaf) => `f${leaf}(1)`).join(' + ')};`, '}', '');
  write('main.ts', main.join('\n'));
  return { modules, entry: 'main.ts', bytes, expected: leaves.reduce((total, leaf) => total + values[leaf]!, 0) };
}

// Where livemod's own files are, for the few places that must name one (its package.json, the
// entry `import 'livemod'` resolves to, the worker entry, the demo's example). The package's
// root is found from this module's URL by walking up to livemod's package.json, so the answer
// is the same whichever way the code is laid out: src/ in a checkout running TypeScript, or
// dist/ as the bundler writes it (entries at fixed paths, shared code in dist/chunks/).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Whether livemod runs from its TypeScript sources (src/) rather than its build (dist/). */
export const FROM_SOURCE: boolean = import.meta.url.endsWith('.ts');

function findPackage(): { root: URL; version: string } {
  let dir = new URL('./', import.meta.url);
  for (;;) {
    const file = new URL('package.json', dir);
    // Looked for before it is read: a failed read builds an error with a stack, twice per start (dist/chunks/, dist/).
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown; bin?: unknown };
        // By name, or by the command it installs (a fork or a scoped copy keeps the `livemod` bin).
        const bin = typeof pkg.bin === 'object' && pkg.bin !== null && Object.hasOwn(pkg.bin, 'livemod');
        if ((pkg.name === 'livemod' || bin) && typeof pkg.version === 'string') return { root: dir, version: pkg.version };
      } catch {
        // Not one that parses: keep walking up.
      }
    }
    const up = new URL('../', dir);
    if (up.href === dir.href) throw new Error(`livemod's package.json was not found above ${fileURLToPath(import.meta.url)}; the installed package is damaged, reinstall it`);
    dir = up;
  }
}

const found = findPackage();

/** The package's root folder, as a file: URL ending in `/`. */
export const PACKAGE_ROOT: URL = found.root;
/** The package's version, from its package.json. */
export const PACKAGE_VERSION: string = found.version;
/** The folder of the code that runs: src/ or dist/. */
export const CODE_DIR: URL = new URL(FROM_SOURCE ? 'src/' : 'dist/', PACKAGE_ROOT);

/** The file of one of livemod's entry modules, named as under src/ without extension (`client/child-entry`). */
export function ownEntry(name: string): URL {
  return new URL(`${name}.${FROM_SOURCE ? 'ts' : 'js'}`, CODE_DIR);
}

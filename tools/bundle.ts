// `npm run build`: dist/ as the package runs it. The code is bundled (rolldown) into entry
// files — dist/index.js (`import 'livemod'`), dist/hot.js, dist/cli/main.js (the command),
// dist/client/child-entry.js (workers and forked children), dist/client/fetch-worker.js (a
// lazily imported graph fetched while its first read waits) and dist/service/supervisor-entry.js
// (a service's supervisor) — plus the chunks they share in
// dist/chunks/: `shared`, `core` and `client` (what a `livemod run` loads, see codeSplitting
// below), and each other command's code its own chunk as the CLI loads it. A few modules instead
// of one per source file: Node's ESM loader resolves, reads and links about 115 fewer modules on
// every start, which measured about 40 ms of a `livemod run`, and the groups about 10–15 ms more
// (docs/benchmarks.md).
// Dependencies stay packages (external), except commander (see `external` below). Then tsc
// writes the type declarations (dist/**/*.d.ts).
// Exit status: tsc's, so type errors fail the build, while the JavaScript is still written.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'rolldown';
import { hashBuilderSources, RECORD_SOURCES } from '../src/build/cache.ts';

const root = new URL('../', import.meta.url);
const src = new URL('src/', root);
const dist = fileURLToPath(new URL('dist/', root));

/**
 * Node's builtins are read with `process.getBuiltinModule`, not imported. An ESM import of a
 * builtin makes Node build its namespace facade, which reads every export — lazy getters too, so
 * `node:fs` loads fs/promises, streams and watchers, and so on — where getBuiltinModule hands over
 * the module as CommonJS has it. The exports livemod takes from builtins are functions and
 * constants, read once as the chunk starts, where the import bound them. The rewrite works on
 * rolldown's output, whose imports are one statement per line at the top of each chunk.
 */
const BUILTIN_IMPORT = /^import (?:(\*\s+as\s+)?([\w$]+)(?:,\s*)?)?(?:\{([^}]*)\})?\s*(?:from\s*)?"(node:[\w/]+)";$/gm;
function builtinsAsValues(code: string): string {
  return code.replace(BUILTIN_IMPORT, (_line, _star: string | undefined, whole: string | undefined, names: string | undefined, id: string) => {
    const get = `process.getBuiltinModule(${JSON.stringify(id)})`;
    const parts: string[] = [];
    if (whole === undefined && names === undefined) return `${get};`;
    if (whole !== undefined) parts.push(`const ${whole} = ${get};`);
    if (names !== undefined) {
      const bindings = names.split(',').map((item) => item.trim()).filter(Boolean).map((item) => item.replace(/\s+as\s+/, ': '));
      // A builtin has no `default` property as getBuiltinModule returns it: such an import is the module itself.
      if (bindings.some((binding) => binding === 'default' || binding.startsWith('default:'))) throw new Error(`bundle: a chunk imports { default } from ${id}; write \`import x from '${id}'\` in src/ instead`);
      parts.push(`const { ${bindings.join(', ')} } = ${whole ?? get};`);
    }
    return parts.join(' ');
  });
}
const builtins = {
  name: 'livemod-builtins',
  renderChunk(code: string) {
    return { code: builtinsAsValues(code), map: null };
  },
  // The rewrite turns import bindings into consts, which have a temporal dead zone: between
  // chunks that import each other, a function called while the other chunk evaluates could
  // meet one. So the chunk graph must have no cycle.
  generateBundle(_options: unknown, bundle: Record<string, { type: string; imports?: string[] }>) {
    const state = new Map<string, 'open' | 'done'>();
    const visit = (name: string, path: string[]): void => {
      if (state.get(name) === 'done') return;
      if (state.get(name) === 'open') throw new Error(`bundle: the chunks import each other (${[...path, name].join(' → ')}); builtins read as consts need an acyclic chunk graph`);
      state.set(name, 'open');
      for (const next of bundle[name]?.imports ?? []) if (bundle[next]?.type === 'chunk') visit(next, [...path, name]);
      state.set(name, 'done');
    };
    for (const [name, item] of Object.entries(bundle)) if (item.type === 'chunk') visit(name, []);
  },
};

/**
 * commander requires node:child_process as it loads (about 5 ms of every command's start, with
 * the net and dgram modules it pulls in), for executable subcommands, which livemod has none of.
 * The bundled copy takes it when first used instead. The line is matched exactly: a commander
 * that no longer has it fails the build, so the change is never silently lost or misapplied.
 */
const COMMANDER_CHILD_PROCESS = "const childProcess = require('node:child_process');";
let commanderRewritten = false;
const lazyChildProcess: Plugin = {
  name: 'livemod-commander-lazy-child-process',
  buildEnd() {
    // A commander whose code moved would otherwise be bundled unchanged without a word.
    if (!commanderRewritten) throw new Error("commander's lib/command.js was not bundled: update the lazy child_process rewrite in tools/bundle.ts");
  },
  transform(code, id) {
    if (!/[\\/]commander[\\/]lib[\\/]command\.js$/.test(id)) return null;
    commanderRewritten = true;
    if (!code.includes(COMMANDER_CHILD_PROCESS)) throw new Error(`${id}: the line \`${COMMANDER_CHILD_PROCESS}\` is gone; update tools/bundle.ts`);
    // Line for line as before: each line maps to its own start.
    const lines = code.split('\n').length;
    return { code: code.replace(COMMANDER_CHILD_PROCESS, "const childProcess = { spawn: (...args) => require('node:child_process').spawn(...args) };"), map: { version: 3, sources: [id], names: [], mappings: `AAAA${';AACA'.repeat(lines - 1)}` } };
  },
};

/** What cli/main.ts imports for every command, with no dependency of its own beyond Node. */
const SHARED = /[\\/]src[\\/](?:errors|text|own|format|clock|cli[\\/](?:options|output))\.ts$/;
/** The store, the snapshot format, the sync and the protocol, and the other top-level files but the entries and lazy imports (which take the registry). */
const CORE = /[\\/]src[\\/](?:(?:store|snapshot|sync|protocol)[\\/][^\\/]+|(?!index\.ts$|hot\.ts$|lazy-)[^\\/]+)\.ts$/;
/** The client, the registry, the config, lazy imports, and the run command. */
const CLIENT = /[\\/]src[\\/](?:(?:client|runtime|config)[\\/][^\\/]+|lazy-[^\\/]+|cli[\\/]run)\.ts$/;
/** Client modules loaded only when needed (a local build) or entries of their own. */
const LAZY_CLIENT = /[\\/]client[\\/](?:local|child-entry|fetch-worker)\.ts$/;

rmSync(dist, { recursive: true, force: true });
await build({
  plugins: [builtins, lazyChildProcess],
  input: {
    index: fileURLToPath(new URL('index.ts', src)),
    hot: fileURLToPath(new URL('hot.ts', src)),
    'cli/main': fileURLToPath(new URL('cli/main.ts', src)),
    'client/child-entry': fileURLToPath(new URL('client/child-entry.ts', src)),
    'client/fetch-worker': fileURLToPath(new URL('client/fetch-worker.ts', src)),
    'service/supervisor-entry': fileURLToPath(new URL('service/supervisor-entry.ts', src)),
  },
  platform: 'node',
  // Packages and Node's builtins are imported as they are; only livemod's own files are bundled,
  // and commander: every command parses its arguments with it, and bundled it loads in about half
  // the time (one chunk from the compile cache, not six files through the CommonJS loader and
  // its export detection from ESM).
  external: (id) => !id.startsWith('.') && !id.startsWith('/') && !id.startsWith('\0') && id !== 'commander',
  transform: { define: { __LIVEMOD_BUILDER_SOURCES__: JSON.stringify(hashBuilderSources(src)), __LIVEMOD_RECORD_SOURCES__: JSON.stringify(hashBuilderSources(src, RECORD_SOURCES)) } },
  output: {
    dir: dist,
    format: 'esm',
    entryFileNames: '[name].js',
    chunkFileNames: 'chunks/[name]-[hash].js',
    sourcemap: true,
    // A few chunks for what a `livemod run` loads, not one per shared set of modules: each ES
    // module costs Node a stat, a read, a compile and a link, and the automatic split gave the run
    // path 31 of them (most under 4 KB), about 0.5 ms each. `shared` is what the command line
    // itself loads for every command (errors, options, output); `core` the store, the snapshot
    // format and the sync (a fetch worker takes it and `shared` alone); `client` the run command,
    // the client and the registry. What loads lazily stays apart: the builder, the server, the
    // service manager, the progress bar and the entries' own modules.
    codeSplitting: {
      groups: [
        { name: 'shared', priority: 3, test: (id: string) => SHARED.test(id) },
        { name: 'core', priority: 2, test: (id: string) => CORE.test(id) },
        { name: 'client', priority: 1, test: (id: string) => CLIENT.test(id) && !LAZY_CLIENT.test(id) },
      ],
    },
    // No comments in dist/ (the JSDoc of livemod and commander was 120 KB of 760): less to read
    // and decode at every start (~1-2 ms measured), and the maps still point into src/.
    comments: false,
    // Non-ASCII characters (an ellipsis or a dash in a message) escaped: one of them made the whole
    // chunk's source a two-byte string in V8, twice the memory, decoded off Node's ASCII fast path.
    charset: 'ascii',
  },
  logLevel: 'warn',
});
// The license of the bundled package travels with its code.
mkdirSync(join(dist, 'licenses'), { recursive: true });
copyFileSync(fileURLToPath(new URL('node_modules/commander/LICENSE', root)), join(dist, 'licenses', 'commander.txt'));
const tsc = spawnSync(process.execPath, [fileURLToPath(new URL('node_modules/typescript/bin/tsc', root)), '-p', fileURLToPath(new URL('tsconfig.build.json', root))], { stdio: 'inherit' });
process.exitCode = tsc.status ?? 1;

// The program every tool runs in bench/swap: a `main` that calls into a `target` module whose
// exported `value()` returns the number the bench's last edit wrote. Each tool gets the same two
// modules, wired the way its own documentation says to take new versions, and (for the tools
// that run in a child process) a host that reports each call's result on stdout, as JSON lines:
//   {"event":"value","value":N,"t":"<process.hrtime.bigint()>"}   a call of the new code returned N
//   {"event":"heap","bytes":N,"rss":N}                            answer to "heap" on stdin (after gc;
//                                                                 livemod's host adds retainedVersions)
// `t` is CLOCK_MONOTONIC in nanoseconds, the same clock in every process on the machine, so the
// driver subtracts the time it took just before its write without counting the pipe's latency.
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export type Tool = 'livemod' | 'node-watch' | 'hot-hook' | 'dynohot' | 'vite';

/** How each tool's target takes a new version (the one line that differs between tools). */
const HOT_LINE: Record<Tool, string> = {
  // Self-accepting: the importer's live binding is re-pointed at the new version.
  livemod: 'import.meta.hot?.accept();',
  dynohot: 'import.meta.hot?.accept();',
  vite: 'import.meta.hot?.accept();',
  // hot-hook has no accept: the module is a boundary (imported with `import.meta.hot?.boundary`),
  // and its dispose callback is the one sign in the program that a new version can be imported.
  'hot-hook': 'import.meta.hot?.dispose(() => globalThis.__benchChanged?.());',
  'node-watch': '',
};

/**
 * The target at value `value`, padded with a string literal of `padBytes` characters (the
 * ~10 KB module of the memory runs; the latency runs use a small one). The literal is exported
 * through `size`, so no tool or minifier can drop it. The number is padded to a fixed width so
 * every version of the file has the same length (see writeTarget).
 */
export function targetSource(tool: Tool, value: number, padBytes: number): string {
  return `const pad = ${JSON.stringify('x'.repeat(padBytes))};
export const size = pad.length;
export function value() { return ${String(value).padStart(9)}; }
${HOT_LINE[tool]}
`;
}

/**
 * Rewrites the target in place with one write(2) and no truncation: the watchers see one
 * modification and a reader never finds the file empty. writeFileSync truncates first, and a tool
 * that reads on the truncation's event loads an empty module while chokidar drops the write's own
 * event inside its 50 ms throttle (hot-hook's program then threw on the call, and Vite's runner
 * missed most edits, in a trial run); that is a robustness difference, not latency, so every tool
 * gets the clean write here.
 */
export function writeTarget(path: string, tool: Tool, value: number, padBytes: number): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, targetSource(tool, value, padBytes), 0);
  } finally {
    closeSync(fd);
  }
}

// The reporting half of every child host: plain JavaScript, because it runs inside each tool's
// own module system (hot-hook and dynohot hook its loading, Vite's runner evaluates it), where
// TypeScript would add each tool's way of stripping types to what is measured.
const PROTOCOL = `
const benchOut = (message) => process.stdout.write(JSON.stringify(message) + '\\n');
const benchReport = (value) => benchOut({ event: 'value', value, t: String(process.hrtime.bigint()) });
// "heap" on stdin: ten full collections, each followed by a task so finalizers run, then the
// main isolate's heap (--expose-gc).
process.stdin.setEncoding('utf8');
let benchInput = '';
process.stdin.on('data', async (chunk) => {
  benchInput += chunk;
  let end;
  while ((end = benchInput.indexOf('\\n')) !== -1) {
    const command = benchInput.slice(0, end);
    benchInput = benchInput.slice(end + 1);
    if (command !== 'heap') continue;
    for (let round = 0; round < 10; round += 1) {
      globalThis.gc();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const usage = process.memoryUsage();
    benchOut({ event: 'heap', bytes: usage.heapUsed, rss: usage.rss });
  }
});
`;

/** Each child tool's entry module (the file its command runs), importing `target.js`. */
const ENTRY: Record<Exclude<Tool, 'livemod'>, { file: string; source: string }> = {
  // A long-running program that prints its value on start; `node --watch` restarts it per save.
  'node-watch': {
    file: 'main.js',
    source: `import { value } from './target.js';
process.stdout.write(JSON.stringify({ event: 'value', value: value(), t: String(process.hrtime.bigint()) }) + '\\n');
setInterval(() => {}, 1 << 30);
`,
  },
  // hot-hook's documented shape: the boundary is imported dynamically, again on every use; the
  // import after a dispose callback is the first that loads the new version.
  'hot-hook': {
    file: 'main.js',
    source: `${PROTOCOL}
const load = () => import('./target.js', import.meta.hot?.boundary);
const call = async () => benchReport((await load()).value());
globalThis.__benchChanged = () => void call();
await call();
`,
  },
  // dynohot re-links static imports: after an update \`value\` is the new version's. Its message
  // event (the "Loaded N new modules…" line) is emitted once an update has been applied.
  dynohot: {
    file: 'main.js',
    source: `${PROTOCOL}
import { value } from './target.js';
import.meta.hot?.on('message', () => benchReport(value()));
benchReport(value());
`,
  },
  // Vite's runner: a static import keeps the namespace it got (the runner evaluates a new
  // version into a new exports object), so the program imports target again after
  // vite:afterUpdate, which is how an SSR server built on the runner sees new code.
  vite: {
    file: 'host.js',
    source: `${PROTOCOL}
import { createServer, createServerModuleRunner } from 'vite';
const server = await createServer({
  root: import.meta.dirname,
  configFile: false,
  appType: 'custom',
  logLevel: 'silent',
  clearScreen: false,
  server: { middlewareMode: true, ws: false },
});
const runner = createServerModuleRunner(server.environments.ssr, { hmr: { logger: false } });
globalThis.__benchReport = benchReport;
const main = await runner.import('/main.js');
benchReport(await main.call());
`,
  },
};

const VITE_MAIN = `const current = async () => (await import('./target.js')).value();
export const call = current;
import.meta.hot?.on('vite:afterUpdate', async () => globalThis.__benchReport(await current()));
`;

// livemod's program: the static import is a live binding, re-pointed by each swap.
const LIVEMOD_MAIN = `import { value } from './target.js';
export const call = () => value();
`;

export interface App {
  readonly dir: string;
  readonly target: string;
  /** The file the tool's command runs (livemod imports `main.js` itself). */
  readonly entry: string;
}

/** Writes a fresh copy of `tool`'s program into `dir` with the target at `value`. */
export function writeApp(dir: string, tool: Tool, value: number, padBytes: number): App {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // hot-hook reads its options from the nearest package.json; the rest only need "type".
  const pkg = { name: `swap-bench-${tool}`, private: true, type: 'module', ...(tool === 'hot-hook' ? { hotHook: { boundaries: ['./target.js'] } } : {}) };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  const target = join(dir, 'target.js');
  writeFileSync(target, targetSource(tool, value, padBytes));
  if (tool === 'livemod') {
    writeFileSync(join(dir, 'main.js'), LIVEMOD_MAIN);
    return { dir, target, entry: join(dir, 'main.js') };
  }
  if (tool === 'vite') writeFileSync(join(dir, 'main.js'), VITE_MAIN);
  const { file, source } = ENTRY[tool];
  writeFileSync(join(dir, file), source);
  return { dir, target, entry: join(dir, file) };
}

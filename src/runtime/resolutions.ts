// Resolutions replayed: the answers Node's resolver gave for imports and requires made from inside
// a package folder the store laid out, given again by the resolve hook (hooks.ts) on later starts
// without Node's stat, realpath and package.json reads — about a quarter of what loading a
// program's packages costs (docs/benchmarks.md). The folder never changes (store/resolutions.ts
// says why an answer inside it stays right), so what is replayed is exactly what Node would answer.
//
// A question is the parent module (relative to the folder), the specifier and the conditions;
// the answer is the URL (relative to the folder) and the format Node named. Only answers inside
// the folder are kept. Two things a resolve hook cannot see make a require's answer differ, and
// those are left to Node:
// - require.resolve(x, { paths }) asks with the same parent, specifier and conditions as
//   require(x). Only a require() is replayed: Module._load marks the request it is loading, and
//   only that request, asked next, counts as a require (require.resolve does not pass there).
// - A Module._resolveFilename that a package replaced (aliases, mocks): then no require is
//   replayed or recorded.
import type { ResolveFnOutput, ResolveHookContext } from 'node:module';

/** A folder's record: what the store read, and how to write it back. */
export interface ResolutionRecord {
  /** The folder as a file: URL ending in `/` (a real path, as Node's answers are). */
  readonly folder: string;
  /** question → answer (the store's format: path and format, newline-separated). */
  readonly entries: Map<string, string>;
  save(entries: ReadonlyMap<string, string>): void;
}

interface Followed extends ResolutionRecord {
  timer: NodeJS.Timeout | undefined;
}

/** How soon after its first new answer a record is written, besides at exit: a server runs on. */
const SAVE_AFTER_MS = 2_000;

const followed: Followed[] = [];
type Load = (request: string, parent: unknown, isMain: boolean, ...rest: unknown[]) => unknown;
interface CommonJsLoader {
  _load: Load;
  _resolveFilename: unknown;
}
let loader: CommonJsLoader | undefined;
let nodeResolveFilename: unknown;
/** The request Module._load is loading, until its resolution is asked (or it returns). */
let requiring: string | null = null;

/** Flags that change what Node's resolver answers, or add hooks and patches before livemod's. */
const RESOLVING_FLAG = /^(?:--(?:no-)?experimental-|--preserve-symlinks|--disable-|--conditions|-C$|-C=|--import|--require|-r$|--loader|--input-type|--entry-url)/;
/** Such flags whose value comes as the next argument. */
const TAKES_VALUE = new Set(['--conditions', '-C', '--import', '--require', '-r', '--loader', '--experimental-loader']);

/**
 * What Node answers under: its version and the flags that change resolution, from its command
 * line and NODE_OPTIONS (a record made under others is not replayed). Flags that change nothing
 * here (--cpu-prof, --inspect, memory sizes) do not count.
 */
export function resolutionSignature(): string {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean)];
  const kept: string[] = [];
  for (let index = 0; index < flags.length; index += 1) {
    const flag = flags[index]!;
    if (!RESOLVING_FLAG.test(flag)) continue;
    kept.push(flag);
    if (TAKES_VALUE.has(flag) && index + 1 < flags.length) kept.push(flags[(index += 1)]!);
  }
  return `${process.version} ${JSON.stringify(kept)}`;
}

/** Replays `record`'s answers from now on, and records Node's new ones inside its folder. */
export function followResolutions(record: ResolutionRecord): void {
  if (followed.some((entry) => entry.folder === record.folder)) return;
  if (loader === undefined) {
    loader = process.getBuiltinModule('node:module') as unknown as CommonJsLoader;
    nodeResolveFilename = loader._resolveFilename;
    const load = loader._load;
    loader._load = function _load(this: unknown, request: string, parent: unknown, isMain: boolean, ...rest: unknown[]): unknown {
      // An import of a CommonJS file hands over a resolution it made (`resolved`): no question follows.
      const options = rest[0] as { resolved?: unknown } | undefined;
      requiring = options?.resolved === undefined ? request : null;
      try {
        return load.call(this, request, parent, isMain, ...rest);
      } finally {
        requiring = null;
      }
    };
  }
  followed.push({ ...record, timer: undefined });
}

function added(record: Followed): void {
  if (record.timer !== undefined) return;
  const write = (): void => {
    clearTimeout(record.timer);
    record.timer = undefined;
    process.off('exit', write);
    record.save(record.entries);
  };
  record.timer = setTimeout(write, SAVE_AFTER_MS);
  record.timer.unref();
  process.on('exit', write);
}

/**
 * Node's answer to a question from inside a followed folder: replayed, or asked and recorded.
 * Undefined when the parent is in no followed folder.
 */
export function replayResolution(specifier: string, context: ResolveHookContext, next: (specifier: string, context: ResolveHookContext) => ResolveFnOutput): ResolveFnOutput | undefined {
  const parent = context.parentURL;
  const asked = requiring;
  requiring = null;
  if (parent === undefined || followed.length === 0) return undefined;
  const record = followed.find((entry) => parent.startsWith(entry.folder));
  if (record === undefined) return undefined;
  const conditions = context.conditions ?? [];
  if (conditions.includes('require') && (asked !== specifier || loader!._resolveFilename !== nodeResolveFilename)) return next(specifier, context);
  const question = `${parent.slice(record.folder.length)}\n${specifier}\n${conditions.join(',')}`;
  const answer = record.entries.get(question);
  if (answer !== undefined) {
    const newline = answer.indexOf('\n');
    const format = answer.slice(newline + 1);
    return { url: record.folder + answer.slice(0, newline), ...(format === '' ? {} : { format }), shortCircuit: true };
  }
  const result = next(specifier, context);
  const { url, format } = result;
  if (url.startsWith(record.folder) && !url.includes('?') && !url.includes('#') && (format === undefined || format === null || /^[a-z-]*$/.test(format))) {
    record.entries.set(question, `${url.slice(record.folder.length)}\n${format ?? ''}`);
    added(record);
  }
  return result;
}

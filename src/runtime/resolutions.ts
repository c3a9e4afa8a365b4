// Resolutions replayed: the answers Node's resolver gave for imports and requires made from inside
// a package folder the store laid out, given again by the resolve hook (hooks.ts) on later starts
// without Node's stat, realpath and package.json reads — about a quarter of what loading a
// program's packages costs (docs/benchmarks.md). The folder never changes (store/resolutions.ts
// says why an answer inside it stays right), so what is replayed is what Node would answer.
//
// A question is the parent module (relative to the folder), the specifier (relative or bare: an
// absolute path or URL may lead out of the folder and back) and the conditions; the answer is
// the URL (relative to the folder) and the format Node named. Only answers inside the folder are
// kept, and none whose resolution warned (a deprecation Node says once per process). What else
// Node's answer depends on, a resolve hook cannot see; each is checked, and where it is not as
// Node starts, the question goes to Node, unrecorded:
// - require.resolve(x, { paths }) asks with the same parent, specifier and conditions as
//   require(x). Only a require() is replayed: Module._load marks the request it loads and its
//   parent, and only that request, asked next from that parent, counts as a require.
// - The CommonJS resolver reads the requiring module's `paths` and Module's own functions and
//   extensions: a require is replayed only while the parent's `paths` are Node's default for its
//   folder and Module's `_resolveFilename`, `_findPath`, `_resolveLookupPaths`,
//   `_nodeModulePaths` and `require.extensions` are what they were when replay began.
// - Hooks registered with module.register() run after this one: once the program registers
//   any, nothing is replayed any more. Preloaded code (--import, --require) can patch or hook
//   before livemod starts: then nothing is replayed at all (resolutionSignature).
import type { ResolveFnOutput, ResolveHookContext } from 'node:module';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { takeRequire, watchRequires, type CommonJsLoader, type ParentModule } from './require-watch.ts';

/** A folder's record: what the store read, and how to write it back. */
export interface ResolutionRecord {
  /** The folder as a file: URL ending in `/` (a real path, as Node's answers are). */
  readonly folder: string;
  /** question → answer (the store's format: path and format, newline-separated). */
  readonly entries: Map<string, string>;
  /** Writes the entries, merged with what other processes wrote meanwhile, or in place of it (`replace`). */
  save(entries: ReadonlyMap<string, string>, replace: boolean): void;
}

interface Followed extends ResolutionRecord {
  timer: NodeJS.Timeout | undefined;
  /** The folder lost a file an answer named: the record is written empty, not merged. */
  dropped: boolean;
}

/** How soon after its first new answer a record is written, besides at exit: a server runs on. */
const SAVE_AFTER_MS = 2_000;

const followed: Followed[] = [];
let loader: CommonJsLoader | undefined;
/** Module's resolving functions and extensions when replay began. */
let baseline: { resolveFilename: unknown; findPath: unknown; lookupPaths: unknown; nodeModulePaths: unknown; extensions: string } | undefined;
/** Set once the program registers module.register() hooks: they run after this one, so nothing more is replayed. */
let stopped = false;
/** Per requiring module: its URL and the `paths` array it had when found to be Node's default. */
const defaultPaths = new WeakMap<object, { url: string; paths: string[]; length: number; first: string | undefined }>();
/** Node's default `paths` of a module in each folder (Module._nodeModulePaths): many modules share a folder. */
const folderPaths = new Map<string, readonly string[]>();

/** Flags that change what Node's resolver answers (with `-` for `_`, as Node reads both). */
const RESOLVING_FLAG = /^(?:--(?:no-)?experimental-|--preserve-symlinks|--disable-|--conditions|-C$|-C=|--input-type|--entry-url)/;
/** Flags that run code, hooks or patches before livemod's: with them nothing is replayed. */
const PRELOAD_FLAG = /^(?:--import|--require|-r$|-r=|--loader|--experimental-loader)/;
const TAKES_VALUE = new Set(['--conditions', '-C']);

/**
 * What Node answers under: its version and the flags that change resolution, from its command
 * line and NODE_OPTIONS, and NODE_PRESERVE_SYMLINKS (a record made under others is not
 * replayed); flags that change nothing here (--cpu-prof, --inspect, memory sizes) do not count.
 * Null when nothing may be replayed: code preloaded with --import or --require.
 */
export function resolutionSignature(): string | null {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean)];
  const kept: string[] = [];
  for (let index = 0; index < flags.length; index += 1) {
    const raw = flags[index]!;
    const equals = raw.indexOf('=');
    const flag = equals === -1 ? raw.replaceAll('_', '-') : raw.slice(0, equals).replaceAll('_', '-') + raw.slice(equals);
    if (PRELOAD_FLAG.test(flag)) return null;
    if (!RESOLVING_FLAG.test(flag)) continue;
    kept.push(flag);
    if (TAKES_VALUE.has(flag) && index + 1 < flags.length) kept.push(flags[(index += 1)]!);
  }
  return `${process.version} ${JSON.stringify(kept)}${process.env.NODE_PRESERVE_SYMLINKS ? ` NODE_PRESERVE_SYMLINKS=${process.env.NODE_PRESERVE_SYMLINKS}` : ''}`;
}

function extensionsKey(modules: CommonJsLoader): string {
  return Object.keys(modules._extensions).join(',');
}

/** Starts watching Node's CommonJS loader (which request a require loads) and hooks registered later. */
function watchLoader(): CommonJsLoader {
  const modules = watchRequires();
  baseline = { resolveFilename: modules._resolveFilename, findPath: modules._findPath, lookupPaths: modules._resolveLookupPaths, nodeModulePaths: modules._nodeModulePaths, extensions: extensionsKey(modules) };
  const register = modules.register;
  if (typeof register === 'function') {
    modules.register = function (this: unknown, ...args: unknown[]): unknown {
      stopped = true;
      return register.apply(this, args);
    };
    Object.defineProperty(modules.register, 'name', { value: register.name });
    // ES modules' `import { register } from 'node:module'` takes the wrapper too.
    modules.syncBuiltinESMExports();
  }
  return modules;
}

/** Replays `record`'s answers from now on, and records Node's new ones inside its folder. */
export function followResolutions(record: ResolutionRecord): void {
  if (followed.some((entry) => entry.folder === record.folder)) return;
  loader ??= watchLoader();
  followed.push({ ...record, timer: undefined, dropped: false });
}

function added(record: Followed): void {
  if (record.timer !== undefined) return;
  const write = (): void => {
    clearTimeout(record.timer);
    record.timer = undefined;
    process.off('exit', write);
    record.save(record.entries, record.dropped);
  };
  record.timer = setTimeout(write, SAVE_AFTER_MS);
  record.timer.unref();
  process.on('exit', write);
}

/** Whether Node would resolve a require from `parent` (at `parentURL`) as when replay began. */
function asNodeStarts(parent: unknown, parentURL: string): boolean {
  const modules = loader!;
  const base = baseline!;
  if (modules._resolveFilename !== base.resolveFilename || modules._findPath !== base.findPath || modules._resolveLookupPaths !== base.lookupPaths || modules._nodeModulePaths !== base.nodeModulePaths || extensionsKey(modules) !== base.extensions) return false;
  if (parent === null || typeof parent !== 'object') return false;
  const { filename, paths } = parent as ParentModule;
  if (typeof filename !== 'string' || !Array.isArray(paths)) return false;
  let known = defaultPaths.get(parent);
  if (known === undefined || known.paths !== paths || known.length !== paths.length || known.first !== paths[0]) {
    // Node's default for a folder, computed once per folder (while _nodeModulePaths is Node's own, checked above).
    const folder = dirname(filename);
    let node = folderPaths.get(folder);
    if (node === undefined) {
      node = modules._nodeModulePaths(folder);
      folderPaths.set(folder, node);
    }
    if (node.length !== paths.length || node.some((path, index) => path !== paths[index])) return false;
    known = { url: known?.url ?? pathToFileURL(filename).href, paths, length: paths.length, first: paths[0] };
    defaultPaths.set(parent, known);
  }
  // A hook before this one may have changed the parent it passes on: Node's require takes the module's.
  return known.url === parentURL;
}

/** Relative and bare specifiers (and `#imports`): an absolute path or a URL may lead out of the folder and back in. */
function replayableSpecifier(specifier: string): boolean {
  return !specifier.startsWith('/') && !/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(specifier);
}

/** Node's answer, and whether it warned while answering. */
function asked(specifier: string, context: ResolveHookContext, next: (specifier: string, context: ResolveHookContext) => ResolveFnOutput): { result: ResolveFnOutput; warned: boolean } {
  const emit = process.emitWarning;
  let warned = false;
  process.emitWarning = function (this: unknown, ...args: Parameters<typeof emit>): void {
    warned = true;
    emit.apply(this, args);
  } as typeof emit;
  try {
    return { result: next(specifier, context), warned };
  } finally {
    process.emitWarning = emit;
  }
}

/**
 * Node's answer to a question from inside a followed folder: replayed, or asked and recorded.
 * Undefined when the parent is in no followed folder (or replay stopped).
 */
export function replayResolution(specifier: string, context: ResolveHookContext, next: (specifier: string, context: ResolveHookContext) => ResolveFnOutput): ResolveFnOutput | undefined {
  const parentURL = context.parentURL;
  const conditions = context.conditions ?? [];
  const required = conditions.includes('require');
  // Taken for every require's question, so a later require.resolve cannot pass for it.
  const marked = required ? takeRequire() : null;
  if (parentURL === undefined || followed.length === 0 || stopped) return undefined;
  const record = followed.find((entry) => parentURL.startsWith(entry.folder));
  if (record === undefined) return undefined;
  if (!replayableSpecifier(specifier)) return next(specifier, context);
  if (required && (marked === null || marked.request !== specifier || !asNodeStarts(marked.parent, parentURL))) return next(specifier, context);
  const question = `${parentURL.slice(record.folder.length)}\n${specifier}\n${conditions.join(',')}`;
  const answer = record.entries.get(question);
  if (answer !== undefined) {
    const newline = answer.indexOf('\n');
    const format = answer.slice(newline + 1);
    return { url: record.folder + answer.slice(0, newline), ...(format === '' ? {} : { format }), shortCircuit: true };
  }
  const { result, warned } = asked(specifier, context, next);
  const { url, format } = result;
  if (!warned && url.startsWith(record.folder) && !url.includes('?') && !url.includes('#') && (format === undefined || format === null || /^[a-z-]*$/.test(format))) {
    record.entries.set(question, `${url.slice(record.folder.length)}\n${format ?? ''}`);
    added(record);
  }
  return result;
}

/**
 * A file Node could not read at `url`: when a replayed answer led there (a followed folder lost
 * a file), Node's not-found error instead of the read's, and the record is dropped so the next
 * start asks Node again. Null for any other file.
 */
export function replayedFileMissing(url: string, error: unknown, required: boolean): Error | null {
  if ((error as { code?: unknown } | null)?.code !== 'ENOENT') return null;
  const record = followed.find((entry) => url.startsWith(entry.folder));
  if (record === undefined) return null;
  record.entries.clear();
  record.dropped = true;
  added(record);
  const path = decodeURIComponent(new URL(url).pathname);
  return Object.assign(new Error(`Cannot find module '${path}'`), { code: required ? 'MODULE_NOT_FOUND' : 'ERR_MODULE_NOT_FOUND', cause: error });
}

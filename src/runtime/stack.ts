// Stack traces of live code point at the original source: V8 reports positions in the module
// function (whose file name is the module's URL), and a stack-trace formatter installed once
// maps every frame of a known module URL through that module's source map. Maps are parsed only
// when a stack that needs them is formatted. Frames of other files are left exactly as V8
// formats them, and a formatter installed before ours still receives every frame.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as TraceMapping from '@jridgewell/trace-mapping';
import type { TraceMap } from '@jridgewell/trace-mapping';
import { CODE_DIR } from '../own.ts';
import { PROLOGUE_LINES } from './compile.ts';

// The source-map reader is loaded when a stack first needs a map, not with every start: its three
// modules cost a start about 6 ms (30 interleaved starts), and most runs format no live stack.
let traceMapping: typeof TraceMapping | undefined;
function reader(): typeof TraceMapping {
  traceMapping ??= createRequire(import.meta.url)('@jridgewell/trace-mapping') as typeof TraceMapping;
  return traceMapping;
}

type MapLoader = () => string | null;

interface Known {
  readonly load: MapLoader;
  /** The name frames show (a remote module's origin URL, where the file it runs from is in the store). */
  readonly shown: string;
  map?: TraceMap | null;
  /** Module versions compiled under this URL and not freed yet (one URL can return after a revert). */
  users: number;
}

const known = new Map<string, Known>();
/** Shown name (as frames print it, without `?v=`) → the URL compiled under it, for the caret block. */
const byShown = new Map<string, string>();
let installed = false;

/** Registers the source map of a compiled module; `url` is the file name it was compiled under. */
export function registerSourceMap(url: string, load: MapLoader, shown: string = url): void {
  const entry = known.get(url);
  if (entry) entry.users += 1;
  else known.set(url, { load, shown, users: 1 });
  byShown.set(shown, url);
  install();
}

/** A module version compiled under `url` was freed: its map goes when no version uses the URL. */
export function forgetSourceMap(url: string): void {
  const entry = known.get(url);
  if (!entry) return;
  entry.users -= 1;
  if (entry.users <= 0) {
    known.delete(url);
    if (byShown.get(entry.shown) === url) byShown.delete(entry.shown);
  }
}

/** How many module URLs have a source map registered (for the retained-memory report). */
export function sourceMapCount(): number {
  return known.size;
}

function traceMap(url: string): TraceMap | null {
  const entry = known.get(url);
  if (!entry) return null;
  if (entry.map === undefined) {
    try {
      const text = entry.load();
      entry.map = text === null ? null : new (reader().TraceMap)(text);
    } catch {
      entry.map = null;
    }
  }
  return entry.map;
}

/** Original position of a 1-based line/column in a live module, or null. */
function originalPosition(url: string, line: number, column: number): { source: string; line: number; column: number } | null {
  const map = traceMap(url);
  if (!map) return null;
  const found = reader().originalPositionFor(map, { line, column: column - 1 });
  if (found.line === null || found.source === null) return null;
  return { source: known.get(url)!.shown, line: found.line, column: found.column + 1 };
}

type CallSite = NodeJS.CallSite;

/** The file a frame is in, as V8 names it (a Script's source URL when it has no file name). */
function siteFile(site: CallSite): string | undefined {
  return site.getFileName() ?? site.getScriptNameOrSourceURL?.() ?? undefined;
}

/**
 * Not a frame of the registry's code in a live module's Script: its prologue line (the export
 * getters, where a read of a binding in its TDZ throws) comes before the module's line 1, so V8
 * gives it no line. Node's own modules have no such frame: the read fails where the importer reads.
 */
function notPrologue(site: CallSite): boolean {
  if (site.getLineNumber() !== null) return true;
  const file = siteFile(site);
  return !file || !known.has(file);
}

/** A call site whose position getters answer with the original position. */
function mapped(site: CallSite): CallSite {
  const file = siteFile(site);
  const line = site.getLineNumber();
  const column = site.getColumnNumber();
  if (!file || line === null || column === null || !known.has(file)) return site;
  // V8 counts a live module's lines from its own first line (compile.ts); its map, from the blob's.
  const original = originalPosition(file, line + PROLOGUE_LINES, column);
  if (!original) return site;
  const text = site.toString().replace(`${file}:${line}:${column}`, `${original.source}:${original.line}:${original.column}`);
  return new Proxy(site, {
    get(target, property) {
      if (property === 'getLineNumber') return () => original.line;
      if (property === 'getColumnNumber') return () => original.column;
      if (property === 'toString') return () => text;
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function header(error: unknown): string {
  if (!(error instanceof Error) && (typeof error !== 'object' || error === null)) return String(error);
  try {
    return Error.prototype.toString.call(error);
  } catch {
    return '<error>';
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  const previous = Error.prepareStackTrace;
  Error.prepareStackTrace = (error: Error, sites: CallSite[]): unknown => {
    const frames = programFrames(sites.filter(notPrologue).map(mapped));
    if (previous) return previous(error, frames);
    return `${header(error)}${frames.map((site) => `\n    at ${site.toString()}`).join('')}`;
  };
}

// livemod's own files: frames in them are the registry's, not the program's.
const OWN = [CODE_DIR.href, fileURLToPath(CODE_DIR)];
/** The scheme of the module that evaluates a live module a CommonJS file imports (hooks.ts). */
const EVALUATE_SCHEME = 'livemod-evaluate:';

/** LIVEMOD_DEBUG=1 or `--verbose` (keepOwnFrames): every stack keeps livemod's frames. */
let keepOwn = process.env.LIVEMOD_DEBUG === '1';

/** Stacks of the program's throws keep livemod's frames from now on (`livemod run --verbose`). */
export function keepOwnFrames(): void {
  keepOwn = true;
}

/** A frame of livemod's code, or of the module it makes to evaluate a live module a CommonJS file imports. */
function ownSite(site: CallSite): boolean {
  const file = siteFile(site);
  return typeof file === 'string' && (file.startsWith(EVALUATE_SCHEME) || OWN.some((own) => file.startsWith(own)));
}

/** Whose throw a stack is: its first frame in a file (not a builtin's, not Node's own) is livemod's. */
function thrownByOwn(frames: readonly CallSite[]): boolean {
  const first = frames.find((site) => {
    const file = siteFile(site);
    return typeof file === 'string' && !file.startsWith('node:');
  });
  return first !== undefined && ownSite(first);
}

/**
 * A stack as Node would show it for the same throw, wherever it is printed (an unhandled
 * rejection, a CommonJS file's uncaught error, the program's own `error.stack`): a throw of the
 * program (its top frame is not livemod's) without the registry's frames that evaluate and link
 * it, nor the generator steps through which the registry drives a module's body — as Node's
 * stacks show none of its loader but `node:internal` lines. A throw of livemod's own keeps every
 * frame, as does LIVEMOD_DEBUG=1.
 */
function programFrames(frames: CallSite[]): CallSite[] {
  if (keepOwn || frames.length === 0 || thrownByOwn(frames)) return frames;
  return frames.filter((site, index) => !ownSite(site) && !(driverStep(site) && index + 1 < frames.length && ownSite(frames[index + 1]!)));
}

/** `Generator.next` / `AsyncGenerator.next` (native): a step of a generator, here of a module's body when livemod's code called it. */
function driverStep(site: CallSite): boolean {
  return site.getFunctionName() === 'next' && (site.getFileName() ?? null) === null && /^(?:Async)?Generator$/.test(site.getTypeName() ?? '');
}
const OWN_FRAME = /^\s+at .*/;

/**
 * Where the program is now: the first frame of a stack that is not livemod's own, Node's or the
 * module livemod makes to evaluate a live module a CommonJS file imports (`url:line:column`,
 * source-mapped). Taken deeper than Node's ten frames: below a require() of a live module lie
 * Node's loader and livemod's hooks before the program's line.
 */
export function programSite(): string | null {
  const limit = Error.stackTraceLimit;
  // Not where the program made the limit fixed (a frozen Error): then its own limit.
  const deeper = Reflect.set(Error, 'stackTraceLimit', 64);
  const stack = new Error().stack ?? '';
  if (deeper) Reflect.set(Error, 'stackTraceLimit', limit);
  for (const line of stack.split('\n').slice(1)) {
    if (OWN.some((own) => line.includes(own)) || line.includes('node:internal') || line.includes(EVALUATE_SCHEME)) continue;
    const match = /^\s+at (?:.*? \()?(.+?:\d+:\d+)\)?$/.exec(line);
    if (match) return match[1]!;
  }
  return null;
}

/**
 * An uncaught error of the program as Node prints one: the line of the original source it was
 * thrown at, with a caret under the column (when the top frame is a live module), then the error
 * with its own stack — livemod's frames left out.
 */
const DRIVER_FRAME = /^\s+at (?:Async)?Generator\.next \(<anonymous>\)$/;
const FRAME_LINE = /^\s+at /;

export function formatProgramError(error: unknown, inspected: string): string {
  const lines = inspected.split('\n').filter((line) => !(OWN_FRAME.test(line) && OWN.some((own) => line.includes(own))));
  // The stack's last frames are the registry's driving a module's body (its generator): not the program's, as Node shows none of its loader's.
  let last = lines.findLastIndex((line) => FRAME_LINE.test(line));
  while (last > 0 && DRIVER_FRAME.test(lines[last]!)) lines.splice(last--, 1);
  const text = lines.join('\n');
  const stack = error instanceof Error && typeof error.stack === 'string' ? error.stack : '';
  const frame = /^\s+at (?:.*? \()?(.+?):(\d+):(\d+)\)?$/m.exec(stack);
  if (!frame) return text;
  const [, location, line, column] = frame as unknown as [string, string, string, string];
  // The original source is the module's file (maps do not carry it): on disk for a local run, in
  // the store's laid-out version for a remote one; a module served without its files has no line to show.
  // A CommonJS file of the program, which Node loaded itself, is named by its path, as Node names it.
  const url = byShown.get(location.replace(/\?v=[0-9a-f]+$/, '')) ?? byShown.get(location) ?? (location.startsWith('/') && !location.startsWith(fileURLToPath(CODE_DIR)) ? pathToFileURL(location).href : undefined);
  if (!url?.startsWith('file:')) return text;
  let code: string | undefined;
  try {
    code = readFileSync(fileURLToPath(url.replace(/\?.*$/, '')), 'utf8').split('\n')[Number(line) - 1];
  } catch {
    code = undefined;
  }
  if (code === undefined) return text;
  return `${location}:${line}\n${code}\n${' '.repeat(Math.max(0, Number(column) - 1))}^\n\n${text}`;
}

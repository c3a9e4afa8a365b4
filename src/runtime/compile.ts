// A module version's blob becomes a generator function, compiled as a vm.Script (which takes and
// makes V8's cached data), not a native ES module: functions are freed once unreferenced, native
// modules stay in Node's module map forever (DESIGN.md). A Script also works under
// --disallow-code-generation-from-strings.
import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';
import type { ModuleCodeCache } from './source.ts';

/** Calling it with the module context and the import namespaces makes the module's generator. */
export type ModuleFactory = (context: unknown, ...namespaces: unknown[]) => Generator<undefined, void, undefined> | AsyncGenerator<undefined, void, undefined>;

const TRAILER = Buffer.from('\n})()})', 'latin1');

/** Lines a blob has before the module's own line 1: its prologue's (so the module's line N is the Script's N + 1). */
export const PROLOGUE_LINES = 1;

/** Parameter names of a module with `count` static imports: the blob refers to them. */
function moduleParameters(count: number): string[] {
  const names = ['__lm'];
  for (let index = 0; index < count; index += 1) names.push(`__lm_${index}`);
  return names;
}

/**
 * The blob's first line is the prologue only, so this header on the same line moves no
 * position of the module's own code. Calling the inner generator plainly keeps `this`
 * undefined and gives it an empty `arguments` of its own.
 *
 * The source is decoded once from the wrapper's bytes and the blob's together, so it is one flat
 * string: a template literal around the blob's text made a chain of concatenated strings, which
 * V8 keeps as the Script's source as it is when code comes from the code cache (it never reads
 * the text then) — the blob's text, its wrapper and three string nodes per module alive for the
 * program's life, copied by every young-generation collection of the start.
 */
export function compileModule(code: Uint8Array, staticImports: number, filename: string, async: boolean, cached?: { cache: ModuleCodeCache; hash: string }): ModuleFactory {
  const header = async ? 'return (async function*(){' : 'return (function*(){';
  // A function expression in a Script, not compileFunction: a Script takes V8's cached data and makes it.
  const source = Buffer.concat([Buffer.from(`(function(${moduleParameters(staticImports).join(',')}){${header}`, 'latin1'), code, TRAILER]).toString('utf8');
  const cachedData = cached?.cache.get(cached.hash);
  // The offset makes V8 say the module's own line N, as Node's message for an uncaught error prints
  // it (`file.js:N` above the source line and caret); stack frames are mapped (stack.ts), which adds it back.
  const script = new Script(source, { filename, lineOffset: -PROLOGUE_LINES, ...(cachedData ? { cachedData } : {}) });
  if (cachedData && !script.cachedDataRejected) stats.used += 1;
  if (cached && (!cachedData || script.cachedDataRejected)) {
    if (cachedData) {
      stats.rejected += 1;
      cached.cache.drop(cached.hash);
    }
    later(cached.cache, cached.hash, script);
  }
  return script.runInThisContext() as ModuleFactory;
}

// Cached data is made once the program has run a while (it then holds the functions compiled
// lazily too), in one go a second after the last compile, or at exit if that comes first; the
// scripts are held only until then. Compiles that keep coming (a hot swap every few hundred ms
// while someone saves and saves) postpone it at most MAX_WAIT_MS from the first one waiting: the
// scripts waiting hold their versions' code, and postponing without end held every swapped
// version of a long session (13 KB a swap of a 10 KB module, `npm run bench:swap`).
const pending = new Map<string, { cache: ModuleCodeCache; script: Script }>();
let timer: NodeJS.Timeout | undefined;
let waitingSince = 0;
const QUIET_MS = 1000;
const MAX_WAIT_MS = 3000;

const stats = { used: 0, rejected: 0, written: 0 };

/** Code cache entries used, refused by V8 (and dropped), and written by this process so far. */
export function codeCacheStats(): { used: number; rejected: number; written: number } {
  return { ...stats };
}

/** Writes the pending code cache entries now (they are written a second after the last compile, or at exit). */
export function flushCodeCache(): void {
  flush();
}

function flush(): void {
  clearTimeout(timer);
  timer = undefined;
  process.off('exit', flush);
  const entries = [...pending];
  pending.clear();
  // Made under the flags the modules compile under (V8's flag hash is part of the data, and
  // data made under other flags is refused on use).
  const caches = new Set<ModuleCodeCache>();
  withoutCompileCache(() => {
    for (const [hash, { cache, script }] of entries) {
      caches.add(cache);
      try {
        cache.put(hash, script.createCachedData());
        stats.written += 1;
      } catch {
        // Not cacheable (V8 declined): the next start compiles.
      }
    }
  });
  for (const cache of caches) cache.done?.();
}

function later(cache: ModuleCodeCache, hash: string, script: Script): void {
  if (pending.size === 0) {
    process.on('exit', flush);
    waitingSince = Date.now();
  }
  pending.set(hash, { cache, script });
  clearTimeout(timer);
  timer = setTimeout(flush, Math.max(0, Math.min(QUIET_MS, waitingSince + MAX_WAIT_MS - Date.now())));
  timer.unref();
}

let uncached = 0;

/**
 * Runs `compile` with V8's in-isolate compilation cache off. That cache keeps each compiled
 * source (and its bytecode) alive long after every function from it is gone — measured: about
 * 13 KB per version of a 10 KB module, never reclaimed by ordinary GCs — which defeats freeing
 * replaced versions. The flag is process-wide, so it is off only while module versions compile
 * (one toggle per graph, not per module: a toggle costs about 2 µs).
 */
export function withoutCompileCache<T>(compile: () => T): T {
  if (uncached === 0) setFlagsFromString('--no-compilation-cache');
  uncached += 1;
  try {
    return compile();
  } finally {
    uncached -= 1;
    if (uncached === 0) setFlagsFromString('--compilation-cache');
  }
}

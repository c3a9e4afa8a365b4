// A module version's blob becomes a generator function via vm.compileFunction, not a native
// ES module: functions are freed once unreferenced, native modules stay in Node's module map
// forever (DESIGN.md). compileFunction also works under --disallow-code-generation-from-strings.
import { setFlagsFromString } from 'node:v8';
import { compileFunction } from 'node:vm';

/** Calling it with the module context and the import namespaces makes the module's generator. */
export type ModuleFactory = (context: unknown, ...namespaces: unknown[]) => Generator<undefined, void, undefined> | AsyncGenerator<undefined, void, undefined>;

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
 */
export function compileModule(code: string, staticImports: number, filename: string, async: boolean): ModuleFactory {
  const header = async ? 'return (async function*(){' : 'return (function*(){';
  return compileFunction(`${header}${code}\n})()`, moduleParameters(staticImports), { filename }) as ModuleFactory;
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

// The runtime's only loader hook, registered once per process (module.registerHooks, sync and
// in-thread). Live code's externals are resolved by Node itself, as if imported from the
// program's own folder: the runtime asks for `livemod-external:<json>` and the hook hands
// Node the real specifier with that parent. So an external resolves and behaves exactly as
// under plain Node — same conditions, same module cache — and `livemod` itself resolves to
// this very copy, so live code and the runtime share one registry.
import { registerHooks } from 'node:module';

const MARKER = 'livemod-external:';
// This file runs as src/runtime/hooks.ts or, built, as dist/runtime/hooks.js.
const SELF = new URL(import.meta.url.endsWith('.ts') ? '../index.ts' : '../index.js', import.meta.url).href;

let registered = false;

function ensureHooks(): void {
  if (registered) return;
  registered = true;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      if (!specifier.startsWith(MARKER)) return nextResolve(specifier, context);
      const { specifier: real, parent } = JSON.parse(decodeURIComponent(specifier.slice(MARKER.length))) as { specifier: string; parent: string };
      if (real === 'livemod') return { url: SELF, shortCircuit: true };
      return nextResolve(real, { ...context, parentURL: parent });
    },
  });
}

function marked(specifier: string, parent: string): string {
  ensureHooks();
  return MARKER + encodeURIComponent(JSON.stringify({ specifier, parent }));
}

/** Node's resolution of `specifier` imported from `parent` (a file URL), through the hook. */
export function resolveExternal(specifier: string, parent: string): string {
  return import.meta.resolve(marked(specifier, parent));
}

/** Imports an external natively, as if from `parent`. */
export function importExternal(specifier: string, parent: string): Promise<Record<string, unknown>> {
  return import(marked(specifier, parent)) as Promise<Record<string, unknown>>;
}

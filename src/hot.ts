// `livemod/hot`: the TypeScript declaration of `import.meta.hot` in live modules, as
// `vite/client` declares Vite's. Add it with `"types": ["livemod/hot"]` in tsconfig.json, or
// `/// <reference types="livemod/hot" />`. It is optional, as in Vite, so the same code also
// type-checks (and runs, with `import.meta.hot?.…`) where livemod does not run it.
import type { HotContext } from './runtime/hot.ts';

export type { AcceptCallback, AcceptDepsCallback, HotContext, HotEventCallback, ModuleNamespace } from './runtime/hot.ts';

declare global {
  interface ImportMeta {
    /** livemod's hot-swap API for this module version (Vite's `import.meta.hot` names and meaning). */
    readonly hot?: HotContext;
  }
}

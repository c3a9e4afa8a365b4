// The runtime's only door: the registry that evaluates module versions from a ModuleSource with
// ES module semantics (compiling blobs and mapping stack traces on the way) and swaps them.
export { Registry, type EagerRules, type RegistryOptions, type RetainedVersion, type SwapOptions, type SwapResult, type SwappedModule } from './registry.ts';
export type { HotContext } from './hot.ts';
export type { ModuleCodeCache, ModuleSource } from './source.ts';
export type { Namespace } from './namespace.ts';
export { formatProgramError, keepOwnFrames } from './stack.ts';
export { explainCommonJsGlobal } from './commonjs-hint.ts';
export { codeCacheStats, flushCodeCache } from './compile.ts';
export { formatLoadReport, type LoadHow, type LoadRecord } from './load-report.ts';
export { replayResolutions } from './hooks.ts';
export { resolutionSignature, type ResolutionRecord } from './resolutions.ts';

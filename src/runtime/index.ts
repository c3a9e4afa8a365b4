// The runtime's only door: the registry that evaluates module versions from a ModuleSource with
// ES module semantics (compiling blobs and mapping stack traces on the way).
export { Registry, type RegistryOptions } from './registry.ts';
export type { ModuleSource } from './source.ts';
export type { Namespace } from './namespace.ts';

// The runtime's only door: the registry that evaluates module versions from a ModuleSource with
// ES module semantics, the module compiler, and source-mapped stack traces.
export { Registry, type RegistryOptions } from './registry.ts';
export type { ModuleSource } from './source.ts';
export type { Namespace } from './namespace.ts';
export { compileModule, moduleParameters, type ModuleFactory } from './compile.ts';
export { originalPosition } from './stack.ts';

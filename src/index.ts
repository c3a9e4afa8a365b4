// livemod's public API: what `import … from 'livemod'` gives programs and live code.
export { Registry, type RegistryOptions, type ModuleSource, type Namespace } from './runtime/index.ts';
export { localSource, type LocalSource } from './client/local.ts';
export { ErrorCodes, LivemodError, isLivemodError, type ErrorCode } from './errors.ts';

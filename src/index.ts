// livemod's public API: what `import … from 'livemod'` gives programs and live code.
export { connect, openFolder, type App, type ConnectOptions, type SyncProgress, type SyncedFrom } from './client/index.ts';
export { Registry, type EagerRules, type RegistryOptions, type ModuleSource, type Namespace } from './runtime/index.ts';
export { defineConfig, type LivemodConfig } from './config/index.ts';
export { lazy, lazyProperty } from './lazy-property.ts';
export { ErrorCodes, LivemodError, isLivemodError, type ErrorCode } from './errors.ts';

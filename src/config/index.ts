// A project's config file, livemod.config.ts (or .mts, .js, .mjs, .json) in the working folder:
// what `run`, `serve` and `publish` would otherwise take as flags. Flags override it.
export { defineConfig, type LivemodConfig, type BuildConfig } from './types.ts';
export { loadProjectConfig, CONFIG_FILE_NAMES, type ProjectConfig } from './load.ts';

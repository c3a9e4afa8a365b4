// Finds and reads the project's config file, and checks every field, naming the one that is
// wrong (`livemod.config.ts: build.maxFileSize "big" is not a size …`, ERR_LIVEMOD_CONFIG_INVALID).
// A TypeScript file is imported by Node itself (it strips types); `import { defineConfig } from
// 'livemod'` in it resolves to this livemod, so a project need not install it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { parseDuration, parseSize } from '../cli/options.ts';
import { appNameProblem } from '../snapshot/index.ts';
import type { LivemodConfig } from './types.ts';

export const CONFIG_FILE_NAMES: readonly string[] = ['livemod.config.ts', 'livemod.config.mts', 'livemod.config.js', 'livemod.config.mjs', 'livemod.config.json'];
const MAX_CONFIG_BYTES = 1024 * 1024;

export interface ProjectConfig {
  /** The file read, or null when the folder has none. */
  readonly path: string | null;
  readonly config: LivemodConfig;
}

function invalid(file: string, what: string): LivemodError {
  return new LivemodError('cli', ErrorCodes.CONFIG_INVALID, `${file}: ${what}`, { path: file });
}

export async function loadProjectConfig(dir: string = process.cwd()): Promise<ProjectConfig> {
  const found = CONFIG_FILE_NAMES.filter((name) => existsSync(join(dir, name)));
  if (found.length === 0) return { path: null, config: {} };
  if (found.length > 1) throw invalid(join(dir, found[0]!), `${found.join(' and ')} are both in ${dir}; keep one`);
  const path = join(dir, found[0]!);
  const size = statSync(path).size;
  if (size > MAX_CONFIG_BYTES) throw invalid(path, `${size} bytes is far too large for a config file`);
  let value: unknown;
  if (path.endsWith('.json')) {
    try {
      value = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw invalid(path, `is not JSON (${(error as Error).message.split('\n')[0]})`);
    }
  } else {
    const { importConfigModule } = await import('../runtime/hooks.ts');
    let module: Record<string, unknown>;
    try {
      module = await importConfigModule(`${pathToFileURL(path).href}?mtime=${statSync(path).mtimeMs}`);
    } catch (error) {
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      throw invalid(path, `failed to load (${message}); fix the file, or move it away`);
    }
    value = module.default;
    if (value === undefined) throw invalid(path, 'has no default export; write `export default defineConfig({ … })`');
  }
  return { path, config: checkConfig(path, value) };
}

const FIELDS = ['lazy', 'eager', 'build', 'origins'];
const BUILD_FIELDS = ['name', 'entry', 'strict', 'exclude', 'external', 'externals', 'maxFileSize', 'maxTotalSize', 'expires'];
const EAGER_FIELDS = ['modules', 'prefixes', 'filter'];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKeys(file: string, where: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw invalid(file, `${where}${key} is not a config field; the fields are ${allowed.map((name) => `${where}${name}`).join(', ')}`);
  }
}

function strings(file: string, field: string, value: unknown): void {
  if (value !== undefined && (!Array.isArray(value) || value.some((item) => typeof item !== 'string' || item.length === 0))) throw invalid(file, `${field} must be an array of non-empty strings`);
}

function string(file: string, field: string, value: unknown): void {
  if (value !== undefined && (typeof value !== 'string' || value.length === 0)) throw invalid(file, `${field} must be a non-empty string`);
}

/** The config's fields checked by type and name; values in flag syntax (sizes, durations) are checked where the flags are. */
export function checkConfig(file: string, value: unknown): LivemodConfig {
  if (!isObject(value)) throw invalid(file, 'the default export must be an object, e.g. `export default defineConfig({ lazy: "normal" })`');
  checkKeys(file, '', value, FIELDS);
  if (value.lazy !== undefined && value.lazy !== 'normal' && value.lazy !== 'all' && value.lazy !== 'none') throw invalid(file, `lazy ${JSON.stringify(value.lazy)} is not a mode; write "normal", "all" or "none"`);
  if (value.eager !== undefined) {
    if (!isObject(value.eager)) throw invalid(file, 'eager must be an object: { modules, prefixes, filter }');
    checkKeys(file, 'eager.', value.eager, EAGER_FIELDS);
    strings(file, 'eager.modules', value.eager.modules);
    strings(file, 'eager.prefixes', value.eager.prefixes);
    if (value.eager.filter !== undefined && typeof value.eager.filter !== 'function') throw invalid(file, 'eager.filter must be a function (importer, specifier) => boolean (so not in a .json config)');
  }
  if (value.build !== undefined) {
    if (!isObject(value.build)) throw invalid(file, 'build must be an object');
    const build = value.build;
    checkKeys(file, 'build.', build, BUILD_FIELDS);
    for (const field of ['name', 'entry', 'maxFileSize', 'maxTotalSize', 'expires']) string(file, `build.${field}`, build[field]);
    if (build.strict !== undefined && typeof build.strict !== 'boolean') throw invalid(file, 'build.strict must be true or false');
    strings(file, 'build.exclude', build.exclude);
    strings(file, 'build.external', build.external);
    if (build.externals !== undefined && build.externals !== 'bundle' && build.externals !== 'installed') throw invalid(file, `build.externals ${JSON.stringify(build.externals)} is not a mode; write "bundle" or "installed"`);
    if (typeof build.name === 'string') {
      const problem = appNameProblem(build.name);
      if (problem !== null) throw invalid(file, `build.name must be ${problem}`);
    }
    // Sizes and durations as the flags write them: the flag's own check, with the field named.
    const flagSyntax = (check: () => unknown): void => {
      try {
        check();
      } catch (error) {
        throw invalid(file, (error as Error).message.replace(/^\[livemod [a-z]+\] /, '').replace(/ \[ERR_LIVEMOD_[A-Z_]+\]$/, ''));
      }
    };
    if (typeof build.maxFileSize === 'string') flagSyntax(() => parseSize('build.maxFileSize', build.maxFileSize as string));
    if (typeof build.maxTotalSize === 'string') flagSyntax(() => parseSize('build.maxTotalSize', build.maxTotalSize as string));
    if (typeof build.expires === 'string') flagSyntax(() => parseDuration('build.expires', build.expires as string));
  }
  if (value.origins !== undefined) {
    if (!isObject(value.origins)) throw invalid(file, 'origins must be an object: { "<url prefix>": { key, token, app } }');
    for (const [prefix, entry] of Object.entries(value.origins)) {
      if (!isObject(entry)) throw invalid(file, `origins["${prefix}"] must be an object: { key, token, app }`);
      checkKeys(file, `origins["${prefix}"].`, entry, ['key', 'token', 'app']);
      for (const field of ['key', 'token', 'app']) string(file, `origins["${prefix}"].${field}`, entry[field]);
    }
  }
  return value as LivemodConfig;
}

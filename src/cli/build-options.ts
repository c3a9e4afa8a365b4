// Options shared by `publish` and `serve`: how the folder is built and how long a signature lasts.
import type { Command } from 'commander';
import { appNameProblem } from '../snapshot/index.ts';
import { DEFAULT_BUILD_OPTIONS, formatBroken, formatUnresolved, type BuildOptions, type BuildResult } from '../build/index.ts';
import { parseDuration, parseSize, usage } from './options.ts';
import type { Output } from './output.ts';
import type { BuildConfig } from '../config/index.ts';

export interface BuildFlags {
  strict?: boolean;
  entry?: string;
  maxFileSize?: string;
  maxTotalSize?: string;
  expires?: string;
  name?: string;
  external?: string[];
  externals?: string;
  exclude?: string[];
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export function addBuildOptions(command: Command, defaultTtlMs: number): Command {
  return command
    .option('--name <name>', "the app name the manifest binds to, which clients check (default: package.json's \"name\", else the folder's name)")
    .option('--strict', 'fail on any import that resolves nowhere (for CI); without it such imports are reported and the module is published marked with them')
    .option('--entry <module>', 'module path that `livemod run <origin>` starts by default (default: the package entry, else main/index)')
    .option('--max-file-size <size>', `skip (and report) files larger than this (default ${DEFAULT_BUILD_OPTIONS.maxFileBytes / 1024 / 1024}MiB)`)
    .option('--max-total-size <size>', `refuse folders holding more module bytes than this (default ${DEFAULT_BUILD_OPTIONS.maxTotalBytes / 1024 / 1024}MiB)`)
    .option('--external <package>', 'keep this npm package out of the snapshot (repeatable): clients resolve it from their own node_modules, as for native addons', collect)
    .option('--externals <mode>', 'bundle (default): the npm packages the program reaches travel in the snapshot; installed: none do, clients bring their own node_modules')
    .option('--exclude <pattern>', 'leave files matching this .gitignore-style pattern out of the snapshot (repeatable; the folder\'s .gitignore, dotfiles and node_modules are always left out)', collect)
    .option('--expires <duration>', `how long clients may trust a signed manifest, e.g. 30d, 12h (default ${defaultTtlMs / 86_400_000}d)`);
}

/** The project config's build options under the flags: a flag given wins. */
export function mergeBuildConfig(flags: BuildFlags, build: BuildConfig | undefined): BuildFlags {
  if (!build) return flags;
  const merged: BuildFlags = { ...flags };
  for (const field of ['name', 'entry', 'maxFileSize', 'maxTotalSize', 'expires', 'externals'] as const) {
    if (merged[field] === undefined && build[field] !== undefined) merged[field] = build[field];
  }
  if (merged.strict === undefined && build.strict !== undefined) merged.strict = build.strict;
  if (merged.exclude === undefined && build.exclude !== undefined) merged.exclude = [...build.exclude];
  if (merged.external === undefined && build.external !== undefined) merged.external = [...build.external];
  return merged;
}

export function resolveBuildFlags(flags: BuildFlags, defaultTtlMs: number, exclude: string[] = []): { build: Partial<BuildOptions>; ttlMs: number } {
  if (flags.name !== undefined) {
    const problem = appNameProblem(flags.name);
    if (problem !== null) throw usage(`--name must be ${problem}`);
  }
  if (flags.externals !== undefined && flags.externals !== 'bundle' && flags.externals !== 'installed') {
    throw usage(`--externals ${JSON.stringify(flags.externals.slice(0, 40))} is not a mode; write --externals bundle (packages travel, the default) or --externals installed (clients bring their own node_modules)`);
  }
  for (const name of flags.external ?? []) {
    if (!/^(?:@[a-zA-Z0-9~-][a-zA-Z0-9._~-]*\/)?[a-zA-Z0-9~-][a-zA-Z0-9._~-]*$/.test(name) || name.length > 214) throw usage(`--external ${JSON.stringify(name.slice(0, 80))} is not an npm package name; write e.g. --external sharp or --external @scope/pkg`);
  }
  for (const pattern of flags.exclude ?? []) {
    if (pattern.length === 0 || pattern.length > 1024 || pattern.includes('\0')) throw usage('--exclude needs a .gitignore-style pattern of 1 to 1,024 characters, e.g. --exclude "*.log" or --exclude fixtures/');
  }
  return {
    build: {
      program: { externals: flags.externals === 'installed' ? 'installed' : 'bundle', external: flags.external ?? [], exclude: flags.exclude ?? [] },
      strict: flags.strict === true,
      entry: flags.entry ?? null,
      name: flags.name ?? null,
      exclude,
      ...(flags.maxFileSize ? { maxFileBytes: parseSize('--max-file-size', flags.maxFileSize) } : {}),
      ...(flags.maxTotalSize ? { maxTotalBytes: parseSize('--max-total-size', flags.maxTotalSize) } : {}),
    },
    ttlMs: flags.expires ? parseDuration('--expires', flags.expires) : defaultTtlMs,
  };
}

/** Warnings every build prints: files left out, files that do not parse, and imports that resolve nowhere. */
export function reportBuild(result: BuildResult, output: Output): void {
  for (const item of result.skipped) output.warn(`[livemod build] skipped ${item.path}: ${item.reason}`);
  for (const item of result.broken) output.warn(`[livemod build] warning: ${formatBroken(item)} (published marked; importing this module fails with a SyntaxError)`);
  for (const name of result.missingPackages) output.warn(`[livemod build] warning: package ${name} is imported but not installed in the folder (run npm install there); clients must have it in their own node_modules`);
  for (const item of result.unresolved) output.warn(`[livemod build] warning: ${formatUnresolved(item)} (published; loading this module will fail)`);
}

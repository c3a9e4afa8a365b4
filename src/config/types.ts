// The shape of livemod.config.ts. `defineConfig` only gives it a type: `export default
// defineConfig({ … })`, with `import { defineConfig } from 'livemod'` (which resolves to the
// livemod that reads the file, installed in the project or not).
import type { OriginConfig } from '../client/config.ts';
import type { EagerRules } from '../runtime/index.ts';

/** Build options of `publish` and `serve`, as their flags take them. */
export interface BuildConfig {
  /** The app name the manifest binds to (--name). */
  readonly name?: string;
  /** The module `livemod run <origin>` starts by default (--entry). */
  readonly entry?: string;
  /** Fail on any import that resolves nowhere (--strict). */
  readonly strict?: boolean;
  /** .gitignore-style patterns of files left out (--exclude). */
  readonly exclude?: readonly string[];
  /** npm packages kept out of the snapshot (--external). */
  readonly external?: readonly string[];
  /** bundle: packages travel (default); installed: clients bring their own (--externals). */
  readonly externals?: 'bundle' | 'installed';
  /** Files larger than this are skipped, e.g. "32MiB" (--max-file-size). */
  readonly maxFileSize?: string;
  /** A folder holding more module bytes than this is refused, e.g. "512MiB" (--max-total-size). */
  readonly maxTotalSize?: string;
  /** How long clients may trust a signed manifest, e.g. "30d" (--expires). */
  readonly expires?: string;
}

export interface LivemodConfig {
  /**
   * `normal`: imports of live modules run at the first read of a binding (`livemod run --lazy`);
   * `all`: packages imported by name or default too, loaded synchronously at that read
   * (`--lazy-mode all`); `none` (default): only `import defer` defers.
   */
  readonly lazy?: 'normal' | 'all' | 'none';
  /** With lazy `normal`: the imports that stay eager — exact specifiers or module paths, prefixes, or a filter `(importer, specifier) => true`. */
  readonly eager?: EagerRules;
  readonly build?: BuildConfig;
  /** Keys, tokens and apps by URL prefix, as in the user's config.json: after flags and env, before that file. */
  readonly origins?: Readonly<Record<string, OriginConfig>>;
}

export function defineConfig(config: LivemodConfig): LivemodConfig {
  return config;
}

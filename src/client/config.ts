// The client config file: which publisher key (and token) to use for which origin, so a
// bootstrap does not have to carry them. `$LIVEMOD_CONFIG`, else
// `$XDG_CONFIG_HOME/livemod/config.json`, else `~/.config/livemod/config.json`:
//   { "origins": { "https://tools.example.com/": { "key": "ed25519:…", "token": "…", "app": "tools" } } }
// The longest origin prefix of the target URL wins. Explicit options and env vars come first.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { ErrorCodes, LivemodError } from '../errors.ts';

export interface OriginConfig {
  readonly key?: string;
  readonly token?: string;
  /** The app the origin's snapshot must be of (the manifest's `name`). */
  readonly app?: string;
}

const MAX_CONFIG_BYTES = 1024 * 1024;

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LIVEMOD_CONFIG) return env.LIVEMOD_CONFIG;
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.config'), 'livemod', 'config.json');
}

function invalid(path: string, what: string): LivemodError {
  return new LivemodError('cli', ErrorCodes.CONFIG_INVALID, `config file ${path}: ${what}; expected {"origins": {"<url prefix>": {"key": "ed25519:…", "token": "…", "app": "<name>"}}}`, { path });
}

/** The config entry for `url`, or an empty one when there is no config file. */
export function originConfig(url: URL, env: NodeJS.ProcessEnv = process.env): OriginConfig {
  const path = configPath(env);
  let text: string;
  try {
    const bytes = readFileSync(path);
    if (bytes.byteLength > MAX_CONFIG_BYTES) throw invalid(path, `${bytes.byteLength} bytes is far too large`);
    text = bytes.toString('utf8');
  } catch (error) {
    if (error instanceof LivemodError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !env.LIVEMOD_CONFIG) return {};
    throw invalid(path, `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw invalid(path, 'is not JSON');
  }
  const origins = (json as { origins?: unknown } | null)?.origins;
  if (typeof origins !== 'object' || origins === null || Array.isArray(origins)) throw invalid(path, '"origins" must be an object');
  for (const [prefix, entry] of Object.entries(origins as Record<string, unknown>)) {
    if (typeof entry !== 'object' || entry === null) throw invalid(path, `"origins"["${prefix}"] must be an object`);
    const { key, token, app } = entry as Record<string, unknown>;
    if ([key, token, app].some((value) => value !== undefined && typeof value !== 'string')) throw invalid(path, `"origins"["${prefix}"]: "key", "token" and "app" must be strings`);
  }
  return matchOrigin(origins as Record<string, OriginConfig>, url);
}

/** The entry of the longest URL prefix of `url` among `origins` (checked already), or an empty one. */
export function matchOrigin(origins: Readonly<Record<string, OriginConfig>>, url: URL): OriginConfig {
  let best: { prefix: string; entry: OriginConfig } | undefined;
  for (const [prefix, entry] of Object.entries(origins)) {
    if (url.href.startsWith(prefix) && (!best || prefix.length > best.prefix.length)) {
      const { key, token, app } = entry;
      best = { prefix, entry: { ...(key ? { key } : {}), ...(token ? { token } : {}), ...(app ? { app } : {}) } };
    }
  }
  return best?.entry ?? {};
}

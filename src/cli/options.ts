// Parsing of option values shared by commands: sizes, durations, ports. Each parser throws a
// usage error (exit 2) that names the option and the accepted form. Key files are key-file.ts:
// every command loads this file, and only publish and serve need the crypto a key brings.
import { ErrorCodes, LivemodError } from '../errors.ts';

export function usage(message: string): LivemodError {
  return new LivemodError('cli', ErrorCodes.USAGE, message);
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** "32MiB", "512k", "1048576" → bytes. */
export function parseSize(option: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) throw usage(`${option} "${text}" is not a size; write e.g. 32MiB, 512KiB or a byte count`);
  const bytes = Math.floor(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw usage(`${option} "${text}" is out of range; give at least 1 byte`);
  return bytes;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "30d", "12h", "90s", "500ms" → milliseconds; "0" too where `zero` allows it. */
export function parseDuration(option: string, text: string, options: { zero?: boolean } = {}): number {
  if (options.zero && /^0+(?:ms|s|m|h|d|w)?$/.test(text.trim())) return 0;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text.trim());
  if (!match) throw usage(`${option} "${text}" is not a duration; write e.g. 30d, 12h, 90s or 500ms${options.zero ? ', or 0' : ''}`);
  const ms = Math.round(Number(match[1]) * DURATION_UNITS[match[2]!]!);
  if (!Number.isSafeInteger(ms) || ms < 1) throw usage(`${option} "${text}" is out of range`);
  return ms;
}

export function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw usage(`--port "${text}" is not a port number (0–65535; 0 picks a free one)`);
  return port;
}

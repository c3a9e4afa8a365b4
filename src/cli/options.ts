// Parsing of option values shared by commands: sizes, durations, key files. Each parser throws
// a usage error (exit 2) that names the option and the accepted form.
import { readFileSync } from 'node:fs';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { parsePrivateKeyPem, type PublisherKey } from '../snapshot/index.ts';

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

/** "30d", "12h", "90s", "500ms" → milliseconds. */
export function parseDuration(option: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text.trim());
  if (!match) throw usage(`${option} "${text}" is not a duration; write e.g. 30d, 12h, 90s or 500ms`);
  const ms = Math.round(Number(match[1]) * DURATION_UNITS[match[2]!]!);
  if (!Number.isSafeInteger(ms) || ms < 1) throw usage(`${option} "${text}" is out of range`);
  return ms;
}

export function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw usage(`--port "${text}" is not a port number (0–65535; 0 picks a free one)`);
  return port;
}

export function loadPrivateKey(path: string): PublisherKey {
  let pem: string;
  try {
    const buffer = readFileSync(path);
    if (buffer.byteLength > 64 * 1024) throw new LivemodError('cli', ErrorCodes.KEY_INVALID, `${path} is ${buffer.byteLength} bytes, far too large for a key file; pass the file \`livemod keygen\` wrote`);
    pem = buffer.toString('utf8');
  } catch (error) {
    if (error instanceof LivemodError) throw error;
    throw new LivemodError('cli', ErrorCodes.KEY_MISSING, `cannot read key file ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}); make one with \`livemod keygen --out ${path}\``, { path });
  }
  return parsePrivateKeyPem(pem, path);
}

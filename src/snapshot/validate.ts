// Structural check of a manifest body, run by clients after the signature verified and by the
// publisher before signing. It mirrors docs/manifest.schema.json (tests hold the two together);
// it is hand-written so that clients need no schema engine on their start-up path.
import { ErrorCodes, LivemodError } from '../errors.ts';
import { isHash } from './hash.ts';
import { MANIFEST_SCHEMA, MODULE_FORMAT, type Manifest } from './manifest.ts';

const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const KINDS = new Set(['module', 'external', 'unresolved']);

class Invalid extends Error {}

function fail(path: string, expected: string): never {
  throw new Invalid(`${path} must be ${expected}`);
}

function object(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'an object');
  return value as Record<string, unknown>;
}

function only(record: Record<string, unknown>, path: string, allowed: readonly string[]): void {
  for (const key of Object.keys(record)) if (!allowed.includes(key)) fail(`${path}.${key}`, `absent (unknown field; allowed: ${allowed.join(', ')})`);
}

function count(value: unknown, path: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) fail(path, `an integer ≥ ${min}`);
  return value;
}

function string(value: unknown, path: string): string {
  if (typeof value !== 'string') fail(path, 'a string');
  return value;
}

function modulePath(value: unknown, path: string): string {
  const text = string(value, path);
  if (text === '' || text.startsWith('/') || text.includes('\\') || text.includes('\0') || text.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    fail(path, 'a relative posix module path without "." or ".." segments');
  }
  return text;
}

function blobRef(value: unknown, path: string, extra: readonly string[] = []): void {
  const ref = object(value, path);
  only(ref, path, ['hash', 'size', 'offset', ...extra]);
  if (!isHash(ref.hash)) fail(`${path}.hash`, '64 lowercase hex digits (sha256)');
  count(ref.size, `${path}.size`);
  if (ref.offset !== undefined) count(ref.offset, `${path}.offset`);
}

function stringArray(value: unknown, path: string): string[] {
  if (!Array.isArray(value)) fail(path, 'an array of strings');
  value.forEach((item, index) => string(item, `${path}[${index}]`));
  return value as string[];
}

function checkModule(value: unknown, path: string): void {
  const record = object(value, path);
  only(record, path, ['blob', 'map', 'imports', 'exports', 'star', 'tla']);
  blobRef(record.blob, `${path}.blob`);
  if (record.map !== null) blobRef(record.map, `${path}.map`);
  if (!Array.isArray(record.imports)) fail(`${path}.imports`, 'an array');
  record.imports.forEach((item: unknown, index: number) => {
    const at = `${path}.imports[${index}]`;
    const entry = object(item, at);
    only(entry, at, ['specifier', 'kind', 'module', 'reason', 'line', 'column', 'names', 'dynamic', 'defer']);
    string(entry.specifier, `${at}.specifier`);
    if (!KINDS.has(entry.kind as string)) fail(`${at}.kind`, '"module", "external" or "unresolved"');
    if (entry.kind === 'module') modulePath(entry.module, `${at}.module`);
    else if (entry.module !== undefined) fail(`${at}.module`, 'absent unless kind is "module"');
    if (entry.kind === 'unresolved') {
      string(entry.reason, `${at}.reason`);
      count(entry.line, `${at}.line`, 1);
      count(entry.column, `${at}.column`, 1);
    }
    stringArray(entry.names, `${at}.names`);
    if (typeof entry.dynamic !== 'boolean') fail(`${at}.dynamic`, 'a boolean');
    if (entry.defer !== undefined && entry.defer !== true) fail(`${at}.defer`, 'true or absent');
  });
  stringArray(record.exports, `${path}.exports`);
  if (!Array.isArray(record.star)) fail(`${path}.star`, 'an array');
  record.star.forEach((item: unknown, index: number) => {
    const at = count(item, `${path}.star[${index}]`);
    if (at >= (record.imports as unknown[]).length) fail(`${path}.star[${index}]`, 'an index into imports');
  });
  if (typeof record.tla !== 'boolean') fail(`${path}.tla`, 'a boolean');
}

/** Throws ERR_LIVEMOD_MANIFEST_INVALID naming the first field that is wrong. */
export function validateManifest(value: unknown, source: string): Manifest {
  try {
    const manifest = object(value, 'manifest');
    only(manifest, 'manifest', ['schema', 'format', 'version', 'created', 'expires', 'keyId', 'entry', 'modules', 'pack']);
    if (manifest.schema !== MANIFEST_SCHEMA) fail('manifest.schema', `"${MANIFEST_SCHEMA}" (this livemod reads no other; upgrade it if the publisher is newer)`);
    if (manifest.format !== MODULE_FORMAT) fail('manifest.format', `"${MODULE_FORMAT}"`);
    count(manifest.version, 'manifest.version', 1);
    for (const field of ['created', 'expires'] as const) {
      if (!ISO_DATE.test(string(manifest[field], `manifest.${field}`))) fail(`manifest.${field}`, 'an ISO 8601 UTC time (YYYY-MM-DDTHH:MM:SS.sssZ)');
    }
    if (!KEY_ID.test(string(manifest.keyId, 'manifest.keyId'))) fail('manifest.keyId', '16 lowercase hex digits');
    if (manifest.entry !== null) modulePath(manifest.entry, 'manifest.entry');
    const modules = object(manifest.modules, 'manifest.modules');
    for (const [path, record] of Object.entries(modules)) {
      modulePath(path, `manifest.modules key ${JSON.stringify(path)}`);
      checkModule(record, `manifest.modules[${JSON.stringify(path)}]`);
    }
    if (manifest.entry !== null && !Object.hasOwn(modules, manifest.entry as string)) fail('manifest.entry', 'null or a key of manifest.modules');
    if (manifest.pack !== undefined) {
      blobRef(manifest.pack, 'manifest.pack', ['path']);
      if (!/^pack\/[0-9a-f]{64}\.pack$/.test(string((manifest.pack as Record<string, unknown>).path, 'manifest.pack.path'))) fail('manifest.pack.path', '"pack/<hash>.pack"');
    }
    return manifest as unknown as Manifest;
  } catch (error) {
    if (!(error instanceof Invalid)) throw error;
    throw new LivemodError('snapshot', ErrorCodes.MANIFEST_INVALID, `manifest from ${source} is malformed: ${error.message}; the publisher must rebuild it with a matching livemod`, { source });
  }
}

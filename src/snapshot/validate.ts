// Structural check of a manifest body, run by clients after the signature verified and by the
// publisher before signing. It mirrors docs/manifest.schema.json (tests hold the two together);
// it is hand-written so that clients need no schema engine on their start-up path.
import { ErrorCodes, LivemodError } from '../errors.ts';
import { quoted } from '../text.ts';
import { isHash } from './hash.ts';
import { MANIFEST_SCHEMA, MODULE_FORMAT, appNameProblem, type Manifest } from './manifest.ts';

const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const KINDS = new Set(['module', 'external', 'unresolved']);

class Invalid extends Error {}

/** Where a value is, for the message: '' in the first pass (see `detailed`). */
type Path = string;

/**
 * Off for the first pass over a manifest, which then builds no path at all (every path is '':
 * no string, and no closure whose captured variables would need a context per field and loop
 * iteration; a 1.3 MB manifest took 35–45 ms with them, 10–15 ms without). A pass that fails is
 * run again with it on, only to name where: paths are then built as it goes.
 */
let detailed = false;

/** The path of a field of the value at `path`. */
function member(path: Path, name: string): Path {
  return detailed ? `${path}.${name}` : '';
}

function fail(path: Path, expected: string): never {
  throw new Invalid(`${path} must be ${expected}`);
}

function object(value: unknown, path: Path): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'an object');
  return value as Record<string, unknown>;
}

function only(record: Record<string, unknown>, path: Path, allowed: readonly string[]): void {
  for (const key in record) if (!allowed.includes(key)) fail((detailed ? `${path}[${quoted(key, 60)}]` : ''), `absent (unknown field; allowed: ${allowed.join(', ')})`);
}

function count(value: unknown, path: Path, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) fail(path, `an integer ≥ ${min}`);
  return value;
}

function string(value: unknown, path: Path): string {
  if (typeof value !== 'string') fail(path, 'a string');
  return value;
}

// Empty, ".", ".." segments; a leading "/"; backslashes and NUL.
const COMMONJS_PATH = /(?:\.c?[jt]s|(?:^|\/)[^./]+)$/;
const BAD_MODULE_PATH = /(?:^|\/)\.{0,2}(?:\/|$)|^\/|[\\\0]/;

function modulePath(value: unknown, path: Path): string {
  const name = string(value, path);
  if (name === '' || BAD_MODULE_PATH.test(name)) {
    fail(path, 'a relative posix module path without "." or ".." segments');
  }
  return name;
}

const BLOB_FIELDS = ['hash', 'size', 'offset'];
const FILE_FIELDS = [...BLOB_FIELDS, 'executable'];
const PACK_FIELDS = [...BLOB_FIELDS, 'path'];

function blobRef(value: unknown, path: Path, fields: readonly string[] = BLOB_FIELDS): void {
  const ref = object(value, path);
  only(ref, path, fields);
  if (!isHash(ref.hash)) fail((detailed ? `${path}.hash` : ''), '64 lowercase hex digits (sha256)');
  count(ref.size, (detailed ? `${path}.size` : ''));
  if (ref.offset !== undefined) count(ref.offset, (detailed ? `${path}.offset` : ''));
}

function stringArray(value: unknown, path: Path): string[] {
  if (!Array.isArray(value)) fail(path, 'an array of strings');
  for (let index = 0; index < value.length; index += 1) if (typeof value[index] !== 'string') fail((detailed ? `${path}[${index}]` : ''), 'a string');
  return value as string[];
}

const MODULE_FIELDS = ['blob', 'map', 'imports', 'exports', 'star', 'indirect', 'tla', 'error', 'commonjs'];
const IMPORT_FIELDS = ['specifier', 'kind', 'module', 'reason', 'line', 'column', 'names', 'dynamic', 'defer', 'phase', 'attributes'];

function checkModule(value: unknown, path: Path): void {
  const record = object(value, path);
  only(record, path, MODULE_FIELDS);
  blobRef(record.blob, member(path, 'blob'));
  if (record.map !== null) blobRef(record.map, member(path, 'map'));
  const imports = record.imports;
  if (!Array.isArray(imports)) fail(member(path, 'imports'), 'an array');
  for (let index = 0; index < imports.length; index += 1) {
    const at: Path = (detailed ? `${path}.imports[${index}]` : '');
    const entry = object(imports[index], at);
    only(entry, at, IMPORT_FIELDS);
    string(entry.specifier, member(at, 'specifier'));
    if (!KINDS.has(entry.kind as string)) fail(member(at, 'kind'), '"module", "external" or "unresolved"');
    if (entry.kind === 'module') modulePath(entry.module, member(at, 'module'));
    else if (entry.module !== undefined) fail(member(at, 'module'), 'absent unless kind is "module"');
    if (entry.kind === 'unresolved') {
      string(entry.reason, member(at, 'reason'));
      count(entry.line, member(at, 'line'), 1);
      count(entry.column, member(at, 'column'), 1);
    }
    stringArray(entry.names, member(at, 'names'));
    if (typeof entry.dynamic !== 'boolean') fail(member(at, 'dynamic'), 'a boolean');
    if (entry.defer !== undefined && entry.defer !== true) fail(member(at, 'defer'), 'true or absent');
    if (entry.phase !== undefined && entry.phase !== 'source') fail(member(at, 'phase'), '"source" or absent');
    if (entry.attributes !== undefined) {
      const attributes = object(entry.attributes, member(at, 'attributes'));
      for (const key in attributes) string(attributes[key], (detailed ? `${member(at, 'attributes')}[${quoted(key, 60)}]` : ''));
    }
  }
  stringArray(record.exports, member(path, 'exports'));
  const star = record.star;
  if (!Array.isArray(star)) fail(member(path, 'star'), 'an array');
  for (let index = 0; index < star.length; index += 1) {
    const at = count(star[index], (detailed ? `${path}.star[${index}]` : ''));
    if (at >= imports.length) fail((detailed ? `${path}.star[${index}]` : ''), 'an index into imports');
  }
  if (record.indirect !== undefined) {
    const indirect = object(record.indirect, member(path, 'indirect'));
    for (const name in indirect) {
      const entry = indirect[name];
      if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[1] !== 'string' || typeof entry[0] !== 'number' || !Number.isSafeInteger(entry[0]) || entry[0] < 0 || entry[0] >= imports.length) {
        fail((detailed ? `${path}.indirect[${quoted(name, 60)}]` : ''), '[an index into imports, an imported name]');
      }
    }
  }
  if (typeof record.tla !== 'boolean') fail(member(path, 'tla'), 'a boolean');
  if (record.commonjs !== undefined) {
    // A CommonJS file Node loads itself: its blob is the file as published, nothing to link below it.
    if (record.commonjs !== true) fail(member(path, 'commonjs'), 'true or absent');
    if (record.map !== null || imports.length > 0 || star.length > 0 || record.indirect !== undefined || record.tla !== false || record.error !== undefined) fail(member(path, 'commonjs'), 'only on a record without map, imports, star or indirect exports, top-level await or error');
  }
  if (record.error !== undefined) {
    const error = object(record.error, member(path, 'error'));
    only(error, member(path, 'error'), ['message', 'line', 'column']);
    string(error.message, (detailed ? `${path}.error.message` : ''));
    count(error.line, (detailed ? `${path}.error.line` : ''), 1);
    count(error.column, (detailed ? `${path}.error.column` : ''), 1);
  }
}

// npm's package name rule (old packages may have capitals).
const PACKAGE_NAME = /^(?:@[a-zA-Z0-9~-][a-zA-Z0-9._~-]*\/)?[a-zA-Z0-9~-][a-zA-Z0-9._~-]*$/;

function packageName(value: unknown, path: Path): string {
  const name = string(value, path);
  if (name.length > 214 || !PACKAGE_NAME.test(name)) fail(path, 'an npm package name');
  return name;
}

/** Paths laid out on disk: relative, no "."/".." segments, and never inside a node_modules folder livemod lays out itself. */
function filePath(value: unknown, path: Path): string {
  const name = modulePath(value, path);
  if (name.length > 1024 || name === 'node_modules' || name.startsWith('node_modules/')) fail(path, 'a relative file path (at most 1,024 characters) outside node_modules');
  return name;
}

function fileMap(value: unknown, path: Path): void {
  const files = object(value, path);
  for (const name in files) {
    filePath(name, (detailed ? `${path} key ${quoted(name)}` : ''));
    const at: Path = (detailed ? `${path}[${quoted(name)}]` : '');
    blobRef(files[name], at, FILE_FIELDS);
    const executable = (files[name] as Record<string, unknown>).executable;
    if (executable !== undefined && executable !== true) fail((detailed ? `${at}.executable` : ''), 'true or absent');
  }
}

/** A place in the laid-out node_modules: `node_modules/…`, relative, no "."/".." segments. */
function location(value: unknown, path: Path): string {
  const name = modulePath(value, path);
  if (name.length > 1024 || !/^(?:node_modules|workspaces)\/[^/]/.test(name)) fail(path, 'a node_modules or workspaces location (node_modules/<name>/…, workspaces/<name>…, at most 1,024 characters)');
  return name;
}

/** What travels with the program: files, packages and where their dependencies point. */
function checkProgram(manifest: Record<string, unknown>): void {
  if (manifest.files !== undefined) fileMap(manifest.files, 'manifest.files');
  const keys = new Set<string>();
  if (manifest.packages !== undefined) {
    const packages = object(manifest.packages, 'manifest.packages');
    for (const key in packages) {
      if (key.length === 0 || key.length > 300) fail((detailed ? `manifest.packages key ${quoted(key)}` : ''), '1 to 300 characters');
      keys.add(key);
      const at: Path = (detailed ? `manifest.packages[${quoted(key)}]` : '');
      const record = object(packages[key], at);
      only(record, at, ['name', 'version', 'files']);
      packageName(record.name, (detailed ? `${at}.name` : ''));
      const version = string(record.version, (detailed ? `${at}.version` : ''));
      if (version.length === 0 || version.length > 256) fail((detailed ? `${at}.version` : ''), 'a version of 1 to 256 characters');
      fileMap(record.files, (detailed ? `${at}.files` : ''));
    }
  }
  const places = new Set<string>();
  if (manifest.layout !== undefined) {
    const layout = object(manifest.layout, 'manifest.layout');
    for (const at in layout) {
      location(at, (detailed ? `manifest.layout key ${quoted(at)}` : ''));
      if (!keys.has(layout[at] as string)) fail((detailed ? `manifest.layout[${quoted(at)}]` : ''), 'a key of manifest.packages');
      places.add(at);
    }
  }
  if (manifest.links !== undefined) {
    const links = object(manifest.links, 'manifest.links');
    for (const at in links) {
      location(at, (detailed ? `manifest.links key ${quoted(at)}` : ''));
      if (places.has(at)) fail((detailed ? `manifest.links key ${quoted(at)}` : ''), 'a location that holds no package');
      location(links[at], (detailed ? `manifest.links[${quoted(at)}]` : ''));
    }
    // Nothing may be laid out through a link (a folder made there would land where the link points,
    // and a link's relative target would be reckoned from the wrong place): no location, and no
    // link target, under another link.
    const under = (path: string): string | undefined => Object.keys(links).find((link) => path.startsWith(`${link}/`));
    for (const path of [...places, ...Object.keys(links), ...Object.values(links).map(String)]) {
      const link = under(path);
      if (link !== undefined) fail((detailed ? `manifest layout location ${quoted(path)}` : ''), `a location not under the link ${quoted(link)}`);
    }
  }
  if (manifest.externals !== undefined) {
    const externals = object(manifest.externals, 'manifest.externals');
    for (const name in externals) {
      packageName(name, (detailed ? `manifest.externals key ${quoted(name)}` : ''));
      if (string(externals[name], (detailed ? `manifest.externals[${quoted(name)}]` : '')).length > 256) fail((detailed ? `manifest.externals[${quoted(name)}]` : ''), 'a version range of at most 256 characters');
    }
  }
}

/** Throws ERR_LIVEMOD_MANIFEST_INVALID naming the first field that is wrong. */
export function validateManifest(value: unknown, source: string): Manifest {
  try {
    return checkManifest(value);
  } catch (error) {
    if (!(error instanceof Invalid)) throw error;
    // Again, naming where: the same checks, so the same verdict.
    detailed = true;
    try {
      checkManifest(value);
    } catch (again) {
      if (!(again instanceof Invalid)) throw again;
      throw new LivemodError('snapshot', ErrorCodes.MANIFEST_INVALID, `manifest from ${source} is malformed: ${again.message}; the publisher must rebuild it with a matching livemod`, { source });
    } finally {
      detailed = false;
    }
    throw new LivemodError('snapshot', ErrorCodes.MANIFEST_INVALID, `manifest from ${source} is malformed: ${error.message}; the publisher must rebuild it with a matching livemod`, { source });
  }
}

function checkManifest(value: unknown): Manifest {
  const manifest = object(value, 'manifest');
  only(manifest, 'manifest', ['schema', 'format', 'version', 'name', 'created', 'expires', 'keyId', 'entry', 'modules', 'pack', 'files', 'packages', 'layout', 'links', 'externals']);
  if (manifest.schema !== MANIFEST_SCHEMA) fail('manifest.schema', `"${MANIFEST_SCHEMA}" (this livemod reads no other; upgrade it if the publisher is newer)`);
  if (manifest.format !== MODULE_FORMAT) fail('manifest.format', `"${MODULE_FORMAT}"`);
  count(manifest.version, 'manifest.version', 1);
  const nameProblem = appNameProblem(manifest.name);
  if (nameProblem) fail('manifest.name', `an app name: ${nameProblem}`);
  for (const field of ['created', 'expires'] as const) {
    if (!ISO_DATE.test(string(manifest[field], `manifest.${field}`))) fail(`manifest.${field}`, 'an ISO 8601 UTC time (YYYY-MM-DDTHH:MM:SS.sssZ)');
  }
  if (!KEY_ID.test(string(manifest.keyId, 'manifest.keyId'))) fail('manifest.keyId', '16 lowercase hex digits');
  if (manifest.entry !== null) modulePath(manifest.entry, 'manifest.entry');
  const modules = object(manifest.modules, 'manifest.modules');
  const commonjs: string[] = [];
  for (const path in modules) {
    modulePath(path, (detailed ? `manifest.modules key ${quoted(path)}` : ''));
    checkModule(modules[path], (detailed ? `manifest.modules[${quoted(path)}]` : ''));
    if ((modules[path] as { commonjs?: unknown }).commonjs === true) commonjs.push(path);
  }
  if (manifest.entry !== null && !Object.hasOwn(modules, manifest.entry as string)) fail('manifest.entry', 'null or a key of manifest.modules');
  if (manifest.pack !== undefined) {
    blobRef(manifest.pack, 'manifest.pack', PACK_FIELDS);
    if (!/^pack\/[0-9a-f]{64}\.pack$/.test(string((manifest.pack as Record<string, unknown>).path, 'manifest.pack.path'))) fail('manifest.pack.path', '"pack/<hash>.pack"');
  }
  checkProgram(manifest);
  // Node loads a CommonJS module from the version's folder by its path: it must be a script file
  // there, the very file the record names (a local manifest, without files, is the folder itself).
  const files = manifest.files as Record<string, { hash?: unknown }> | undefined;
  for (const path of commonjs) {
    const at = detailed ? `manifest.modules[${quoted(path)}].commonjs` : '';
    if (!COMMONJS_PATH.test(path)) fail(at, 'only on a .js, .ts, .cjs or .cts file, or one without an extension');
    if (files !== undefined && (!Object.hasOwn(files, path) || files[path]!.hash !== (modules[path] as { blob: { hash: string } }).blob.hash)) fail(at, 'only on a file of manifest.files with the same hash');
  }
  return manifest as unknown as Manifest;
}

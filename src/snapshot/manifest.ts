// The manifest format (docs/protocol.md is the prose, docs/manifest.schema.json the schema).
// A manifest is served inside an envelope, `{"envelope","signatures","signed"}`, whose bytes up to
// `signed` have a fixed layout: a client reads the key ids and signatures from that short header
// and verifies them over the raw bytes of `signed` before it parses anything (src/snapshot/seal.ts).
// Everything a later feature needs from a module is here already: imports with their bound
// names (lazy loading, hot-swap boundaries), export names, star re-exports, top-level await.

export const MANIFEST_SCHEMA = 'livemod/manifest@3';
/** The envelope layout: a fixed-layout header, then the signed bytes (docs/protocol.md, "Manifest"). */
export const ENVELOPE_FORMAT = 'livemod/envelope@2';
/** Most signatures an envelope may carry (key rotation needs two): the header stays a few hundred bytes. */
export const MAX_SIGNATURES = 4;
/** The module format the blobs are written in (see src/snapshot/transform.ts). */
export const MODULE_FORMAT = 'livemod/fn@2';
/** Domain separation: a manifest signature can never be replayed as a signature of anything else. */
export const SIGNATURE_CONTEXT = 'livemod manifest signature v2\n';

export interface BlobRef {
  /** sha256 hex of the exact bytes. */
  readonly hash: string;
  readonly size: number;
  /** Byte offset of this blob in the snapshot's pack file (published snapshots only). */
  readonly offset?: number;
}

export type ImportKind = 'module' | 'external' | 'unresolved';

export interface ImportRecord {
  /** The specifier as written in the source. */
  readonly specifier: string;
  readonly kind: ImportKind;
  /** kind "module": the module path inside the snapshot. */
  readonly module?: string;
  /** kind "unresolved": why resolution failed, and where the import is (1-based). */
  readonly reason?: string;
  readonly line?: number;
  readonly column?: number;
  /** Imported binding names: "default", a name, or "*" for the whole namespace; empty for `import './x'`. */
  readonly names: readonly string[];
  /** Only reached through `import()` with this literal specifier. */
  readonly dynamic: boolean;
  /** `import defer * as ns from …`. */
  readonly defer?: boolean;
  /** `import source x from …`: a source-phase import (JS modules have no source object: link fails). */
  readonly phase?: 'source';
  /** Import attributes of a static import (`with { type: 'json' }`), keys sorted. */
  readonly attributes?: Readonly<Record<string, string>>;
}

/** Why a module could not be built: importing it fails with a SyntaxError at link time. */
export interface ModuleError {
  readonly message: string;
  /** Where in the original file (1-based). */
  readonly line: number;
  readonly column: number;
}

export interface ModuleRecord {
  readonly blob: BlobRef;
  /** Source map blob (JSON, with the original source inlined), or null (JSON modules). */
  readonly map: BlobRef | null;
  /** Static imports first, in source order (they are the module function's parameters), then dynamic ones. */
  readonly imports: readonly ImportRecord[];
  /** Names this module exports itself (including `export * as ns`), sorted. */
  readonly exports: readonly string[];
  /** Indices into `imports` of `export * from` targets, in source order. */
  readonly star: readonly number[];
  /**
   * Exports that forward an imported binding (`export { a } from`, `import { a }; export { a }`,
   * `export * as ns from`): name → [import index, imported name, or "*" for the namespace].
   * Absent when there are none. Two `export *` offering one name are ambiguous only when the
   * name resolves to different bindings, which needs this.
   */
  readonly indirect?: Readonly<Record<string, readonly [number, string]>>;
  /** Uses top-level await: evaluated as an async function. */
  readonly tla: boolean;
  /**
   * The module does not parse, or has an early error. Its blob is then the source as read (no
   * map, no imports or exports), and importing it fails with a SyntaxError at link time.
   */
  readonly error?: ModuleError;
  /**
   * A CommonJS file of the program (`.cjs`, `.cts`, or a `.js`/`.ts` file Node would run as
   * CommonJS): Node loads it itself, from the version's folder, when the module evaluates. Its
   * blob is the file as published; `exports` are the names Node's CommonJS lexer finds, with
   * `default` and `module.exports`; it has no map, imports or top-level await.
   */
  readonly commonjs?: true;
}

export interface Manifest {
  readonly schema: typeof MANIFEST_SCHEMA;
  readonly format: typeof MODULE_FORMAT;
  /** Strictly increasing per publisher: clients refuse a lower one (rollback). */
  readonly version: number;
  /**
   * The app this is a snapshot of (the folder's package.json `name`, else the folder's name, or
   * `--name`). Clients refuse a manifest naming another app than the one they accepted from (or
   * pinned for) its origin: one key may sign many apps, and a host must not swap them.
   */
  readonly name: string;
  /** ISO 8601, UTC. */
  readonly created: string;
  /** ISO 8601, UTC. Clients refuse a manifest past it (freeze). */
  readonly expires: string;
  /** Key id of the publisher key that signs it. */
  readonly keyId: string;
  /** The module `livemod run <origin>` starts when no module is named, or null. */
  readonly entry: string | null;
  /** Module path (posix, relative to the published folder) → record. */
  readonly modules: Readonly<Record<string, ModuleRecord>>;
  /** The pack file holding every blob (published snapshots only). */
  readonly pack?: BlobRef & { readonly path: string };
  /**
   * Every file of the published folder (module sources as written, and every other file), by
   * path: the client lays them out as a real folder, so the program finds its own files.
   * Absent: a manifest of modules only (a local run, or a test's snapshot).
   */
  readonly files?: Readonly<Record<string, FileRef>>;
  /** The npm packages that travel with the program, by key (`name@version`, `#2`… for a copy whose files differ). */
  readonly packages?: Readonly<Record<string, PackageRecord>>;
  /**
   * The node_modules layout as the publisher's Node saw it: location (`node_modules/a`,
   * `node_modules/a/node_modules/b`, …; `workspaces/<name>` for a workspace package, linked from
   * its place in node_modules) → key in `packages`. Nested copies and hoisting as installed.
   */
  readonly layout?: Readonly<Record<string, string>>;
  /** Symbolic links of the layout (a pnpm install): location → the location it points to. */
  readonly links?: Readonly<Record<string, string>>;
  /**
   * Packages kept out on purpose (`--external`) or not installed at publish: name → the version
   * range the folder's package.json asks for ("" when it names none). The client resolves them
   * from its own node_modules, and its error names the range.
   */
  readonly externals?: Readonly<Record<string, string>>;
}

/** A file laid out on the client: its blob, and whether it is executable (a package's shipped script). */
export interface FileRef extends BlobRef {
  readonly executable?: true;
}

/** One npm package version the program needs, as installed in the publisher's folder: every file of it (not its own node_modules). */
export interface PackageRecord {
  readonly name: string;
  readonly version: string;
  /** Path inside the package (posix) → blob. */
  readonly files: Readonly<Record<string, FileRef>>;
}

export interface ManifestSignature {
  readonly keyId: string;
  /** base64url ed25519 signature of SIGNATURE_CONTEXT + hex sha256 of the raw bytes of `signed`. */
  readonly sig: string;
}

export interface SignedManifest {
  readonly envelope: typeof ENVELOPE_FORMAT;
  readonly signed: Manifest;
  readonly signatures: readonly ManifestSignature[];
}

/**
 * Calls `visit` for every blob reference of a manifest, with what it is for messages: modules
 * (code, then source map) in path order, then files, then package files.
 */
export function eachBlob(manifest: Manifest, visit: (ref: BlobRef, what: string) => void): void {
  for (const path of Object.keys(manifest.modules).sort()) {
    const record = manifest.modules[path]!;
    visit(record.blob, path);
    if (record.map) visit(record.map, `${path} (source map)`);
  }
  const files = manifest.files ?? {};
  for (const path of Object.keys(files)) visit(files[path]!, `file ${path}`);
  const packages = manifest.packages ?? {};
  for (const key of Object.keys(packages)) {
    const record = packages[key]!;
    for (const path of Object.keys(record.files)) visit(record.files[path]!, `package ${key}: ${path}`);
  }
}

/** Every blob a manifest references (code, maps, files, package files), deduplicated, in eachBlob's order. */
export function manifestBlobs(manifest: Manifest): BlobRef[] {
  const seen = new Map<string, BlobRef>();
  eachBlob(manifest, (ref) => {
    if (!seen.has(ref.hash)) seen.set(ref.hash, ref);
  });
  return [...seen.values()];
}

/**
 * The modules `roots` reach through static imports (and `export … from`), roots included; with
 * `follows`, only through the imports it accepts (import `index` of `record`, the module at `path`).
 */
export function staticClosure(manifest: Pick<Manifest, 'modules'>, roots: Iterable<string>, follows?: (path: string, record: ModuleRecord, index: number) => boolean): Set<string> {
  const seen = new Set<string>();
  const queue = [...roots].filter((path) => Object.hasOwn(manifest.modules, path));
  for (let at = 0; at < queue.length; at += 1) {
    const path = queue[at]!;
    if (seen.has(path)) continue;
    seen.add(path);
    const record = manifest.modules[path]!;
    for (let index = 0; index < record.imports.length; index += 1) {
      const entry = record.imports[index]!;
      if (entry.dynamic || entry.kind !== 'module' || entry.module === undefined || seen.has(entry.module) || !Object.hasOwn(manifest.modules, entry.module)) continue;
      if (follows === undefined || follows(path, record, index)) queue.push(entry.module);
    }
  }
  return seen;
}

/** The code and source map blobs of `modules`. */
export function moduleBlobs(manifest: Manifest, modules: Iterable<string>, what: { code?: boolean; maps?: boolean } = {}): BlobRef[] {
  const refs: BlobRef[] = [];
  for (const path of modules) {
    const record = Object.hasOwn(manifest.modules, path) ? manifest.modules[path] : undefined;
    if (!record) continue;
    if (what.code !== false) refs.push(record.blob);
    if (record.map && what.maps !== false) refs.push(record.map);
  }
  return refs;
}

/**
 * What a client fetches to run `modules`: their code (and source maps, with `maps`; else a client
 * fetches a map when a stack first needs it), plus every file and package file (laid out as a
 * folder, which the program may read at any time).
 */
export function blobsToRun(manifest: Manifest, modules: Iterable<string>, options: { maps?: boolean } = {}): BlobRef[] {
  const seen = new Map<string, BlobRef>();
  const add = (ref: BlobRef): void => {
    if (!seen.has(ref.hash)) seen.set(ref.hash, ref);
  };
  for (const ref of moduleBlobs(manifest, modules, { maps: options.maps !== false })) add(ref);
  for (const ref of Object.values(manifest.files ?? {})) add(ref);
  for (const record of Object.values(manifest.packages ?? {})) for (const ref of Object.values(record.files)) add(ref);
  return [...seen.values()];
}

/** Whether a manifest carries the program (files or packages), so that a client lays it out as a folder. */
export function carriesProgram(manifest: Manifest): boolean {
  return manifest.files !== undefined || manifest.packages !== undefined;
}

/** Whether npm packages travel with it (else externals come from the client's own node_modules). */
export function carriesPackages(manifest: Manifest): boolean {
  return manifest.layout !== undefined;
}

/** Whether two file maps lay out the same bytes: paths, hashes and modes (where a pack holds a blob says nothing of it). */
function sameFiles(a: Readonly<Record<string, FileRef>>, b: Readonly<Record<string, FileRef>>): boolean {
  const paths = Object.keys(a);
  if (paths.length !== Object.keys(b).length) return false;
  for (const path of paths) {
    const other = Object.hasOwn(b, path) ? b[path] : undefined;
    if (other === undefined || other.hash !== a[path]!.hash || other.executable !== a[path]!.executable) return false;
  }
  return true;
}

/**
 * How the npm packages two versions carry differ, one entry a location (`+name@version` added,
 * `-name@version` removed, `name@a → name@b` changed, or its files changed), then any change of
 * links; empty when they lay out the same node_modules. For a swap, which cannot change them.
 */
export function changedPackages(before: Manifest, after: Manifest): string[] {
  if (before.layout === after.layout && before.links === after.links) return [];
  const label = (manifest: Manifest, location: string): string => {
    const record = manifest.packages?.[manifest.layout?.[location] ?? ''];
    return record ? `${record.name}@${record.version}` : location;
  };
  const changes: string[] = [];
  const locations = new Set([...Object.keys(before.layout ?? {}), ...Object.keys(after.layout ?? {})]);
  for (const location of [...locations].sort()) {
    const was = before.layout?.[location];
    const is = after.layout?.[location];
    if (was === undefined) changes.push(`+${label(after, location)}`);
    else if (is === undefined) changes.push(`-${label(before, location)}`);
    else if (label(before, location) !== label(after, location)) changes.push(`${label(before, location)} → ${label(after, location)}`);
    else if (!sameFiles(before.packages?.[was]?.files ?? {}, after.packages?.[is]?.files ?? {})) changes.push(`${label(after, location)} (its files)`);
  }
  if (JSON.stringify(before.links ?? {}) !== JSON.stringify(after.links ?? {})) changes.push('the links of node_modules');
  return changes;
}

/** Longest app name: npm's own limit on package names is 214; a folder name is rarely long. */
export const MAX_APP_NAME = 128;

/**
 * Why `name` cannot be an app name, or null when it can: 1–128 characters, none of them a control
 * or bidi character (a name is printed in messages and must read as what it is).
 */
export function appNameProblem(name: unknown): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'a non-empty string';
  if (name.length > MAX_APP_NAME) return `at most ${MAX_APP_NAME} characters`;
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/.test(name)) return 'free of control and bidi characters';
  return null;
}

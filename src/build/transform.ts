// One source file → one module blob in the livemod function format (MODULE_FORMAT), with a
// source map. The blob depends on the file's text alone, never on where its imports resolve,
// so identical files share a blob and a file is re-transformed only when it changes.
//
// The format (docs/protocol.md, "Module format"): the blob is the body of a generator function
//   function* (__lm, __lm_0, __lm_1, …) { "use strict"; __lm.x({…getters}); yield; …code… }
// (async function* when the module uses top-level await). __lm_i is the namespace of the
// module's i-th static import, handed in by the registry; __lm is the module's context:
// __lm.x(getters) registers its exports, __lm.meta is import.meta, __lm.import() is import().
// Every read of an imported binding becomes a property read on a registry-owned namespace
// (`a` → `__lm_0.a`), which is what lets the registry re-point a namespace at a new version
// (swap) or create it on first read (lazy). The first next() is ES module instantiation: the
// exports exist and hoisted functions are callable (cycles work, `let` is in its TDZ); the
// second next() is evaluation. The prologue ends its line, so the code keeps its own lines.
import { createRequire } from 'node:module';
import type * as OxcParser from 'oxc-parser';
import type { ParserOptions } from 'oxc-parser';
import type * as OxcTransform from 'oxc-transform';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { Edits, identityMappings, shiftMappings } from './edits.ts';
import { scanModule, type EsNode, type ScannedSite } from './scan.ts';

export interface ImportSite {
  readonly specifier: string;
  /** Bound names: "default", a name, "*"; empty for side-effect imports. */
  readonly names: readonly string[];
  readonly dynamic: boolean;
  readonly defer: boolean;
  readonly phase?: 'source';
  readonly attributes?: Readonly<Record<string, string>>;
  /** Where the specifier is in the original file (1-based), for messages. */
  readonly line: number;
  readonly column: number;
}

export interface ModuleTransform {
  readonly code: string;
  /** Source map JSON (version 3) pointing at the original file, or null for JSON modules. */
  readonly map: string | null;
  /** Static imports first (function parameters, in order), then literal dynamic ones. */
  readonly imports: readonly ImportSite[];
  readonly exports: readonly string[];
  readonly star: readonly number[];
  /** Exports forwarding an import's binding: name → [import index, imported name or "*"]. */
  readonly indirect: Readonly<Record<string, readonly [number, string]>>;
  readonly tla: boolean;
  /**
   * Has ES module syntax (a static import or export, `import.meta`, top-level await): Node runs
   * such a file as an ES module whatever its package scope says. Absent: JSON, CommonJS.
   */
  readonly esm?: boolean;
  /** A CommonJS file Node loads itself (nativeModule): `code` is the file as written, `exports` what Node's lexer finds. */
  readonly commonjs?: true;
  /** A CommonJS file's `require()`s of files beside it (literal relative specifiers): what a local run builds, and watches, with it. */
  readonly requires?: readonly string[];
  /** A CommonJS file's other literal `require()`s (packages among them): the packages travel with the program as its imports' do. */
  readonly packages?: readonly string[];
  /** What a CommonJS file re-exports whole (`module.exports = require('./impl')`, tsc's `__exportStar`), as Node's lexer reports it. */
  readonly reexports?: readonly string[];
}

interface Toolchain {
  readonly parseSync: typeof OxcParser.parseSync;
  readonly transformSync: typeof OxcTransform.transformSync;
  readonly parseOptions: ParserOptions;
  readonly rawOptions: ParserOptions;
}

let parses = 0;

let toolchain: Toolchain | undefined;

/**
 * The parser and transformer, loaded on the first build: a client that only runs snapshots
 * imports this subsystem for manifests and keys, and should not pay ~10 ms for native addons
 * it never calls. (require() of these ES modules is synchronous on Node 24.)
 */
function tools(): Toolchain {
  if (!toolchain) {
    const require = createRequire(import.meta.url);
    const parser = require('oxc-parser') as typeof OxcParser;
    const transformer = require('oxc-transform') as typeof OxcTransform;
    // Semantic errors are the module early errors (redeclarations, exports of undeclared names,
    // duplicate exports, reserved words): V8 would refuse such a module at link time too.
    const parseOptions = { sourceType: 'module', lang: 'js', showSemanticErrors: true } as ParserOptions;
    // Raw transfer hands the AST over in a shared buffer: about twice as fast per file as the
    // JSON path, but its first call costs ~25 ms (the buffer), more than a local run of a few
    // modules parses in all. So it starts with the 17th file of a process. The option exists in
    // the parser but not in its type declarations.
    const rawOptions = { ...parseOptions, experimentalRawTransfer: parser.rawTransferSupported() } as ParserOptions;
    toolchain = { parseSync: parser.parseSync, transformSync: transformer.transformSync, parseOptions, rawOptions };
  }
  return toolchain;
}
const TS_LIKE = /\.(?:ts|tsx|mts|cts|jsx)$/;

export function isTypeScriptLike(path: string): boolean {
  return TS_LIKE.test(path);
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let index = text.indexOf('\n'); index !== -1 && index < offset; index = text.indexOf('\n', index + 1)) {
    line += 1;
    start = index + 1;
  }
  return { line, column: offset - start + 1 };
}

interface OxcError {
  readonly message: string;
  readonly labels?: readonly { readonly start: number; readonly end: number }[];
}

/**
 * A file that is not a module livemod can run. The builder publishes it marked (its import fails
 * with a SyntaxError at link time) instead of failing the whole build; `reason` is what the
 * SyntaxError says.
 */
function buildError(path: string, reason: string, at: { line: number; column: number }, stage: string, cause?: unknown): LivemodError {
  const details = { path, line: at.line, column: at.column, reason };
  return new LivemodError('build', ErrorCodes.BUILD_FAILED, `${path}:${at.line}:${at.column}: ${reason} (${stage}); fix the source and rebuild`, details, cause === undefined ? undefined : { cause });
}

function parseError(path: string, text: string, errors: readonly OxcError[], stage: string): LivemodError {
  const first = errors[0]!;
  const at = first.labels?.[0] ? lineColumn(text, first.labels[0].start) : { line: 1, column: 1 };
  return buildError(path, first.message, at, stage);
}

function jsonModule(path: string, source: string): ModuleTransform {
  try {
    JSON.parse(source);
  } catch (error) {
    const position = /position (\d+)/.exec((error as Error).message);
    throw buildError(path, `not valid JSON: ${(error as Error).message}`, position ? lineColumn(source, Number(position[1])) : { line: 1, column: 1 }, 'JSON');
  }
  // A JSON text is a valid JS expression (ES2019 admits U+2028/2029 in strings).
  // JSON.parse of a string literal: `__proto__` is a plain key there (in a JS object literal it
  // would set the prototype), and V8 parses big JSON faster this way than as a literal.
  const code = `"use strict";__lm.x({default:()=>__lm_default});yield;\nconst __lm_default=JSON.parse(${JSON.stringify(source)});\n`;
  return { code, map: null, imports: [], exports: ['default'], star: [], indirect: {}, tla: false };
}

/**
 * Finds each import's specifier in the original text, in order, for messages about it. The
 * transformer keeps specifiers as written, so a search from the previous one finds it; the
 * position in the transformed JS is the fallback. Done now, so that nothing of the file's
 * text has to be kept for a later lookup.
 */
function locateImports(source: string, js: string, sites: readonly ScannedSite[]): ImportSite[] {
  let from = 0;
  return sites.map(({ offset, ...site }) => {
    let at = -1;
    for (const quote of ["'", '"', '`']) {
      const found = source.indexOf(quote + site.specifier + quote, from);
      if (found !== -1 && (at === -1 || found < at)) at = found;
    }
    const position = at === -1 ? lineColumn(js, offset) : lineColumn(source, at);
    if (at !== -1 && !site.dynamic) from = at + 1;
    return { ...site, ...position };
  });
}

const JSX = /\.(?:tsx|jsx)$/;

export function transformModule(path: string, source: string): ModuleTransform {
  if (path.endsWith('.json')) return jsonModule(path, source);
  if (isCommonJsFile(path)) return nativeModule(path, source);
  let js = source;
  let tsMap: { mappings: string; names: string[] } | null = null;
  if (isTypeScriptLike(path)) {
    // JSX handling doubles the transformer's cost: ask for it only where JSX can appear.
    const result = tools().transformSync(path, source, JSX.test(path) ? { sourcemap: true, target: 'esnext', jsx: { runtime: 'automatic' } } : { sourcemap: true, target: 'esnext' });
    if (result.errors.length > 0) throw parseError(path, source, result.errors, 'TypeScript transform');
    js = result.code;
    tsMap = { mappings: result.map!.mappings, names: result.map!.names };
  }
  const { parseSync, parseOptions, rawOptions } = tools();
  parses += 1;
  const parsed = parseSync(path.replace(TS_LIKE, '.js'), js, parses > 16 ? rawOptions : parseOptions);
  if (parsed.errors.length > 0) throw parseError(path, js, parsed.errors, 'parse');
  const edits = new Edits();
  let scan;
  try {
    scan = scanModule(parsed.program as unknown as EsNode, js, edits);
  } catch (error) {
    // A form the rewrite does not know: one file's build error, not a crash of the whole build.
    throw buildError(path, `livemod cannot rewrite this module (${(error as Error).message}); please report it with the file`, { line: 1, column: 1 }, 'rewrite', error);
  }
  const edited = edits.apply(js);
  const code = `"use strict";${scan.prologue}yield;\n${edited}`;
  let identity = tsMap ? null : identityMappings(js);
  // A map is never bigger than its code: minified code, dense with short words, maps every few words instead.
  if (identity !== null && identity.length > code.length * 0.8) identity = identityMappings(js, Math.ceil(identity.length / (code.length * 0.4)));
  const mappings = shiftMappings(tsMap ? tsMap.mappings : identity!, js, edited, edits, 1);
  // No sourcesContent: the source travels as a file of the snapshot (and is on disk for a local run); a map
  // carrying it again was bigger than the code.
  const map = JSON.stringify({ version: 3, sources: [path], names: tsMap?.names ?? [], mappings });

  const imports = locateImports(source, js, scan.sites);
  // In the source as written: the transformer adds `export {}` to a TypeScript file it removed type-only imports from.
  let esm = scan.tla || scan.meta || scan.exports.length > 0 || scan.sites.some((site) => !site.dynamic) || EXPORT_STATEMENT.test(source);
  // The transformer drops an import used only as a type, which Node's type stripping keeps: the TypeScript says.
  if (!esm && tsMap !== null) esm = typeScriptModuleSyntax(path, source);
  return { code, map, imports, exports: scan.exports, star: scan.star, indirect: scan.indirect, tla: scan.tla, esm };
}

/**
 * Whether a JavaScript file that does not parse as a module parses as CommonJS (Node's other
 * reading of a file without ES module syntax): sloppy code, `with`, a top-level `return`. A
 * file that parses as neither is a syntax error either way, reported as one at build time.
 */
export function parsesAsCommonJs(path: string, source: string): boolean {
  if (isTypeScriptLike(path) || path.endsWith('.json')) return false;
  const { parseSync, parseOptions } = tools();
  parses += 1;
  return parseSync(path, source, { ...parseOptions, sourceType: 'commonjs' }).errors.length === 0;
}

/**
 * Whether a TypeScript file has ES module syntax once Node strips its types: an import or export
 * declaration that is not type-only (`import type`, `export type`, `export interface`, a
 * `declare`d export are erased; `import { T }` of a type only is not).
 */
function typeScriptModuleSyntax(path: string, source: string): boolean {
  const { parseSync, parseOptions } = tools();
  parses += 1;
  const parsed = parseSync(path, source, { ...parseOptions, lang: JSX.test(path) ? 'tsx' : 'ts', showSemanticErrors: false });
  for (const node of parsed.program.body as unknown as EsNode[]) {
    switch (node.type) {
      case 'ImportDeclaration':
        if (node.importKind !== 'type') return true;
        break;
      case 'ExportAllDeclaration':
      case 'ExportNamedDeclaration': {
        if (node.exportKind === 'type') break;
        const declaration = node.declaration as EsNode | null | undefined;
        if (declaration && (declaration.declare === true || ERASED.has(declaration.type))) break;
        return true;
      }
      case 'ExportDefaultDeclaration':
        if ((node.declaration as EsNode).type !== 'TSInterfaceDeclaration') return true;
        break;
      default:
        break;
    }
  }
  return false;
}

const ERASED = new Set(['TSInterfaceDeclaration', 'TSTypeAliasDeclaration', 'TSDeclareFunction']);

/** `export {}` and the like export no name but are ES module syntax all the same. */
const EXPORT_STATEMENT = /^\s*export\s*\{/m;

const COMMONJS_FILE = /\.c[jt]s$/;
const EMPTY_EXPORT = /^export \{\};?[ \t]*$/m;

/** Whether a path is CommonJS by its extension alone (`.cjs`, `.cts`). */
export function isCommonJsFile(path: string): boolean {
  return COMMONJS_FILE.test(path);
}

interface CommonJsLexer {
  parse(source: string, name?: string): { exports: string[]; reexports: string[] };
}

let lexer: CommonJsLexer | undefined;

/**
 * A CommonJS file of the program, which Node loads itself: its record carries the file as
 * written and the names an `import` of it binds, found as Node finds them (its own CommonJS
 * lexer, the same package at the version Node 24 bundles), with `default` and `module.exports`.
 * A file the lexer cannot read exports those two only, as in Node.
 */
export function nativeModule(path: string, source: string): ModuleTransform {
  lexer ??= createRequire(import.meta.url)('cjs-module-lexer') as CommonJsLexer;
  let js = source;
  if (isTypeScriptLike(path)) {
    // The transformer marks a file it removed type-only imports from with `export {}`: Node strips them to nothing.
    const result = tools().transformSync(path, source, { target: 'esnext' });
    if (result.errors.length === 0) js = result.code.replace(EMPTY_EXPORT, '');
  }
  const names = new Set(['default', 'module.exports']);
  let reexports: string[] = [];
  try {
    const lexed = lexer.parse(js, path);
    for (const name of lexed.exports) names.add(name);
    reexports = lexed.reexports;
  } catch {
    // What Node does too: a file its lexer cannot read has only the default export.
  }
  const requires = new Set<string>();
  const packages = new Set<string>();
  for (const match of js.matchAll(LITERAL_REQUIRE)) {
    const specifier = match[2]!;
    // A package name is told from a builtin, a path or a URL where the packages are collected (program.ts packageOf).
    if (specifier.startsWith('./') || specifier.startsWith('../') || specifier === '.' || specifier === '..') requires.add(specifier);
    else packages.add(specifier);
  }
  return { code: source, map: null, imports: [], exports: [...names].sort(), star: [], indirect: {}, tla: false, commonjs: true, requires: [...requires], ...(packages.size > 0 ? { packages: [...packages] } : {}), ...(reexports.length > 0 ? { reexports } : {}) };
}

// A literal require(…), and a literal import(…) (a CommonJS file's way to an ES module): the files and packages they name.
const LITERAL_REQUIRE = /\b(?:require|import)\s*\(\s*(['"])([^'"\n]{1,1000})\1\s*\)/g;

// The import/export rewrite of one parsed ES module (see transform.ts for the format).
// Imported bindings are rewritten where they are referenced, with a scope check so that a
// local variable of the same name is left alone; declarations that export are unwrapped and
// their names turned into getters registered by the prologue.
import type { Edits } from './edits.ts';
import type { ImportSite } from './transform.ts';

export interface EsNode {
  readonly type: string;
  readonly start: number;
  readonly end: number;
  readonly [key: string]: unknown;
}

interface Binding {
  readonly index: number;
  /** null: the whole namespace (`import * as ns`). */
  readonly name: string | null;
}

/** An import as the scan sees it: `offset` is the specifier's position in the scanned JS. */
export type ScannedSite = Omit<ImportSite, 'line' | 'column'> & { readonly offset: number };

export interface ModuleScan {
  readonly prologue: string;
  readonly sites: ScannedSite[];
  readonly exports: string[];
  readonly star: number[];
  /** Exports that forward an import's binding: export name → [import index, imported name or "*"]. */
  readonly indirect: Record<string, [number, string]>;
  readonly tla: boolean;
  /** Reads `import.meta`: ES module syntax, as a static import or export is. */
  readonly meta: boolean;
}

interface MutableSite {
  specifier: string;
  names: Set<string>;
  dynamic: boolean;
  defer: boolean;
  phase?: 'source';
  attributes?: Record<string, string>;
  offset: number;
}

/** The `with { … }` of a static import or re-export, keys sorted; undefined when there is none. */
function attributesOf(statement: EsNode): Record<string, string> | undefined {
  const list = statement.attributes as EsNode[] | undefined;
  if (!list || list.length === 0) return undefined;
  const entries = list.map((attribute) => [moduleName(attribute.key as EsNode), String((attribute.value as EsNode).value)] as const);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(entries);
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function moduleName(node: EsNode): string {
  return node.type === 'Identifier' ? (node.name as string) : String(node.value);
}

function propertyAccess(base: string, name: string): string {
  return IDENTIFIER.test(name) ? `${base}.${name}` : `${base}[${JSON.stringify(name)}]`;
}

function isNode(value: unknown): value is EsNode {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

/** Names bound by a declaration pattern, or written by an assignment target (whose other leaves, member expressions, bind nothing). */
function patternNames(pattern: EsNode | null | undefined, into: Set<string>): void {
  if (!pattern) return;
  switch (pattern.type) {
    case 'Identifier':
      into.add(pattern.name as string);
      return;
    case 'ParenthesizedExpression':
      patternNames(pattern.expression as EsNode, into);
      return;
    case 'ObjectPattern':
      for (const property of pattern.properties as EsNode[]) patternNames(property.type === 'RestElement' ? (property.argument as EsNode) : (property.value as EsNode), into);
      return;
    case 'ArrayPattern':
      for (const element of pattern.elements as (EsNode | null)[]) patternNames(element, into);
      return;
    case 'AssignmentPattern':
      patternNames(pattern.left as EsNode, into);
      return;
    case 'RestElement':
      patternNames(pattern.argument as EsNode, into);
      return;
    default:
      return;
  }
}

/** Skips whitespace and comments from `at`. */
function skipTrivia(code: string, at: number): number {
  for (;;) {
    while (at < code.length && /\s/.test(code[at]!)) at += 1;
    if (code.startsWith('//', at)) {
      const end = code.indexOf('\n', at);
      at = end === -1 ? code.length : end + 1;
    } else if (code.startsWith('/*', at)) {
      const end = code.indexOf('*/', at + 2);
      at = end === -1 ? code.length : end + 2;
    } else {
      return at;
    }
  }
}

/** The end of `word` at `at`; throws when the code there is something else. */
function expectWord(code: string, at: number, word: string): number {
  if (!code.startsWith(word, at)) throw new SyntaxError(`expected \`${word}\` at offset ${at}`);
  return at + word.length;
}

function isAnonymousFunction(node: EsNode): boolean {
  if (node.type === 'ParenthesizedExpression') return isAnonymousFunction(node.expression as EsNode);
  return node.type === 'ArrowFunctionExpression' || ((node.type === 'FunctionExpression' || node.type === 'ClassExpression') && !node.id);
}

const FUNCTIONS = new Set(['FunctionDeclaration', 'FunctionExpression', 'ArrowFunctionExpression']);

/** `var` declarations hoisted to the function (or static block) whose body this is. */
function varNames(node: EsNode | null | undefined, into: Set<string>): void {
  if (!node || FUNCTIONS.has(node.type) || node.type.startsWith('Class')) return;
  if (node.type === 'VariableDeclaration') {
    if (node.kind === 'var') for (const declarator of node.declarations as EsNode[]) patternNames(declarator.id as EsNode, into);
    return;
  }
  if (node.type.endsWith('Expression') || node.type === 'Identifier' || node.type === 'Literal') return;
  for (const key in node) {
    const value = node[key];
    if (Array.isArray(value)) {
      for (const item of value) if (isNode(item)) varNames(item, into);
    } else if (isNode(value)) {
      varNames(value, into);
    }
  }
}

function lexicalNames(statements: readonly EsNode[], into: Set<string>): void {
  for (const statement of statements) {
    if (statement.type === 'VariableDeclaration' && statement.kind !== 'var') {
      for (const declarator of statement.declarations as EsNode[]) patternNames(declarator.id as EsNode, into);
    } else if ((statement.type === 'ClassDeclaration' || statement.type === 'FunctionDeclaration') && statement.id) {
      into.add((statement.id as EsNode).name as string);
    }
  }
}

/** The names a scope-creating node declares, or null when the node creates no scope. */
function declaredNames(node: EsNode): Set<string> | null {
  const names = new Set<string>();
  switch (node.type) {
    case 'FunctionDeclaration':
    case 'FunctionExpression':
    case 'ArrowFunctionExpression':
      for (const param of node.params as EsNode[]) patternNames(param, names);
      if (node.type === 'FunctionExpression' && node.id) names.add((node.id as EsNode).name as string);
      varNames(node.body as EsNode, names);
      return names;
    case 'BlockStatement':
      lexicalNames(node.body as EsNode[], names);
      return names;
    case 'StaticBlock':
      lexicalNames(node.body as EsNode[], names);
      for (const statement of node.body as EsNode[]) varNames(statement, names);
      return names;
    case 'SwitchStatement':
      for (const switchCase of node.cases as EsNode[]) lexicalNames(switchCase.consequent as EsNode[], names);
      return names;
    case 'ForStatement':
    case 'ForInStatement':
    case 'ForOfStatement': {
      const head = (node.type === 'ForStatement' ? node.init : node.left) as EsNode | null;
      if (head?.type === 'VariableDeclaration' && head.kind !== 'var') lexicalNames([head], names);
      return names;
    }
    case 'CatchClause':
      patternNames(node.param as EsNode | null, names);
      return names;
    case 'ClassExpression':
      if (node.id) names.add((node.id as EsNode).name as string);
      return names;
    default:
      return null;
  }
}

/** Identifier positions that name something other than a variable reference. */
function isReference(parent: EsNode, key: string): boolean {
  switch (parent.type) {
    case 'MemberExpression':
      return key !== 'property' || parent.computed === true;
    case 'Property':
    case 'MethodDefinition':
    case 'PropertyDefinition':
    case 'AccessorProperty':
      return key !== 'key' || parent.computed === true;
    case 'LabeledStatement':
    case 'BreakStatement':
    case 'ContinueStatement':
      return key !== 'label';
    case 'MetaProperty':
      return false;
    case 'FunctionDeclaration':
    case 'FunctionExpression':
    case 'ClassDeclaration':
    case 'ClassExpression':
      return key !== 'id';
    default:
      return true;
  }
}

export function scanModule(program: EsNode, code: string, out: Edits): ModuleScan {
  const sites: MutableSite[] = [];
  const staticIndex = new Map<string, number>();
  const bindings = new Map<string, Binding>();
  const getters = new Map<string, string>();
  const localExports: [exported: string, local: string][] = [];
  const star: number[] = [];
  const indirect = new Map<string, [number, string]>();
  let prologueTail = '';
  let tla = false;
  let meta = false;
  // Module-scope names this module exports itself, with their export names: every write to one
  // is mirrored to the namespace (`__lm.w.name = value`), so importers read data properties.
  const publishable = new Map<string, string[]>();
  const publishAs = (local: string, exported: string): void => {
    const names = publishable.get(local);
    if (names) names.push(exported);
    else publishable.set(local, [exported]);
  };

  // A module request is its specifier with its attributes and phase: `import a from './x.json'`
  // and `import b from './x.json' with { type: 'json' }` are two requests, judged separately.
  const siteFor = (statement: EsNode, phase: 'defer' | 'source' | null): number => {
    const source = statement.source as EsNode;
    const specifier = source.value as string;
    const attributes = attributesOf(statement);
    const key = JSON.stringify([specifier, phase, attributes ?? null]);
    let index = staticIndex.get(key);
    if (index === undefined) {
      index = sites.length;
      staticIndex.set(key, index);
      sites.push({ specifier, names: new Set(), dynamic: false, defer: phase === 'defer', ...(phase === 'source' ? { phase } : {}), ...(attributes ? { attributes } : {}), offset: source.start });
    }
    return index;
  };

  const blank = (start: number, end: number): void => {
    const newlines = code.slice(start, end).split('\n').length - 1;
    if (newlines === 0) out.remove(start, end);
    else out.overwrite(start, end, '\n'.repeat(newlines));
  };

  const bindingText = (binding: Binding): string => (binding.name === null ? `__lm_${binding.index}` : propertyAccess(`__lm_${binding.index}`, binding.name));

  if (code.startsWith('#!')) {
    const end = code.indexOf('\n');
    out.remove(0, end === -1 ? code.length : end);
  }

  const toWalk: EsNode[] = [];
  for (const statement of program.body as EsNode[]) {
    switch (statement.type) {
      case 'ImportDeclaration': {
        const index = siteFor(statement, (statement.phase as 'defer' | 'source' | null) ?? null);
        for (const specifier of statement.specifiers as EsNode[]) {
          const local = (specifier.local as EsNode).name as string;
          const name = specifier.type === 'ImportNamespaceSpecifier' ? null : specifier.type === 'ImportDefaultSpecifier' ? 'default' : moduleName(specifier.imported as EsNode);
          bindings.set(local, { index, name });
          sites[index]!.names.add(name ?? '*');
        }
        blank(statement.start, statement.end);
        break;
      }
      case 'ExportNamedDeclaration': {
        const declaration = statement.declaration as EsNode | null;
        if (declaration) {
          out.remove(statement.start, declaration.start);
          const names = new Set<string>();
          if (declaration.type === 'VariableDeclaration') for (const declarator of declaration.declarations as EsNode[]) patternNames(declarator.id as EsNode, names);
          else names.add((declaration.id as EsNode).name as string);
          for (const name of names) {
            getters.set(name, name);
            publishAs(name, name);
          }
          toWalk.push(declaration);
          break;
        }
        const source = statement.source as EsNode | null;
        if (source) {
          const index = siteFor(statement, null);
          for (const specifier of statement.specifiers as EsNode[]) {
            const imported = moduleName(specifier.local as EsNode);
            const exported = moduleName(specifier.exported as EsNode);
            getters.set(exported, propertyAccess(`__lm_${index}`, imported));
            indirect.set(exported, [index, imported]);
            sites[index]!.names.add(imported);
          }
        } else {
          for (const specifier of statement.specifiers as EsNode[]) localExports.push([moduleName(specifier.exported as EsNode), moduleName(specifier.local as EsNode)]);
        }
        blank(statement.start, statement.end);
        break;
      }
      case 'ExportDefaultDeclaration': {
        const declaration = statement.declaration as EsNode;
        const keywordEnd = expectWord(code, skipTrivia(code, statement.start + 'export'.length), 'default');
        const anonymous = declaration.id === null || declaration.id === undefined;
        if (declaration.type === 'FunctionDeclaration') {
          out.remove(statement.start, keywordEnd);
          if (anonymous) {
            // Hoisted like any function declaration; named "default" as ES modules name it.
            let at = skipTrivia(code, declaration.start);
            if (declaration.async === true) at = skipTrivia(code, expectWord(code, at, 'async'));
            at = skipTrivia(code, expectWord(code, at, 'function'));
            if (code[at] === '*') at += 1;
            out.insert(at, ' __lm_default');
            prologueTail += 'Object.defineProperty(__lm_default,"name",{value:"default",configurable:true});';
          }
          getters.set('default', anonymous ? '__lm_default' : ((declaration.id as EsNode).name as string));
          publishAs(anonymous ? '__lm_default' : ((declaration.id as EsNode).name as string), 'default');
        } else if (declaration.type === 'ClassDeclaration' && !anonymous) {
          out.remove(statement.start, keywordEnd);
          getters.set('default', (declaration.id as EsNode).name as string);
          publishAs((declaration.id as EsNode).name as string, 'default');
        } else {
          // An anonymous class, function or arrow is named by the property key it is defined
          // under — "default", as in ESM — before its static blocks run, and a `static name` wins.
          const named = declaration.type === 'ClassDeclaration' || isAnonymousFunction(declaration);
          out.overwrite(statement.start, keywordEnd, named ? 'const __lm_default = ({default:(' : 'const __lm_default =');
          if (named) out.insert(declaration.end, ')}).default');
          if (code[statement.end - 1] !== ';' || named) out.insert(statement.end, ';');
          out.insert(statement.end, '__lm.w.default=__lm_default;');
          getters.set('default', '__lm_default');
        }
        toWalk.push(declaration);
        break;
      }
      case 'ExportAllDeclaration': {
        const index = siteFor(statement, null);
        sites[index]!.names.add('*');
        if (statement.exported) {
          const exported = moduleName(statement.exported as EsNode);
          getters.set(exported, `__lm.n(__lm_${index})`);
          indirect.set(exported, [index, '*']);
        }
        else star.push(index);
        blank(statement.start, statement.end);
        break;
      }
      default:
        toWalk.push(statement);
    }
  }

  for (const [exported, local] of localExports) if (!bindings.has(local)) publishAs(local, exported);
  const publishText = (local: string): string => `${publishable.get(local)!.map((name) => `${propertyAccess('__lm.w', name)}=`).join('')}${local}`;

  // Reference rewrite. `ancestors` holds the path from the program to the node being visited;
  // scopes along it are asked lazily, and only for names that an import binds.
  const ancestors: EsNode[] = [];
  const scopeCache = new WeakMap<EsNode, Set<string> | null>();
  let functionDepth = 0;
  const dynamicSites: MutableSite[] = [];

  // Functions whose parameter list is being walked: there, the body's `var`s are not yet in scope.
  const inParams = new Set<EsNode>();
  const paramScope = (fn: EsNode): Set<string> => {
    const names = new Set<string>();
    for (const param of fn.params as EsNode[]) patternNames(param, names);
    if (fn.type === 'FunctionExpression' && fn.id) names.add((fn.id as EsNode).name as string);
    return names;
  };

  const shadowed = (name: string): boolean => {
    for (let index = ancestors.length - 1; index >= 0; index -= 1) {
      const scope = ancestors[index]!;
      if (inParams.has(scope)) {
        if (paramScope(scope).has(name)) return true;
        continue;
      }
      let names = scopeCache.get(scope);
      if (names === undefined) {
        names = declaredNames(scope);
        scopeCache.set(scope, names);
      }
      if (names?.has(name)) return true;
    }
    return false;
  };

  const visitPattern = (pattern: EsNode | null | undefined): void => {
    if (!pattern) return;
    switch (pattern.type) {
      case 'ObjectPattern':
        for (const property of pattern.properties as EsNode[]) {
          if (property.type === 'RestElement') visitPattern(property.argument as EsNode);
          else {
            if (property.computed) visit(property.key as EsNode, property, 'key');
            visitPattern(property.value as EsNode);
          }
        }
        return;
      case 'ArrayPattern':
        for (const element of pattern.elements as (EsNode | null)[]) visitPattern(element);
        return;
      case 'AssignmentPattern':
        visitPattern(pattern.left as EsNode);
        ancestors.push(pattern);
        visit(pattern.right as EsNode, pattern, 'right');
        ancestors.pop();
        return;
      case 'RestElement':
        visitPattern(pattern.argument as EsNode);
        return;
      default:
        return;
    }
  };

  /** Whether `node` is called or used as a tag, through any parentheses: `a()`, `(a)()`, ``((a))`x` ``. */
  const isCallee = (node: EsNode, parent: EsNode, key: string): boolean => {
    let child = node;
    let up = parent;
    let slot = key;
    for (let index = ancestors.length - 2; up.type === 'ParenthesizedExpression' && index >= 0; index -= 1) {
      child = up;
      up = ancestors[index]!;
      slot = up.callee === child ? 'callee' : up.tag === child ? 'tag' : '';
    }
    return (up.type === 'CallExpression' && slot === 'callee') || (up.type === 'TaggedTemplateExpression' && slot === 'tag');
  };

  /**
   * Whether `child`, whose parent is `ancestors[index]`, is written to: an assignment or update
   * target, a `delete` operand, a for-in/of head, or a slot of an assignment pattern.
   */
  const isWriteTarget = (child: EsNode, index: number): boolean => {
    let up = ancestors[index];
    while (up?.type === 'ParenthesizedExpression') {
      child = up;
      index -= 1;
      up = ancestors[index];
    }
    if (!up) return false;
    switch (up.type) {
      case 'AssignmentExpression':
      case 'AssignmentPattern':
      case 'ForInStatement':
      case 'ForOfStatement':
        return up.left === child;
      case 'UpdateExpression':
      case 'ArrayPattern':
      case 'RestElement':
        return true;
      case 'UnaryExpression':
        return up.operator === 'delete';
      case 'Property':
        return up.value === child && ancestors[index - 1]?.type === 'ObjectPattern';
      default:
        return false;
    }
  };

  /**
   * A namespace import has two faces (docs/protocol.md, "Namespaces"): member reads `ns.x` go
   * to the fast object the registry passes in; where the namespace is used as a value
   * (passed, compared, `in`, written through) it is the spec-exact object `__lm.n(…)` returns;
   * and the binding itself is constant: writing it goes through `__lm.c`, which throws.
   */
  const namespaceText = (index: number, node: EsNode, parent: EsNode): string => {
    const top = ancestors.length - 1;
    if (isWriteTarget(node, top)) return `__lm.c[${index}]`;
    if (parent.type === 'MemberExpression' && parent.object === node && !isWriteTarget(parent, top - 1)) return `__lm_${index}`;
    return `__lm.n(__lm_${index})`;
  };

  const rewriteIdentifier = (node: EsNode, parent: EsNode, key: string): void => {
    const binding = bindings.get(node.name as string);
    if (!binding || !isReference(parent, key) || shadowed(node.name as string)) return;
    const text = binding.name === null ? namespaceText(binding.index, node, parent) : bindingText(binding);
    if (parent.type === 'Property' && parent.shorthand === true && key === 'value') {
      out.overwrite(node.start, node.end, `${node.name as string}:${text}`);
    } else if (binding.name !== null && isCallee(node, parent, key)) {
      out.overwrite(node.start, node.end, `(0,${text})`);
    } else {
      out.overwrite(node.start, node.end, text);
    }
  };

  /** Module-scope exported names an assignment target writes (identifiers and patterns). */
  const writtenLocals = (target: EsNode | null | undefined): string[] => {
    const names = new Set<string>();
    patternNames(target, names);
    return [...names].filter((name) => publishable.has(name) && !shadowed(name));
  };

  /** `write` → `__lm.p(write, __lm.w.a = a, …)`: the write's own value, then the namespace updated. */
  const mirrorWrite = (node: EsNode, written: readonly string[], visitInner: () => void): void => {
    if (written.length === 0) {
      visitInner();
      return;
    }
    out.insert(node.start, '__lm.p(');
    visitInner();
    out.insert(node.end, `,${written.map(publishText).join(',')})`);
  };

  /** Names a `var` declaration at module level declares that this module exports. */
  const publishedVars = (node: EsNode): string[] => {
    if (node.kind !== 'var' || functionDepth > 0) return [];
    const names = new Set<string>();
    for (const declarator of node.declarations as EsNode[]) patternNames(declarator.id as EsNode, names);
    return [...names].filter((name) => publishable.has(name));
  };

  /**
   * A loop whose head writes exported names mirrors them at the start of each iteration. The
   * body is wrapped in a block of its own, so the mirror reads the binding the head wrote, not
   * a same-named declaration inside the body.
   */
  // The opening goes in before the loop's own edits and the closing after them, so that edits
  // at the same positions nest inside the new block.
  const mirrorLoopBody = (node: EsNode, written: readonly string[], visitInner: () => void): void => {
    if (written.length === 0) {
      visitInner();
      return;
    }
    const body = node.body as EsNode;
    out.insert(body.start, `{${written.map(publishText).join(';')};`);
    visitInner();
    out.insert(body.end, '}');
  };

  const mirrorLoopHead = (node: EsNode, visitInner: () => void): void => {
    const head = node.left as EsNode;
    mirrorLoopBody(node, head.type === 'VariableDeclaration' ? publishedVars(head) : writtenLocals(head), visitInner);
  };

  const visitChildren = (node: EsNode): void => {
    ancestors.push(node);
    for (const key in node) {
      const value = node[key];
      if (Array.isArray(value)) {
        for (const item of value) if (isNode(item)) visit(item, node, key);
      } else if (isNode(value)) {
        visit(value, node, key);
      }
    }
    ancestors.pop();
  };

  function visit(node: EsNode, parent: EsNode, key: string): void {
    switch (node.type) {
      case 'Identifier':
        if (bindings.size > 0) rewriteIdentifier(node, parent, key);
        return;
      case 'Literal':
      case 'TemplateElement':
      case 'PrivateIdentifier':
        return;
      case 'MetaProperty':
        if ((node.meta as EsNode).name === 'import') {
          meta = true;
          out.overwrite(node.start, node.end, '__lm.meta');
        }
        return;
      case 'ImportExpression': {
        // `import(…)` → `__lm.import(…)`; `import.source(…)` → `__lm.s(…)`; `import.defer(…)` → `__lm.d(…)`.
        let end = node.start + 'import'.length;
        let callee = '__lm.import';
        if (node.phase === 'source' || node.phase === 'defer') {
          end = skipTrivia(code, expectWord(code, skipTrivia(code, end), '.'));
          end = expectWord(code, end, node.phase);
          callee = node.phase === 'source' ? '__lm.s' : '__lm.d';
        }
        out.overwrite(node.start, end, callee);
        const source = node.source as EsNode;
        const literal = source.type === 'Literal' && typeof source.value === 'string' ? source.value : source.type === 'TemplateLiteral' && (source.expressions as unknown[]).length === 0 ? ((source.quasis as EsNode[])[0]!.value as { cooked: string }).cooked : null;
        if (literal !== null && node.phase !== 'source') dynamicSites.push({ specifier: literal, names: new Set(['*']), dynamic: true, defer: false, offset: source.start });
        visitChildren(node);
        return;
      }
      case 'CallExpression': {
        // Direct eval: its code may call import(), which must reach this module's registry, so
        // the string goes through __lm.ev, which rewrites those calls (strict code cannot rebind `eval`).
        const callee = node.callee as EsNode;
        const first = (node.arguments as EsNode[])[0];
        if (callee.type === 'Identifier' && callee.name === 'eval' && first && first.type !== 'SpreadElement') {
          out.insert(first.start, '__lm.ev(');
          out.insert(first.end, ')');
        }
        visitChildren(node);
        return;
      }
      case 'AwaitExpression':
        if (functionDepth === 0) tla = true;
        visitChildren(node);
        return;
      case 'ForOfStatement':
      case 'ForInStatement':
        if (node.type === 'ForOfStatement' && node.await === true && functionDepth === 0) tla = true;
        if (publishable.size > 0) mirrorLoopHead(node, () => visitChildren(node));
        else visitChildren(node);
        return;
      case 'ForStatement': {
        // `for (var x = …; …)`: the head's initialiser writes x (any pattern); mirrored at the
        // start of each iteration, and after the loop for one that never iterates.
        const init = node.init as EsNode | null;
        const written = publishable.size > 0 && init?.type === 'VariableDeclaration' ? publishedVars(init) : [];
        mirrorLoopBody(node, written, () => visitChildren(node));
        if (written.length > 0) {
          const text = `;${written.map(publishText).join(';')};`;
          if (parent === program || parent.type === 'BlockStatement' || parent.type === 'SwitchCase') out.insert(node.end, text);
          else {
            out.insert(node.start, '{');
            out.insert(node.end, `${text}}`);
          }
        }
        return;
      }
      case 'AssignmentExpression':
        mirrorWrite(node, publishable.size > 0 ? writtenLocals(node.left as EsNode) : [], () => visitChildren(node));
        return;
      case 'UpdateExpression':
        mirrorWrite(node, publishable.size > 0 ? writtenLocals(node.argument as EsNode) : [], () => visitChildren(node));
        return;
      case 'ClassDeclaration':
        visitChildren(node);
        if (parent === program && node.id && publishable.has((node.id as EsNode).name as string)) out.insert(node.end, `;${publishText((node.id as EsNode).name as string)};`);
        return;
      case 'VariableDeclaration': {
        if (node.kind === 'await using' && functionDepth === 0) tla = true;
        // Exported module-scope bindings a declaration initialises are mirrored once it has run.
        const declared: string[] = [];
        if (parent === program) {
          const names = new Set<string>();
          for (const declarator of node.declarations as EsNode[]) patternNames(declarator.id as EsNode, names);
          for (const name of names) if (publishable.has(name)) declared.push(name);
        } else {
          declared.push(...publishedVars(node));
        }
        ancestors.push(node);
        for (const declarator of node.declarations as EsNode[]) {
          ancestors.push(declarator);
          visitPattern(declarator.id as EsNode);
          if (declarator.init) visit(declarator.init as EsNode, declarator, 'init');
          ancestors.pop();
        }
        ancestors.pop();
        if (declared.length > 0 && parent.type !== 'ForStatement' && parent.type !== 'ForInStatement' && parent.type !== 'ForOfStatement') {
          const text = `;${declared.map(publishText).join(';')};`;
          if (parent === program || parent.type === 'BlockStatement' || parent.type === 'SwitchCase') {
            out.insert(node.end, text);
          } else {
            out.insert(node.start, '{');
            out.insert(node.end, `${text}}`);
          }
        }
        return;
      }
      case 'FunctionDeclaration':
      case 'FunctionExpression':
      case 'ArrowFunctionExpression':
        functionDepth += 1;
        ancestors.push(node);
        inParams.add(node);
        for (const param of node.params as EsNode[]) visitPattern(param);
        inParams.delete(node);
        visit(node.body as EsNode, node, 'body');
        ancestors.pop();
        functionDepth -= 1;
        return;
      case 'CatchClause':
        ancestors.push(node);
        visitPattern(node.param as EsNode | null);
        visit(node.body as EsNode, node, 'body');
        ancestors.pop();
        return;
      case 'PropertyDefinition':
      case 'StaticBlock':
        // Field initialisers and static blocks run as functions: `await` there is not top-level.
        functionDepth += 1;
        visitChildren(node);
        functionDepth -= 1;
        return;
      default:
        visitChildren(node);
    }
  }

  for (const node of toWalk) visit(node, program, 'body');

  for (const [exported, local] of localExports) {
    const binding = bindings.get(local);
    getters.set(exported, binding ? (binding.name === null ? `__lm.n(__lm_${binding.index})` : bindingText(binding)) : local);
    if (binding) indirect.set(exported, [binding.index, binding.name ?? '*']);
  }

  const exports = [...getters.keys()].sort();
  // `__proto__:` in an object literal would set the prototype, not define an export: computed key.
  const key = (name: string): string => (name === '__proto__' ? '["__proto__"]' : IDENTIFIER.test(name) ? name : JSON.stringify(name));
  const getterText = exports.map((name) => `${key(name)}:()=>${getters.get(name)!}`).join(',');
  const prologue = `${exports.length > 0 ? `__lm.x({${getterText}});` : ''}${prologueTail}`;

  const staticSpecifiers = new Set(sites.filter((site) => !site.defer).map((site) => site.specifier));
  const seenDynamic = new Set<string>();
  for (const site of dynamicSites) {
    if (staticSpecifiers.has(site.specifier) || seenDynamic.has(site.specifier)) continue;
    seenDynamic.add(site.specifier);
    sites.push(site);
  }
  const scanned: ScannedSite[] = sites.map((site) => ({ specifier: site.specifier, names: [...site.names].sort(), dynamic: site.dynamic, defer: site.defer, ...(site.phase ? { phase: site.phase } : {}), ...(site.attributes ? { attributes: site.attributes } : {}), offset: site.offset }));
  const indirectRecord: Record<string, [number, string]> = {};
  for (const name of [...indirect.keys()].sort()) indirectRecord[name] = indirect.get(name)!;
  return { prologue, sites: scanned, exports, star, indirect: indirectRecord, tla, meta };
}

// Direct eval in live code (`eval(code)` is compiled as `eval(__lm.ev(code))`): the eval'd code
// runs in the module function's scope, so `import()` calls in it must become `__lm.import()`
// calls to reach the registry — V8 would hand them to Node's loader, which only serves them with
// a vm flag. The parser is loaded only when an eval'd string contains "import": most programs
// never pay for it.
import { createRequire } from 'node:module';
import type * as OxcParser from 'oxc-parser';

const originalEval = globalThis.eval;
let parseSync: typeof OxcParser.parseSync | undefined;

interface Node {
  readonly type: string;
  readonly start: number;
  readonly end: number;
  readonly [key: string]: unknown;
}

function importCalls(node: unknown, into: Node[]): void {
  if (typeof node !== 'object' || node === null) return;
  if (Array.isArray(node)) {
    for (const item of node) importCalls(item, into);
    return;
  }
  const typed = node as Node;
  if (typed.type === 'ImportExpression') into.push(typed);
  for (const key in typed) {
    const value = typed[key];
    if (typeof value === 'object' && value !== null) importCalls(value, into);
  }
}

/** The code a direct eval in live code runs: `import(…)` calls rewritten; anything else as given. */
export function evalCode(code: unknown): unknown {
  if (typeof code !== 'string' || globalThis.eval !== originalEval || !code.includes('import')) return code;
  parseSync ??= (createRequire(import.meta.url)('oxc-parser') as typeof OxcParser).parseSync;
  // Direct eval in module code is strict: parse as a strict script.
  const parsed = parseSync('eval.js', `"use strict";${code}`, { sourceType: 'script', lang: 'js' });
  // Code that does not parse is left to eval, which throws the SyntaxError it should.
  if (parsed.errors.length > 0) return code;
  const calls: Node[] = [];
  importCalls(parsed.program, calls);
  if (calls.length === 0) return code;
  const shift = '"use strict";'.length;
  let out = '';
  let at = 0;
  for (const call of calls.sort((a, b) => a.start - b.start)) {
    const start = call.start - shift;
    const keyword = code.indexOf('import', start);
    const phase = call.phase === 'source' ? '__lm.s' : call.phase === 'defer' ? '__lm.d' : '__lm.import';
    const open = code.indexOf('(', keyword);
    out += code.slice(at, start) + phase;
    at = call.phase ? open : keyword + 'import'.length;
  }
  return out + code.slice(at);
}

// A generated module tree as plain JavaScript that every runtime starts the same way: Node as
// `node main.js`, Deno from a URL, livemod from a folder or a snapshot of it. The graph is
// test/helpers/tree.ts's (its .ts files are transformed once with oxc-transform, `.ts`
// specifiers renamed to `.js`), and main.js prints `{"result": main()}` as its last line, so a
// run of any runtime can be checked against the tree's expected value.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { transformSync } from 'oxc-transform';
import { generateTree } from '../../test/helpers/tree.ts';

export interface JsTree {
  /** The folder holding package.json, main.js and lib/. */
  readonly dir: string;
  /** Module paths relative to `dir`, main.js last. */
  readonly modules: readonly string[];
  /** Bytes of JavaScript written (package.json not counted). */
  readonly bytes: number;
  readonly expected: number;
}

/** Writes the tree of `count` modules (seed = count) to `<dir>/tree`, replacing what was there. */
export function writeJsTree(dir: string, count: number): JsTree {
  rmSync(dir, { recursive: true, force: true });
  const source = join(dir, 'ts');
  const out = join(dir, 'tree');
  // Every specifier with its extension: Node and Deno resolve nothing else.
  const tree = generateTree(source, count, { seed: count, extensionless: 0 });
  const modules: string[] = [];
  let bytes = 0;
  for (const path of tree.modules) {
    const output = transformSync(path, readFileSync(join(source, path), 'utf8'), { target: 'esnext' });
    if (output.errors.length > 0) throw new Error(`${path}: ${output.errors[0]!.message}`);
    let code = output.code.replace(/(from\s*["'])(\.{1,2}\/[^"']*)\.ts(["'])/g, '$1$2.js$3');
    if (path === tree.entry) code += '\nconsole.log(JSON.stringify({ result: main() }));\n';
    const target = path.replace(/\.ts$/, '.js');
    mkdirSync(dirname(join(out, target)), { recursive: true });
    writeFileSync(join(out, target), code);
    modules.push(target);
    bytes += Buffer.byteLength(code);
  }
  rmSync(source, { recursive: true, force: true });
  // Makes the .js files ES modules for Node, and marks the folder as the program's root for
  // `livemod run ./main.js` (which otherwise walks up to the nearest package.json).
  writeFileSync(join(out, 'package.json'), `${JSON.stringify({ name: `vs-tree-${count}`, private: true, type: 'module' }, null, 2)}\n`);
  return { dir: out, modules, bytes, expected: tree.expected };
}

// A program with real npm packages installed beside it, as a publisher's folder is: CommonJS
// requiring a nested older copy of a dependency, ESM with exports conditions, a real package
// from this project's own dependencies, files that are not modules and a .wasm.
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFiles } from './fs.ts';

// (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
export const ADD_WASM: Buffer = Buffer.from('0061736d0100000001070160027f7f017f030201000707010361646400000a09010700200020016a0b', 'hex');

const pkg = (name: string, version: string, extra: Record<string, unknown> = {}): string => JSON.stringify({ name, version, ...extra });

export const MAIN = `import a from 'cjs-a';
import b from 'dep-b';
import { which } from 'esm-c';
import { Command } from 'commander';
import { createRequire } from 'node:module';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const require = createRequire(import.meta.url);
const wasm = await WebAssembly.instantiate(readFileSync(new URL('./add.wasm', import.meta.url)));
console.log(JSON.stringify({
  a: a.describe(),
  b: b.version,
  esmImport: which,
  esmRequire: require('esm-c').which,
  local: require('./lib/helper.cjs').hello,
  text: readFileSync(new URL('./data/hello.txt', import.meta.url), 'utf8'),
  dirnameText: readFileSync(import.meta.dirname + '/data/hello.txt', 'utf8'),
  filename: fileURLToPath(import.meta.url) === import.meta.filename,
  listed: readdirSync(new URL('./data/', import.meta.url)).sort(),
  main: import.meta.main,
  argv1: process.argv[1] === import.meta.filename,
  commander: new Command('tool').name(),
  wasm: wasm.instance.exports.add(2, 3),
}));
`;

/** Writes the program and its node_modules into `dir`. */
export function writeProgram(dir: string, options: { name?: string; main?: string } = {}): void {
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: options.name ?? 'program-app', type: 'module', dependencies: { 'cjs-a': '^1.0.0', 'dep-b': '^2.0.0', 'esm-c': '^1.0.0', commander: '*' } }),
    'main.ts': options.main ?? MAIN,
    'lib/helper.cjs': `exports.hello = 'hello from ' + require('path').basename(__filename);`,
    'data/hello.txt': 'hello, file\n',
    'data/more.sql': 'select 1;\n',
    'add.wasm': ADD_WASM,
    '.env': 'SECRET=never-travels\n',
    '.gitignore': 'scratch/\n*.log\n',
    'scratch/notes.txt': 'ignored by .gitignore\n',
    'debug.log': 'ignored too\n',
    'node_modules/cjs-a/package.json': pkg('cjs-a', '1.2.0', { main: 'index.js', dependencies: { 'dep-b': '^1.0.0' } }),
    'node_modules/cjs-a/index.js': `const b = require('dep-b');\nexports.describe = () => 'cjs-a uses dep-b@' + b.version;\n`,
    'node_modules/cjs-a/node_modules/dep-b/package.json': pkg('dep-b', '1.0.0', { main: 'index.js' }),
    'node_modules/cjs-a/node_modules/dep-b/index.js': `exports.version = '1.0.0';\n`,
    'node_modules/dep-b/package.json': pkg('dep-b', '2.0.0', { main: 'index.js' }),
    'node_modules/dep-b/index.js': `exports.version = '2.0.0';\n`,
    'node_modules/esm-c/package.json': pkg('esm-c', '1.0.0', { exports: { '.': { node: { import: './esm.mjs', require: './cjs.cjs' }, default: './never.js' } } }),
    'node_modules/esm-c/esm.mjs': `export const which = 'import';\n`,
    'node_modules/esm-c/cjs.cjs': `exports.which = 'require';\n`,
    'node_modules/esm-c/never.js': `throw new Error('the default condition was taken');\n`,
    'node_modules/unused/package.json': pkg('unused', '9.9.9'),
    'node_modules/unused/index.js': `module.exports = 'not reached, not declared: never travels';\n`,
  });
  const here = fileURLToPath(new URL('../../node_modules/commander', import.meta.url));
  cpSync(here, join(dir, 'node_modules', 'commander'), { recursive: true });
}

/** What MAIN prints, run from anywhere (Node from the folder, or livemod from a snapshot). */
export const EXPECTED: Record<string, unknown> = {
  a: 'cjs-a uses dep-b@1.0.0',
  b: '2.0.0',
  esmImport: 'import',
  esmRequire: 'require',
  local: 'hello from helper.cjs',
  text: 'hello, file\n',
  dirnameText: 'hello, file\n',
  filename: true,
  listed: ['hello.txt', 'more.sql'],
  main: true,
  argv1: true,
  commander: 'tool',
  wasm: 5,
};

#!/usr/bin/env node
// The `livemod` command. It runs the compiled build (dist/, made by `npm run build`, which
// `npm ci` runs): Node could strip types from src/ at load time, but that costs ~120 ms of
// start-up. In a checkout whose src/ changed after the last build, it runs src/ instead, so a
// stale build is never what runs. This file itself must parse and run on any Node, so it can
// say which Node livemod needs before loading anything that needs it.
//
// Node's builtins come from process.getBuiltinModule, not `import … from 'node:fs'`: an ESM
// import of a builtin builds a module facade that reads every export, lazy ones included, and
// node:fs's `promises` alone loads fs/promises, readline and the file watchers (about 10 ms of
// every start, measured over 40 interleaved starts).
const needed = 24;
const major = Number(process.versions.node.split('.')[0]);
const module = major >= needed ? process.getBuiltinModule('node:module') : undefined;
if (typeof module?.registerHooks !== 'function') {
  process.stderr.write(`[livemod] this is Node ${process.version}; livemod needs Node ${needed} or newer (for module.registerHooks): install it, or run livemod with a newer node [ERR_LIVEMOD_NODE_VERSION]\n`);
  process.exit(1);
}

const { existsSync, readdirSync, readFileSync, statSync } = process.getBuiltinModule('node:fs');
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-v')) {
  // Answered here: a version check should cost a Node start, not loading every command.
  process.stdout.write(`${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\n`);
  process.exit(0);
}

// V8's code cache for livemod's own modules, kept on disk between runs (Node's compile cache:
// $NODE_COMPILE_CACHE, else a folder under the system's temp directory): a warm start compiles
// nothing of livemod again.
module.enableCompileCache?.();

const dist = new URL('../dist/cli/main.js', import.meta.url);
const src = new URL('../src/', import.meta.url);

function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) latest = Math.max(latest, statSync(`${entry.parentPath}/${entry.name}`).mtimeMs);
  }
  return latest;
}

const stale = !existsSync(dist) || (existsSync(src) && newest(src) > statSync(dist).mtimeMs);
await import(stale ? new URL('cli/main.ts', src).href : dist.href);

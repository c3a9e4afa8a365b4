// `npm run build`: dist/ as the package runs it. The code is bundled (rolldown) into entry
// files — dist/index.js (`import 'livemod'`), dist/hot.js, dist/cli/main.js (the command),
// dist/client/child-entry.js (workers and forked children) and dist/service/supervisor-entry.js
// (a service's supervisor) — plus the chunks they share in
// dist/chunks/, each command's code its own chunk as the CLI loads it. One module per chunk
// instead of one per source file: Node's ESM loader resolves, reads and links about 90 fewer
// modules on every start, which measured about 40 ms of a `livemod run` (docs/benchmarks.md).
// Dependencies stay packages (external). Then tsc writes the type declarations (dist/**/*.d.ts).
// Exit status: tsc's, so type errors fail the build, while the JavaScript is still written.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';
import { hashBuilderSources } from '../src/build/cache.ts';

const root = new URL('../', import.meta.url);
const src = new URL('src/', root);
const dist = fileURLToPath(new URL('dist/', root));

rmSync(dist, { recursive: true, force: true });
await build({
  input: {
    index: fileURLToPath(new URL('index.ts', src)),
    hot: fileURLToPath(new URL('hot.ts', src)),
    'cli/main': fileURLToPath(new URL('cli/main.ts', src)),
    'client/child-entry': fileURLToPath(new URL('client/child-entry.ts', src)),
    'service/supervisor-entry': fileURLToPath(new URL('service/supervisor-entry.ts', src)),
  },
  platform: 'node',
  // Packages and Node's builtins are imported as they are; only livemod's own files are bundled.
  external: (id) => !id.startsWith('.') && !id.startsWith('/') && !id.startsWith('\0'),
  transform: { define: { __LIVEMOD_BUILDER_SOURCES__: JSON.stringify(hashBuilderSources(src)) } },
  output: {
    dir: dist,
    format: 'esm',
    entryFileNames: '[name].js',
    chunkFileNames: 'chunks/[name]-[hash].js',
    sourcemap: true,
  },
  logLevel: 'warn',
});
const tsc = spawnSync(process.execPath, [fileURLToPath(new URL('node_modules/typescript/bin/tsc', root)), '-p', fileURLToPath(new URL('tsconfig.build.json', root))], { stdio: 'inherit' });
process.exitCode = tsc.status ?? 1;

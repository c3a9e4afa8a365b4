// The livemod command as a bench runs it: the compiled build checked fresh first (bin/livemod.js
// runs src/ when dist/ is older, which would time Node stripping types from livemod itself),
// and `livemod serve` started as its own long-lived process, so the server's CPU is not the
// client's.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** Builds dist/ (as `npm run build`) when src/ changed after it; says which it was. */
export function ensureBuilt(root: string): string {
  // bin/livemod.js compares src/ with this file: it is what decides which code the CLI runs.
  const marker = join(root, 'dist', 'cli', 'main.js');
  const newest = readdirSync(join(root, 'src'), { withFileTypes: true, recursive: true })
    .filter((item) => item.isFile())
    .reduce((latest, item) => Math.max(latest, statSync(join(item.parentPath, item.name)).mtimeMs), 0);
  if (existsSync(marker) && statSync(marker).mtimeMs >= newest) return 'dist/ up to date';
  const tsc = spawnSync(process.execPath, [join(root, 'tools', 'bundle.ts')], { encoding: 'utf8' });
  // The bundle is written despite type errors (tsc's exit 2); only a missing or still older build means the CLI would run src/.
  if (!existsSync(marker) || statSync(marker).mtimeMs < newest) throw new Error(`npm run build left dist/ older than src/: ${tsc.stdout}${tsc.stderr}`);
  return tsc.status === 0 ? 'dist/ rebuilt from src/ (it was older)' : `dist/ rebuilt from src/ (it was older; tsc reported type errors: ${tsc.stdout.split('\n')[0]})`;
}

/**
 * The command as an installed package has it: bin/, dist/ and package.json copied to
 * bench/out/installed (its dependencies from the checkout's node_modules, linked). A checkout's
 * bin/livemod.js first walks src/ to see whether dist/ is stale (5-8 ms of every start here); a
 * package has no src/, so its users never pay that, and the benches should not either.
 */
export function installedCli(root: string): { bin: string; build: string } {
  const build = ensureBuilt(root);
  const target = join(root, 'bench', 'out', 'installed');
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  for (const part of ['bin', 'dist', 'package.json']) cpSync(join(root, part), join(target, part), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(target, 'node_modules'), 'dir');
  return { bin: join(target, 'bin', 'livemod.js'), build: `${build}; run as installed, from bench/out/installed` };
}

export interface Serve {
  readonly process: ChildProcess;
  readonly url: string;
  readonly publicKey: string;
  readonly modules: number;
}

/** `livemod serve <dir> --host 127.0.0.1 --port 0 --json` as its own process; resolves on its `listening` event. */
export function serveTree(bin: string, dir: string, env: NodeJS.ProcessEnv): Promise<Serve> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [bin, 'serve', dir, '--host', '127.0.0.1', '--port', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stderr = '';
    proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    proc.on('exit', (code) => reject(new Error(`livemod serve exited ${code} before listening: ${stderr.trim()}`)));
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const event = JSON.parse(line) as { event: string; url?: string; publicKey?: string; modules?: number };
      if (event.event === 'listening') resolve({ process: proc, url: event.url!, publicKey: event.publicKey!, modules: event.modules ?? 0 });
    });
  });
}

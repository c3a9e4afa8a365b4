// Finds the Deno binary installed by the `deno` devDependency and checks it runs here. The
// native executable is timed, never the package's `bin.cjs` wrapper: that starts Node first to
// spawn Deno, which would add a Node start-up to every Deno row. The npm package's postinstall
// places the executable in the package folder; without it (install scripts not run) it is in
// the platform package, `@deno/<platform>-<arch>[-glibc]`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export type Deno = { readonly binary: string; readonly version: string } | { readonly skipped: string };

export function findDeno(root: string): Deno {
  const name = process.platform === 'win32' ? 'deno.exe' : 'deno';
  const scoped = join(root, 'node_modules', '@deno');
  const candidates = [join(root, 'node_modules', 'deno', name)];
  if (existsSync(scoped)) {
    for (const folder of readdirSync(scoped)) if (folder.startsWith(`${process.platform}-${process.arch}`)) candidates.push(join(scoped, folder, name));
  }
  const binary = candidates.find((file) => existsSync(file));
  if (!binary) return { skipped: `no Deno executable in node_modules (looked for ${candidates.join(', ')}); run npm ci` };
  const probe = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, DENO_NO_UPDATE_CHECK: '1' } });
  if (probe.error) return { skipped: `${binary} --version failed: ${probe.error.message}` };
  if (probe.status !== 0) return { skipped: `${binary} --version exited ${probe.status ?? probe.signal}: ${probe.stderr.trim().slice(0, 300)}` };
  const version = /deno (\S+)/.exec(probe.stdout)?.[1];
  if (!version?.startsWith('2.')) return { skipped: `${binary} is not Deno 2 (${probe.stdout.split('\n')[0]})` };
  return { binary, version };
}

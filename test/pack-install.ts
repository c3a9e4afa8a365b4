// The package as a user gets it (`npm run test:pack`, run by CI after the suite): `npm pack`, the
// tarball installed into an empty folder, then `npx livemod --version` and a run of the built-in
// example served by the installed copy — so a file missing from `files`, or a run-time import of
// a devDependency, fails here and not on a user's machine. Node 24 (this process's) is first on
// PATH for every command.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const work = mkdtempSync(join(tmpdir(), 'livemod-pack-'));
const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`, LIVEMOD_CACHE: join(work, 'cache'), npm_config_update_notifier: 'false' };
const step = (text: string): void => void process.stdout.write(`[pack] ${text}\n`);

try {
  step('npm pack');
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })) as [{ filename: string }];
  const tarball = join(work, packed[0].filename);
  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pack-check', private: true }));
  step(`npm install ${packed[0].filename} into an empty folder`);
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: app, env, stdio: ['ignore', 'inherit', 'inherit'] });

  const printed = execFileSync('npx', ['--no-install', 'livemod', '--version'], { cwd: app, env, encoding: 'utf8' }).trim();
  assert.equal(printed, version);
  step(`npx livemod --version: ${printed}`);

  const example = join(app, 'node_modules', 'livemod', 'examples', 'hello');
  execFileSync('npx', ['--no-install', 'livemod', 'keygen', '--out', join(work, 'publisher.key')], { cwd: app, env, stdio: 'ignore' });
  // The installed bin itself, not through npx: a signal to npx does not reach the server it started.
  const server = spawn(process.execPath, [join(app, 'node_modules', 'livemod', 'bin', 'livemod.js'), 'serve', example, '--port', '0', '--json', '--key', join(work, 'publisher.key')], { cwd: app, env, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const listening = await new Promise<{ url: string; publicKey: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('livemod serve did not start within 60 s')), 60_000);
      server.on('exit', (code) => reject(new Error(`livemod serve exited ${code}`)));
      createInterface({ input: server.stdout }).on('line', (line) => {
        const event = JSON.parse(line) as { event: string; url?: string; publicKey?: string };
        if (event.event === 'listening') {
          clearTimeout(timer);
          resolve({ url: event.url!, publicKey: event.publicKey! });
        }
      });
    });
    const output = execFileSync('npx', ['--no-install', 'livemod', 'run', listening.url, '--key', listening.publicKey, '--once', '--', '--ticks', '1'], { cwd: app, env, encoding: 'utf8', timeout: 60_000 });
    assert.match(output, /\(tick 1\)/);
    step(`served example ran from the installed package: ${output.trim()}`);
  } finally {
    server.kill();
    server.stdout.destroy();
  }
  step('ok');
} finally {
  rmSync(work, { recursive: true, force: true });
}

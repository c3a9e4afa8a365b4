import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatePublisherKey, signSnapshot } from '../snapshot/index.ts';
import { SnapshotBuilder, watchFolder, type FolderWatch } from '../build/index.ts';
import { parsePort } from './options.ts';
import { PACKAGE_ROOT } from '../own.ts';

const EXAMPLE = fileURLToPath(new URL('examples/hello', PACKAGE_ROOT));
const BIN = fileURLToPath(new URL('bin/livemod.js', PACKAGE_ROOT));

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the built-in demo: serve examples/hello with --watch, and run one long-lived client of it that swaps each new version in place')
    .option('-p, --port <port>', 'port for the server (default: a free one)', '0')
    .option('--once', 'run the client for one tick, then stop (exit status: the client\'s)')
    .action(async (flags: { port: string; once?: boolean }) => {
      const { createModuleServer } = await import('../server/index.ts');
      const key = generatePublisherKey();
      const builder = new SnapshotBuilder(EXAMPLE, { program: { externals: 'bundle', external: [] } });
      let current = signSnapshot(builder.build().content, key);
      const server = createModuleServer({ port: parsePort(flags.port) });
      server.publish(current);
      const { url } = await server.listen();
      const cache = mkdtempSync(join(tmpdir(), 'livemod-demo-'));
      const say = (line: string): void => void process.stderr.write(`[livemod demo] ${line}\n`);
      say(`serving ${EXAMPLE} at ${url} — status page: ${url}/`);
      say(`client: livemod run ${url}/ --key ${key.publicKeyString}`);

      const runClient = (extra: string[]): Promise<number> => {
        const child = spawn(process.execPath, [BIN, 'run', `${url}/`, '--key', key.publicKeyString, '--cache', cache, ...extra], { stdio: ['ignore', 'inherit', 'inherit'] });
        return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
      };
      const stop = async (watch?: FolderWatch): Promise<void> => {
        await watch?.close();
        await server.close();
        rmSync(cache, { recursive: true, force: true });
      };
      if (flags.once) {
        const status = await runClient(['--once', '--', '--ticks', '1']);
        await stop();
        process.exitCode = status;
        return;
      }
      const watch = watchFolder({
        builder,
        onBuild: (result) => {
          current = signSnapshot(result.content, key, { previousVersion: current.manifest.version });
          server.publish(current);
          say(`version ${current.manifest.version}: ${result.changed.join(', ')} changed; published, the client swaps it in place`);
        },
        onError: (error) => say(`${(error as Error).message} — still serving version ${current.manifest.version}`),
      });
      await watch.ready;
      const client = runClient(['--log-swaps']);
      say(`edit ${join(EXAMPLE, 'lib', 'greet.ts')} and save: the running client takes the new code, its tick count goes on. Ctrl-C stops.`);
      await Promise.race([client, new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      })]);
      await stop(watch);
    });
}

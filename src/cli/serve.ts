import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { DEFAULT_SERVE_TTL_MS, generatePublisherKey, signSnapshot, type PublisherKey, type Snapshot, type SnapshotContent } from '../snapshot/index.ts';
import { SnapshotBuilder, watchFolder } from '../build/index.ts';
import { addBuildOptions, mergeBuildConfig, reportBuild, resolveBuildFlags, type BuildFlags } from './build-options.ts';
import { loadPrivateKey, parsePort, usage } from './options.ts';
import { quoted } from '../text.ts';
import { createOutput, describeError } from './output.ts';

interface ServeFlags extends BuildFlags {
  port: string;
  host: string;
  key?: string;
  token: string[];
  tlsCert?: string;
  tlsKey?: string;
  watch?: boolean;
  json?: boolean;
}

function readPem(option: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new LivemodError('serve', ErrorCodes.SERVE_FAILED, `${option} ${path} cannot be read (${(error as NodeJS.ErrnoException).code}); pass a PEM file`, { path });
  }
}

export function registerServe(program: Command): void {
  addBuildOptions(
    program
      .command('serve')
      .description('serve DIR as a live snapshot: manifest, blobs, a batch route, a push channel and a status page')
      .argument('<dir>', 'folder of TS/JS modules')
      .option('-p, --port <port>', 'port to listen on (0 picks a free one)', '7070')
      .option('--host <host>', 'address to bind', '127.0.0.1')
      .option('-k, --key <file>', 'publisher private key file (mode 0600); without it an ephemeral key is made and its public key printed')
      .option('--token <token>', 'require `Authorization: Bearer <token>` on every route but /healthz (repeatable)', (value: string, previous: string[]) => [...previous, value], [] as string[])
      .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (needs --tls-key)')
      .option('--tls-key <file>', 'PEM private key for --tls-cert')
      .option('-w, --watch', 'rebuild on file changes and push each new version to connected clients'),
    DEFAULT_SERVE_TTL_MS,
  )
    .option('--json', 'print one JSON line per event (listening, published, error) on stdout')
    .addHelpText('after', '\nRoutes: / (status page), /status, /healthz, /manifest.json, /blobs/<hash>, POST /batch, /channel (WebSocket).\nThe manifest is re-signed at half its lifetime (--expires), so clients never see it expire.\n\nExample:\n  livemod serve ./src --watch --key publisher.key --port 7070')
    .action(async (dir: string, flags: ServeFlags) => {
      // Loaded here, not at the top: `livemod run` should not pay for the server's WebSocket and watcher code.
      const { createModuleServer } = await import('../server/index.ts');
      const output = createOutput(flags.json === true);
      const port = parsePort(flags.port);
      if (Boolean(flags.tlsCert) !== Boolean(flags.tlsKey)) throw usage('--tls-cert and --tls-key go together: pass both or neither');
      for (const token of flags.token) {
        if (!/^[\x21-\x7e]{8,512}$/.test(token)) throw usage('--token must be 8–512 visible ASCII characters (no spaces)');
      }
      const { loadProjectConfig } = await import('../config/index.ts');
      const project = await loadProjectConfig();
      const options = resolveBuildFlags(mergeBuildConfig(flags, project.config.build), DEFAULT_SERVE_TTL_MS);
      const ephemeral = !flags.key;
      const key: PublisherKey = flags.key ? loadPrivateKey(flags.key) : generatePublisherKey();
      const builder = new SnapshotBuilder(dir, options.build);
      const first = builder.build();
      reportBuild(first, output);
      // The app name is fixed for the server's life: an edit to package.json must not turn its
      // clients' next sync into another app's snapshot, which they would refuse.
      const name = first.content.name!;
      let current: Snapshot = signSnapshot(first.content, key, { ttlMs: options.ttlMs, name });

      const server = createModuleServer({
        host: flags.host,
        port,
        tokens: flags.token,
        ...(flags.tlsCert && flags.tlsKey ? { tls: { cert: readPem('--tls-cert', flags.tlsCert), key: readPem('--tls-key', flags.tlsKey) } } : {}),
        log: (line: string) => output.info(line),
      });
      server.publish(current);
      const { url } = await server.listen();
      const modules = Object.keys(current.manifest.modules).length;
      output.event(
        { event: 'listening', url, publicKey: key.publicKeyString, keyId: key.keyId, ephemeralKey: ephemeral, name, version: current.manifest.version, expires: current.manifest.expires, modules, entry: current.manifest.entry },
        `[livemod serve] ${url} — app ${quoted(name)} version ${current.manifest.version}, ${modules} modules${current.manifest.entry ? `, entry ${current.manifest.entry}` : ''}\n[livemod serve] public key${ephemeral ? ' (ephemeral: made for this run, pass --key to keep one)' : ''}: ${key.publicKeyString}`,
      );

      const publish = (content: SnapshotContent, detail: Record<string, unknown>, human: string): void => {
        current = signSnapshot(content, key, { ttlMs: options.ttlMs, previousVersion: current.manifest.version, name });
        server.publish(current);
        output.event({ event: 'published', version: current.manifest.version, ...detail }, `[livemod serve] version ${current.manifest.version}: ${human}`);
      };

      // Re-sign well before expiry, so a long-running server's clients never see a frozen manifest.
      const resign = setInterval(() => publish({ modules: current.manifest.modules, entry: current.manifest.entry, blobs: current.blobs }, { reason: 'resign' }, 're-signed before expiry'), Math.min(options.ttlMs / 2, 2 ** 31 - 1));
      resign.unref();

      const watch = flags.watch
        ? watchFolder({
            builder,
            broken: first.broken.map((item) => item.path),
            onBuild: (result) => {
              reportBuild(result, output);
              publish(result.content, { changed: result.changed, durationMs: Number(result.durationMs.toFixed(2)) }, `${result.changed.join(', ')} (rebuilt in ${result.durationMs.toFixed(1)} ms)`);
            },
            onError: (error) => {
              const { code, message } = describeError(error);
              output.event({ event: 'error', code, message }, `${message} — still serving version ${current.manifest.version}`);
            },
          })
        : undefined;
      if (watch) {
        await watch.ready;
        output.event({ event: 'watching', dir: builder.root }, `[livemod serve] watching ${builder.root}`);
      }

      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      clearInterval(resign);
      await watch?.close();
      await server.close();
      output.event({ event: 'closed' }, '[livemod serve] stopped');
    });
}

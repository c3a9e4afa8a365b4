import type { Command } from 'commander';
import { existsSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { SnapshotBuilder, publishSnapshot } from '../build/index.ts';
import { formatBytes } from '../format.ts';
import { DEFAULT_TTL_MS } from '../snapshot/index.ts';
import { addBuildOptions, mergeBuildConfig, reportBuild, resolveBuildFlags, type BuildFlags } from './build-options.ts';
import { loadPrivateKey, usage } from './options.ts';
import { quoted } from '../text.ts';
import { createOutput } from './output.ts';

interface PublishFlags extends BuildFlags {
  out?: string;
  key?: string;
  json?: boolean;
}

export function registerPublish(program: Command): void {
  addBuildOptions(
    program
      .command('publish')
      .description('build DIR into a signed static snapshot in OUT, servable by any web server (manifest.json, blobs/, pack/)')
      .argument('<dir>', 'folder of TS/JS modules')
      .option('-o, --out <dir>', 'output folder (created; a previous snapshot there is updated in place)')
      .option('-k, --key <file>', 'publisher private key file (from `livemod keygen`; must be mode 0600)'),
    DEFAULT_TTL_MS,
  )
    .option('--json', 'print the result as JSON')
    .addHelpText('after', "\nServe OUT with any static web server; send manifest.json with Cache-Control: no-cache, the rest may be cached forever.\nThe manifest's expiry (--expires) is how long a client that has not synced yet can be handed\nthis snapshot after a newer one replaced it: publish again (or re-sign from cron) well within it.\n\nExample:\n  livemod publish ./src --out ./public --key publisher.key --strict")
    .action(async (dir: string, flags: PublishFlags) => {
      const output = createOutput(flags.json === true);
      if (!flags.out) throw usage('publish needs --out <dir>: where to write the snapshot');
      if (!flags.key) throw usage('publish needs --key <file>: the publisher key (make one with `livemod keygen`)');
      const key = loadPrivateKey(flags.key);
      const out = resolve(flags.out);
      // OUT is created only once the build succeeded, so a failed publish leaves nothing behind.
      const { loadProjectConfig } = await import('../config/index.ts');
      const project = await loadProjectConfig();
      const options = resolveBuildFlags(mergeBuildConfig(flags, project.config.build), DEFAULT_TTL_MS, [existsSync(out) ? realpathSync(out) : out]);
      const builder = new SnapshotBuilder(dir, options.build);
      const result = builder.build();
      reportBuild(result, output);
      const published = await publishSnapshot(result.content, key, out, { ttlMs: options.ttlMs });
      const { manifest } = published.snapshot;
      const modules = Object.keys(manifest.modules).length;
      output.result(
        { version: manifest.version, name: manifest.name, modules, entry: manifest.entry, blobsWritten: published.blobsWritten, packBytes: published.packBytes, out, keyId: key.keyId, publicKey: key.publicKeyString, expires: manifest.expires, unresolved: result.unresolved, broken: result.broken, skipped: result.skipped },
        `[livemod publish] ${quoted(manifest.name)} version ${manifest.version}: ${modules} modules, ${published.blobsWritten} new blobs, pack ${formatBytes(published.packBytes)} → ${out} (expires ${manifest.expires}, key ${key.publicKeyString})`,
      );
    });
}

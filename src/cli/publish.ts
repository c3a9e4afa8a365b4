import type { Command } from 'commander';
import { existsSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { SnapshotBuilder, folderTarget, openS3Target, publishSnapshot, type BuildResult, type PublishResult } from '../build/index.ts';
import { formatBytes } from '../format.ts';
import { DEFAULT_TTL_MS } from '../snapshot/index.ts';
import { addBuildOptions, mergeBuildConfig, reportBuild, resolveBuildFlags, type BuildFlags } from './build-options.ts';
import { loadPrivateKey } from './key-file.ts';
import { usage } from './options.ts';
import { quoted } from '../text.ts';
import { createOutput } from './output.ts';

interface PublishFlags extends BuildFlags {
  out?: string;
  key?: string;
  json?: boolean;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  cluster?: string;
}

export function registerPublish(program: Command): void {
  addBuildOptions(
    program
      .command('publish')
      .description('build DIR into a signed static snapshot in OUT, a folder or an S3 bucket, servable by any web server (manifest.json, blobs/, pack/)')
      .argument('<dir>', 'folder of TS/JS modules')
      .option('-o, --out <dir|s3://bucket/prefix>', 'output folder (created), or a prefix in an S3-compatible bucket; a previous snapshot there is updated in place')
      .option('-k, --key <file>', 'publisher private key file (from `livemod keygen`; must be mode 0600)'),
    DEFAULT_TTL_MS,
  )
    .option('--s3-endpoint <url>', 'the S3-compatible store to write to (default AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS)')
    .option('--s3-region <region>', 'the bucket\'s region (default AWS_REGION or the profile\'s; us-east-1 with an endpoint)')
    .option('--s3-path-style', 'address the bucket as ENDPOINT/BUCKET/ (most self-hosted stores: MinIO, Ceph, s3rver)')
    .option('--cluster <url>', 'then announce the new version on this broker, nats://HOST:PORT or redis://HOST:PORT, so server replicas following OUT (serve --follow) serve it at once')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', [
      '',
      'Serve OUT with any static web server; send manifest.json with Cache-Control: no-cache, the rest may be cached forever.',
      "The manifest's expiry (--expires) is how long a client that has not synced yet can be handed",
      'this snapshot after a newer one replaced it: publish again (or re-sign from cron) well within it.',
      '',
      'To an S3-compatible bucket (--out s3://BUCKET/PREFIX): blobs and pack are uploaded first, the',
      'manifest last, with those Cache-Control headers set on the objects; blobs already there are not',
      'uploaded again. Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE).',
      "Clients run the prefix's HTTP URL (the bucket readable by them, or a CDN before it). A failed upload",
      'exits 1 (ERR_LIVEMOD_STORAGE) with no manifest written. For a store that refuses the SDK\'s CRC32',
      'checksum headers, set AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED.',
      '',
      'Examples:',
      '  livemod publish ./src --out ./public --key publisher.key --strict',
      '  livemod publish ./src --out s3://tools/app --key publisher.key --s3-endpoint http://127.0.0.1:9000 --s3-path-style',
      '  livemod publish ./src --out s3://tools/app --key publisher.key --cluster nats://127.0.0.1:4222   # replicas: docs/scale-out.md',
    ].join('\n'))
    .action(async (dir: string, flags: PublishFlags) => {
      const output = createOutput(flags.json === true);
      if (!flags.out) throw usage('publish needs --out <dir>: where to write the snapshot');
      if (!flags.key) throw usage('publish needs --key <file>: the publisher key (make one with `livemod keygen`)');
      const s3 = /^s3:/i.test(flags.out);
      if (!s3 && (flags.s3Endpoint !== undefined || flags.s3Region !== undefined || flags.s3PathStyle)) throw usage('--s3-endpoint, --s3-region and --s3-path-style are for an --out s3://BUCKET/PREFIX');
      const key = loadPrivateKey(flags.key);
      const out = s3 ? flags.out : resolve(flags.out);
      // Opening sends nothing, but checks the URL and the endpoint: a mistake there is refused before the build.
      const bucket = s3 ? await openS3Target(out, { endpoint: flags.s3Endpoint, region: flags.s3Region, pathStyle: flags.s3PathStyle }) : null;
      const target = bucket ?? folderTarget(out);
      // The broker is joined before the build, so a wrong URL or a broker that is down costs no publish.
      const { connectBroker, announceVersion } = flags.cluster !== undefined ? await import('../cluster/index.ts') : { connectBroker: undefined, announceVersion: undefined };
      const broker = flags.cluster !== undefined ? await connectBroker!(flags.cluster, { name: `livemod publish pid ${process.pid}` }).catch(async (error: unknown) => {
        await target.close();
        throw error;
      }) : null;
      let result: BuildResult;
      let published: PublishResult;
      try {
        // OUT is created only once the build succeeded, so a failed publish leaves nothing behind.
        const { loadProjectConfig } = await import('../config/index.ts');
        const project = await loadProjectConfig();
        const options = resolveBuildFlags(mergeBuildConfig(flags, project.config.build), DEFAULT_TTL_MS, s3 ? [] : [existsSync(out) ? realpathSync(out) : out]);
        const builder = new SnapshotBuilder(dir, options.build);
        result = builder.build();
        reportBuild(result, output);
        published = await publishSnapshot(result.content, key, target, { ttlMs: options.ttlMs });
        if (broker) {
          if (!announceVersion!(broker, published.snapshot)) output.warn(`[livemod publish] version ${published.snapshot.manifest.version} is published, but the broker connection closed before it could be announced; replicas find it at their next look`);
          // Drained: the announcement has reached the broker before the command exits.
          await broker.close();
        }
      } finally {
        await target.close();
        await broker?.close();
      }
      const { manifest } = published.snapshot;
      const modules = Object.keys(manifest.modules).length;
      const url = bucket?.url ?? undefined;
      output.result(
        { version: manifest.version, name: manifest.name, modules, entry: manifest.entry, blobsWritten: published.blobsWritten, packBytes: published.packBytes, out: published.out, ...(url ? { url } : {}), keyId: key.keyId, publicKey: key.publicKeyString, expires: manifest.expires, unresolved: result.unresolved, broken: result.broken, skipped: result.skipped },
        `[livemod publish] ${quoted(manifest.name)} version ${manifest.version}: ${modules} modules, ${published.blobsWritten} new blobs, pack ${formatBytes(published.packBytes)} → ${published.out}${url ? ` (${url})` : ''} (expires ${manifest.expires}, key ${key.publicKeyString})`,
      );
    });
}

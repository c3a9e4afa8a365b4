import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { DEFAULT_SERVE_TTL_MS, generatePublisherKey, parsePublicKey, signSnapshot, type Manifest, type PublisherKey, type Snapshot, type SnapshotContent, type VerifyKey } from '../snapshot/index.ts';
import { SnapshotBuilder, watchFolder } from '../build/index.ts';
import { addBuildOptions, mergeBuildConfig, reportBuild, resolveBuildFlags, type BuildFlags } from './build-options.ts';
import { loadPrivateKey } from './key-file.ts';
import { parseDuration, parsePort, usage } from './options.ts';
import { inert, quoted } from '../text.ts';
import { createOutput, describeError, type Output } from './output.ts';
import type { ModuleServer, ServerOptions } from '../server/index.ts';
import type { Broker, FleetMembership } from '../cluster/index.ts';

interface ServeFlags extends BuildFlags {
  port: string;
  host: string;
  key?: string;
  follow?: string;
  trust?: string;
  sourceToken?: string;
  cluster?: string;
  poll?: string;
  app?: string;
  maxClients?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
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

/** A snapshot's content, for signing again: everything the manifest carries besides its signature fields. */
function contentOf(snapshot: Snapshot): SnapshotContent {
  const manifest: Manifest = snapshot.manifest;
  return {
    modules: manifest.modules,
    entry: manifest.entry,
    blobs: snapshot.blobs,
    ...(manifest.files ? { files: manifest.files } : {}),
    ...(manifest.packages ? { packages: manifest.packages } : {}),
    ...(manifest.layout ? { layout: manifest.layout } : {}),
    ...(manifest.links ? { links: manifest.links } : {}),
    ...(manifest.externals ? { externals: manifest.externals } : {}),
  };
}

function serverOptions(flags: ServeFlags, output: Output): Partial<ServerOptions> {
  return {
    host: flags.host,
    port: parsePort(flags.port),
    tokens: flags.token,
    ...(flags.maxClients !== undefined ? { maxClients: parseCount('--max-clients', flags.maxClients) } : {}),
    ...(flags.tlsCert && flags.tlsKey ? { tls: { cert: readPem('--tls-cert', flags.tlsCert), key: readPem('--tls-key', flags.tlsKey) } } : {}),
    log: (line: string) => output.info(line),
  };
}

/**
 * A server's heap is mostly its channels, which arrive in bursts (a start, a replica's death) and
 * then live for hours. V8 answers a burst of long-lived allocations by doubling its young
 * generation up to its maximum and keeps it there, which measured 3–5 KiB of resident memory per
 * idle channel on top of the 4 KiB the channel itself holds. Not letting it grow keeps a server at
 * about 6 KiB per channel. This flag is read at each growth step, so setting it now takes effect
 * (the semi-space maximum, by contrast, is fixed at start-up). Scavenges get more frequent, which
 * costs a server little: its allocations are requests and frames that die young.
 */
function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

function parseCount(option: string, text: string): number {
  if (!/^[1-9][0-9]{0,6}$/.test(text)) throw usage(`${option} ${inert(text, 40)} is not a whole number from 1 to 9999999`);
  return Number(text);
}

function waitForSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

async function joinBroker(url: string | undefined, role: string, output: Output): Promise<Broker | null> {
  if (url === undefined) return null;
  const { connectBroker } = await import('../cluster/index.ts');
  const broker = await connectBroker(url, { name: `livemod serve ${role} pid ${process.pid}` });
  output.event({ event: 'broker', broker: broker.address.display }, `[livemod cluster] connected to the broker at ${broker.address.display}`);
  return broker;
}

/** `serve DIR`: build, sign, serve, and (with --watch) rebuild and push; with --cluster, announce each version. */
async function serveFolder(dir: string, flags: ServeFlags, output: Output): Promise<void> {
  const { createModuleServer } = await import('../server/index.ts');
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

  const server: ModuleServer = createModuleServer(serverOptions(flags, output));
  server.publish(current);
  const { url } = await server.listen();
  const broker = await joinBroker(flags.cluster, 'origin', output).catch(async (error: unknown) => {
    await server.close();
    throw error;
  });
  let fleet: FleetMembership | undefined;
  if (broker) {
    const { FleetMembership } = await import('../cluster/index.ts');
    fleet = new FleetMembership({ broker, app: name, server, log: (line) => output.warn(line) });
    fleet.announce(current);
  }
  const modules = Object.keys(current.manifest.modules).length;
  output.event(
    { event: 'listening', url, publicKey: key.publicKeyString, keyId: key.keyId, ephemeralKey: ephemeral, name, version: current.manifest.version, expires: current.manifest.expires, modules, entry: current.manifest.entry, role: 'origin' },
    `[livemod serve] ${url} — app ${quoted(name)} version ${current.manifest.version}, ${modules} modules${current.manifest.entry ? `, entry ${current.manifest.entry}` : ''}\n[livemod serve] public key${ephemeral ? ' (ephemeral: made for this run, pass --key to keep one)' : ''}: ${key.publicKeyString}`,
  );

  const publish = (content: SnapshotContent, detail: Record<string, unknown>, human: string): void => {
    current = signSnapshot(content, key, { ttlMs: options.ttlMs, previousVersion: current.manifest.version, name });
    // When the version was handed to the server: pushing it to thousands of channels takes a while.
    const at = Date.now();
    server.publish(current);
    fleet?.announce(current);
    output.event({ event: 'published', version: current.manifest.version, at, ...detail }, `[livemod serve] version ${current.manifest.version}: ${human}`);
  };

  // Re-sign well before expiry, so a long-running server's clients never see a frozen manifest.
  const resign = setInterval(() => publish(contentOf(current), { reason: 'resign' }, 're-signed before expiry'), Math.min(options.ttlMs / 2, 2 ** 31 - 1));
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

  await waitForSignal();
  clearInterval(resign);
  await watch?.close();
  await server.close();
  await broker?.close();
  output.event({ event: 'closed' }, '[livemod serve] stopped');
}

/** `serve --follow SOURCE`: a replica, serving what its source serves once it verifies. */
async function serveReplica(source: string, flags: ServeFlags, output: Output): Promise<void> {
  if (flags.key) throw usage('--key is the private key of a server that signs what it builds; a replica (--follow) signs nothing: pass the publisher\'s public key with --trust');
  if (flags.watch) throw usage('--watch rebuilds a folder; a replica (--follow) serves what its source publishes');
  const trust = flags.trust ?? process.env.LIVEMOD_KEY;
  if (!trust) throw new LivemodError('serve', ErrorCodes.KEY_MISSING, 'a replica verifies every manifest it serves: pass the publisher\'s public key with --trust ed25519:… (or env LIVEMOD_KEY)');
  const key: VerifyKey = parsePublicKey(trust);
  if (/^s3:/i.test(source)) {
    // A bucket is followed through its HTTP address, as clients read it: anonymous reads (or a CDN in front).
    const { s3HttpUrl } = await import('../build/index.ts');
    const http = s3HttpUrl(source, { endpoint: flags.s3Endpoint, region: flags.s3Region, pathStyle: flags.s3PathStyle }, '--follow');
    if (http === null) throw usage(`--follow ${inert(source, 120)} needs to know where the bucket is read over HTTP: pass --s3-endpoint (a self-hosted store) or --s3-region (AWS), or --follow its http(s) URL`);
    source = http;
  } else if (flags.s3Endpoint !== undefined || flags.s3Region !== undefined || flags.s3PathStyle) {
    throw usage('--s3-endpoint, --s3-region and --s3-path-style are for --follow s3://BUCKET/PREFIX');
  }
  let base: URL;
  try {
    base = new URL(source);
  } catch {
    throw usage(`--follow ${inert(source, 120)} is not a URL; pass the origin server's URL or a static snapshot's, e.g. --follow http://origin:7070/`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw usage(`--follow ${inert(source, 120)} is not an http(s) URL; pass the origin server's URL or a static snapshot's (a bucket through its HTTP endpoint)`);
  const pollMs = flags.poll === undefined ? 30_000 : parseDuration('--poll', flags.poll, { zero: true });
  const sourceToken = flags.sourceToken ?? process.env.LIVEMOD_SOURCE_TOKEN;
  const { createModuleServer } = await import('../server/index.ts');
  const { Follower, FleetMembership } = await import('../cluster/index.ts');
  const server: ModuleServer = createModuleServer(serverOptions(flags, output));
  const follower = new Follower({
    source: base.href,
    key,
    ...(flags.app ? { app: flags.app } : {}),
    ...(sourceToken ? { headers: { authorization: `Bearer ${sourceToken}` } } : {}),
    server,
    pollMs,
    // Said with --json too: a replica that cannot reach its source is an operator's business.
    log: (line) => output.warn(line),
    onError: (error, line) => output.event({ event: 'error', code: describeError(error).code, message: line }, line),
    onVersion: (snapshot, detail) => output.event(
      { event: 'published', version: snapshot.manifest.version, at: Date.now(), reason: detail.reason, blobsFetched: detail.blobsFetched, bytes: detail.bytes },
      `[livemod serve] version ${snapshot.manifest.version} from ${base.href} (${detail.reason}; ${detail.blobsFetched} blobs, ${detail.bytes} bytes fetched)`,
    ),
  });
  const first = await follower.start();
  const name = first.manifest.name;
  const { url } = await server.listen();
  const broker = await joinBroker(flags.cluster, 'replica', output).catch(async (error: unknown) => {
    await follower.close();
    await server.close();
    throw error;
  });
  new FleetMembership({ broker, app: name, server, follower, log: (line) => output.warn(line) });
  // Announcements sent while this replica was starting were missed: look once more now that it listens.
  if (broker) follower.wake('joined the broker');
  output.event(
    { event: 'listening', url, keyId: key.keyId, name, version: first.manifest.version, expires: first.manifest.expires, modules: Object.keys(first.manifest.modules).length, entry: first.manifest.entry, role: 'replica', source: base.href },
    `[livemod serve] ${url} — replica of ${base.href}: app ${quoted(name)} version ${first.manifest.version}${broker ? `, announcements from ${broker.address.display}` : ''}`,
  );
  await waitForSignal();
  await follower.close();
  await server.close();
  await broker?.close();
  output.event({ event: 'closed' }, '[livemod serve] stopped');
}

export function registerServe(program: Command): void {
  addBuildOptions(
    program
      .command('serve')
      .description('serve DIR as a live snapshot: manifest, blobs, a batch route, a push channel and a status page; or, with --follow, be a replica of another server or a static snapshot')
      .argument('[dir]', 'folder of TS/JS modules (not with --follow)')
      .option('-p, --port <port>', 'port to listen on (0 picks a free one)', '7070')
      .option('--host <host>', 'address to bind', '127.0.0.1')
      .option('-k, --key <file>', 'publisher private key file (mode 0600); without it an ephemeral key is made and its public key printed')
      .option('--token <token>', 'require `Authorization: Bearer <token>` on every route but /healthz (repeatable)', (value: string, previous: string[]) => [...previous, value], [] as string[])
      .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (needs --tls-key)')
      .option('--tls-key <file>', 'PEM private key for --tls-cert')
      .option('-w, --watch', 'rebuild on file changes and push each new version to connected clients')
      .option('--max-clients <n>', 'most channel clients at once (default 10000); one more is told to try again later, and a program retries with backoff (raise the open-files limit with it: ulimit -n)')
      .option('--cluster <url>', 'a message broker, nats://HOST:PORT (or redis://HOST:PORT): a server with DIR announces each version there; a replica (--follow) looks at its source when one is announced, and both answer `livemod fleet`')
      .option('--follow <url>', 'be a replica: serve what this source serves (the origin server\'s URL, a static snapshot\'s over HTTP — a CDN —, or s3://BUCKET/PREFIX read over the store\'s HTTP endpoint), verified with --trust, and follow its new versions')
      .option('--trust <public-key>', 'with --follow: the publisher public key every manifest served must verify with, ed25519:… (default: env LIVEMOD_KEY)')
      .option('--app <name>', 'with --follow: the app the source must serve (default: the app of its first manifest)')
      .option('--source-token <token>', 'with --follow: send Authorization: Bearer <token> to the source (default: env LIVEMOD_SOURCE_TOKEN)')
      .option('--s3-endpoint <url>', 'with --follow s3://BUCKET/PREFIX: the store\'s endpoint, whose HTTP address the replica reads (default AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS)')
      .option('--s3-region <region>', 'with --follow s3://…: the bucket\'s region (default AWS_REGION; us-east-1 with an endpoint)')
      .option('--s3-path-style', 'with --follow s3://…: read the bucket as ENDPOINT/BUCKET/ (most self-hosted stores)')
      .option('--poll <duration>', 'with --follow: also look at the source this often, e.g. 30s (default 30s; 0: only on announcements and the origin\'s channel)'),
    DEFAULT_SERVE_TTL_MS,
  )
    .option('--json', 'print one JSON line per event (listening, published, error) on stdout')
    .addHelpText('after', '\nRoutes: / (status page), /status, /healthz, /manifest.json, /blobs/<hash>, POST /batch, /channel (WebSocket).\nThe manifest is re-signed at half its lifetime (--expires), so clients never see it expire.\n\nA fleet: one server builds and announces, replicas follow it (or a snapshot in object storage) and serve their own clients:\n  livemod serve ./src --watch --key publisher.key --port 7070 --cluster nats://127.0.0.1:4222\n  livemod serve --follow http://origin:7070/ --trust ed25519:… --port 7071 --cluster nats://127.0.0.1:4222\n  livemod fleet --cluster nats://127.0.0.1:4222\n\nExample:\n  livemod serve ./src --watch --key publisher.key --port 7070')
    .action(async (dir: string | undefined, flags: ServeFlags) => {
      const output = createOutput(flags.json === true);
      keepYoungGenerationSmall();
      if (Boolean(flags.tlsCert) !== Boolean(flags.tlsKey)) throw usage('--tls-cert and --tls-key go together: pass both or neither');
      for (const token of flags.token) {
        if (!/^[\x21-\x7e]{8,512}$/.test(token)) throw usage('--token must be 8–512 visible ASCII characters (no spaces)');
      }
      if (flags.follow !== undefined) {
        if (dir !== undefined) throw usage('pass either a folder to build and serve, or --follow SOURCE to be a replica, not both');
        await serveReplica(flags.follow, flags, output);
        return;
      }
      if (dir === undefined) throw usage('serve needs a folder to build (livemod serve ./src), or --follow SOURCE to be a replica');
      for (const [flag, set] of [['--trust', flags.trust], ['--source-token', flags.sourceToken], ['--poll', flags.poll], ['--app', flags.app], ['--s3-endpoint', flags.s3Endpoint], ['--s3-region', flags.s3Region], ['--s3-path-style', flags.s3PathStyle]] as const) {
        if (set !== undefined) throw usage(`${flag} is for a replica (--follow); a server with a folder builds and signs what it serves`);
      }
      await serveFolder(dir, flags, output);
    });
}

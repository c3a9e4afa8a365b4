import type { Command } from 'commander';
import { pathToFileURL } from 'node:url';
import { connect, openFolder, type App } from '../client/index.ts';
import { parseDuration } from './options.ts';
import { terminalProgress } from './progress.ts';

interface RunFlags {
  key?: string;
  app?: string;
  token?: string;
  offline?: boolean;
  maxStale?: string;
  cache?: string;
  timeout?: string;
  quiet?: boolean;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a live module: from a livemod server or static snapshot (URL), or a local folder built in-process (path)')
    .argument('<target>', 'http(s)://host[:port]/[module] — or ./path/to/module.ts or ./folder')
    .argument('[args...]', 'arguments for the program, after -- (its process.argv after the module)')
    .option('-k, --key <public-key>', 'publisher public key to verify against, ed25519:… (default: env LIVEMOD_KEY, else the config file: $LIVEMOD_CONFIG or ~/.config/livemod/config.json)')
    .option('--app <name>', "the app the snapshot must be of (its manifest's name), refused otherwise even on a first run (default: the config file's \"app\"; without it, the app this cache accepted from the URL before)")
    .option('--token <token>', 'send Authorization: Bearer <token> (default: env LIVEMOD_TOKEN)')
    .option('--offline', 'never touch the network: run the last verified version in the cache')
    .option('--max-stale <duration>', 'when the origin is unreachable (or --offline), run the cached version only if the origin confirmed it within this long (default 7d; 0: never run unconfirmed code)')
    .option('--cache <dir>', 'store folder (default: env LIVEMOD_CACHE, else the user cache directory)')
    .option('--timeout <duration>', 'one deadline for the whole sync, every request in it, e.g. 10s (default 30s); past it the cached version runs, as offline')
    .option('-q, --quiet', 'no progress bar or notices on stderr')
    .addHelpText('after', '\nWithout a module in the URL, the manifest\'s entry runs. Offline (origin unreachable, or no answer\nwithin --timeout) the cached version runs if its origin confirmed it within --max-stale, and\nstderr says how old it is. Exit code: the program\'s own, or 1 if it throws.\n\nExamples:\n  livemod run http://127.0.0.1:7070/main.ts --key ed25519:… --app tools\n  livemod run https://cdn.example.com/app/ -- --verbose\n  livemod run ./src/main.ts')
    .action(async (target: string, args: string[], flags: RunFlags) => {
      const quiet = flags.quiet === true;
      const notice = (line: string): void => {
        if (!quiet) process.stderr.write(`${line}\n`);
      };
      let app: App;
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
        const progress = quiet ? undefined : terminalProgress();
        try {
          app = await connect(target, {
            ...(flags.key ? { publicKey: flags.key } : {}),
            ...(flags.app !== undefined ? { app: flags.app } : {}),
            ...(flags.token ? { token: flags.token } : {}),
            ...(flags.cache ? { cache: flags.cache } : {}),
            offline: flags.offline === true,
            ...(flags.maxStale ? { maxStaleMs: parseDuration('--max-stale', flags.maxStale, { zero: true }) } : {}),
            ...(flags.timeout ? { timeoutMs: parseDuration('--timeout', flags.timeout) } : {}),
            ...(progress ? { onProgress: (state) => progress.update(state) } : {}),
            notice,
          });
        } finally {
          progress?.stop();
        }
      } else {
        app = await openFolder(target);
      }
      const entry = app.entry;
      process.argv = [process.argv[0]!, entry ? app.registry.urlOf(entry) : pathToFileURL(target).href, ...args];
      await app.import();
    });
}

import type { Command } from 'commander';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { connect, openFolder, type App } from '../client/index.ts';
import { keepOwnFrames } from '../runtime/index.ts';
import { loadProjectConfig } from '../config/index.ts';
import { parseDuration, usage } from './options.ts';
import { ErrorCodes, LivemodError, isLinkError, isLivemodError } from '../errors.ts';
import { inspect } from 'node:util';

interface RunFlags {
  revalidate?: string;
  maps?: string;
  key?: string;
  app?: string;
  token?: string;
  offline?: boolean;
  maxStale?: string;
  cache?: string;
  timeout?: string;
  quiet?: boolean;
  once?: boolean;
  poll?: string;
  watch?: boolean;
  logSwaps?: boolean;
  restartOnUnaccepted?: boolean;
  lazy?: boolean;
  lazyMode?: string;
  report?: boolean;
  json?: boolean;
}

/** The exit code a supervised run uses to ask its supervisor for a fresh process. */
const RESTART_CODE = 75;

/**
 * `--restart-on-unaccepted`: this process only supervises. It runs the same command in a child
 * (marked LIVEMOD_SUPERVISED) and starts it again whenever the child exits asking for it —
 * a change no module accepted — so the program restarts on the new version instead.
 */
async function supervise(notice: (line: string) => void): Promise<number> {
  const args = [...process.execArgv, process.argv[1]!, ...process.argv.slice(2)];
  for (;;) {
    // Taken here: a run that does not supervise should not load child_process (and net, dgram).
    const child = process.getBuiltinModule('node:child_process').spawn(process.execPath, args, { stdio: 'inherit', env: { ...process.env, LIVEMOD_SUPERVISED: '1' } });
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const code = await new Promise<number>((resolve) => child.once('exit', (status, signal) => resolve(status ?? (signal ? 128 + 15 : 1))));
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    if (code !== RESTART_CODE) return code;
    notice('[livemod run] a new version needs a restart (a change no module accepts, or changed npm packages): restarting on it');
  }
}

function mapsMode(text: string): 'first-use' | 'start' {
  if (text === 'first-use' || text === 'start') return text;
  throw usage(`--maps ${JSON.stringify(text.slice(0, 40))} is not a mode; write --maps first-use (fetch source maps when a stack first needs them, the default) or --maps start (with the code)`);
}

function revalidateMode(text: string): 'start' | 'background' {
  if (text === 'start' || text === 'background') return text;
  throw usage(`--revalidate ${JSON.stringify(text.slice(0, 40))} is not a mode; write --revalidate start (ask the origin first, the default) or --revalidate background (run the cached version at once)`);
}

/** How long a run whose cached version failed at once waits for the origin's answer (`--revalidate background`). */
const BACKGROUND_WAIT_MS = 10_000;

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
    .option('--cache <dir>', 'store folder: the verified cache of a URL, the build cache of a local folder (default: env LIVEMOD_CACHE, else the user cache directory)')
    .option('--timeout <duration>', 'one deadline for the whole sync, every request in it, e.g. 10s (default 30s); past it the cached version runs, as offline')
    .option('-q, --quiet', 'no progress bar or notices on stderr')
    .option('--once', 'run the version it starts with; do not follow new versions (a URL target follows them by default)')
    .option('--revalidate <when>', 'start (default): ask the origin before running; background: run the verified cached version at once, ask beside it, and swap to a newer version in place')
    .option('--maps <when>', 'first-use (default): fetch source maps when a stack first needs them; start: with the code, so offline stacks are mapped too')
    .option('--poll <duration>', 'revalidate the manifest this often (a conditional GET), e.g. 30s: for static hosts, which have no channel')
    .option('-w, --watch', 'for a local folder: rebuild changed files and swap them in place')
    .option('--log-swaps', 'print every swap (version, modules with old → new hash, duration, result); failures are always printed')
    .option('--lazy', 'a live module imported by name, default or namespace runs at the first read of one of its bindings, not with its importer (side-effect imports, re-exports and top-level-await graphs stay eager; livemod.config.ts can keep more eager); without it only `import defer` defers')
    .option('--lazy-mode <mode>', 'normal (as --lazy), all (packages imported by name or default load at the first read too, synchronously, as import would load them), or none')
    .option('--report', 'at exit, print on stderr how each module was loaded: never (deferred or lazy and not read), at first access (importer, read site, time, heap), eagerly and why, or failed')
    .option('--json', 'with --report: the report as one JSON document on stderr (stdout is the program\'s)')
    .option('--restart-on-unaccepted', 'restart the program in a fresh process when a change reaches no module that accepts it, instead of re-running the entry in place')
    .addHelpText('after', '\nA URL target stays live: it follows the server\'s channel (or --poll) and swaps each new\nversion in place, transactionally (a failing version rolls back; the old code keeps running).\nLive modules take new versions with import.meta.hot (accept, dispose, data): see docs/hot-swap.md.\nWithout a module in the URL, the manifest\'s entry runs. Offline (origin unreachable, or no answer\nwithin --timeout) the cached version runs if its origin confirmed it within --max-stale, and\nstderr says how old it is.\nA livemod.config.ts (or .mts/.js/.mjs/.json) in the working folder gives defaults (lazy,\neager rules, keys by origin): flags override it.\nExit code: the program\'s own, or 1 if it throws while it starts (as in Node, that ends it,\nwhatever it started, unless it handles uncaughtException; under --watch it waits for the fix).\nCommonJS files (.cjs, or .js without import/export outside a "type": "module" package) run\nas Node runs them.\n\nExamples:\n  livemod run http://127.0.0.1:7070/main.ts --key ed25519:… --app tools\n  livemod run https://cdn.example.com/app/ -- --verbose\n  livemod run ./src/main.ts')
    .action(async (target: string, args: string[], flags: RunFlags, command: Command) => {
      const verbose = process.env.LIVEMOD_DEBUG === '1' || command.optsWithGlobals<{ verbose?: boolean }>().verbose === true;
      // The program's stacks keep livemod's frames too (without it, they show the program's alone, as Node's do).
      if (verbose) keepOwnFrames();
      const quiet = flags.quiet === true;
      const notice = (line: string): void => {
        if (!quiet) process.stderr.write(`${line}\n`);
      };
      if (flags.restartOnUnaccepted && process.env.LIVEMOD_SUPERVISED !== '1') {
        process.exitCode = await supervise(notice);
        return;
      }
      const remote = /^[a-z][a-z0-9+.-]*:\/\//i.test(target);
      if (flags.watch && remote) throw usage('--watch is for a local folder; a URL target follows the server already (or use --poll)');
      if (flags.json && !flags.report) throw usage('--json goes with --report (the program owns stdout)');
      if (flags.once && (flags.watch || flags.poll)) throw usage('--once runs one version: it does not go with --watch or --poll');
      if (flags.revalidate !== undefined && !remote) throw usage('--revalidate is for a URL target: a local folder has no origin to ask');
      if (flags.revalidate !== undefined) revalidateMode(flags.revalidate);
      if (flags.maps !== undefined && !remote) throw usage('--maps is for a URL target: a local run builds its maps with its code');
      if (flags.maps !== undefined) mapsMode(flags.maps);
      const project = (await loadProjectConfig()).config;
      if (flags.lazyMode !== undefined && !['normal', 'all', 'none'].includes(flags.lazyMode)) throw new LivemodError('cli', ErrorCodes.USAGE, `--lazy-mode ${JSON.stringify(flags.lazyMode.slice(0, 40))} is not a mode; give normal, all or none`);
      const lazy = (flags.lazyMode as 'normal' | 'all' | 'none' | undefined) ?? (flags.lazy ? 'normal' : project.lazy);
      const live = {
        ...(lazy !== undefined ? { lazy } : {}),
        ...(project.eager ? { eager: project.eager } : {}),
        ...(flags.report ? { loadReport: true } : {}),
        live: remote ? flags.once !== true : flags.watch === true,
        ...(flags.poll ? { pollMs: parseDuration('--poll', flags.poll) } : {}),
        ...(flags.restartOnUnaccepted ? { restartOnUnaccepted: true } : {}),
        ...(flags.logSwaps ? { logSwaps: true } : {}),
        // Swap failures and edits that do not build are printed even with --quiet: the program runs the old code, and says why.
        notice: (line: string): void => {
          if (!quiet || line.startsWith('[livemod swap]') || line.startsWith('[livemod watch]')) process.stderr.write(`${line}\n`);
        },
      };
      let app: App;
      if (remote) {
        // The progress bar's library is loaded only when a bar may be drawn.
        const progress = quiet || !process.stderr.isTTY ? undefined : (await import('./progress.ts')).terminalProgress();
        try {
          app = await connect(target, {
            ...(flags.key ? { publicKey: flags.key } : {}),
            ...(flags.app !== undefined ? { app: flags.app } : {}),
            ...(flags.token ? { token: flags.token } : {}),
            ...(project.origins ? { origins: project.origins } : {}),
            ...(flags.cache ? { cache: flags.cache } : {}),
            offline: flags.offline === true,
            ...(flags.revalidate !== undefined ? { revalidate: revalidateMode(flags.revalidate) } : {}),
            ...(flags.maps !== undefined ? { maps: mapsMode(flags.maps) } : {}),
            ...(flags.maxStale ? { maxStaleMs: parseDuration('--max-stale', flags.maxStale, { zero: true }) } : {}),
            ...(flags.timeout ? { timeoutMs: parseDuration('--timeout', flags.timeout) } : {}),
            ...(progress ? { onProgress: (state) => progress.update(state) } : {}),
            ...live,
          });
        } finally {
          progress?.stop();
        }
      } else {
        app = await openFolder(target, { ...live, ...(flags.cache ? { cache: flags.cache } : {}) });
      }
      if (flags.restartOnUnaccepted) {
        app.on('swap', (record) => {
          if (record.status === 'unaccepted') process.exit(RESTART_CODE);
        });
      }
      // Under a service supervisor (livemod service add --run): take reload and status requests.
      const control = process.env.LIVEMOD_CONTROL_SOCKET;
      if (control) {
        const { listenControl } = await import('../service/control.ts');
        // The program runs either way: without the socket, a reload restarts it instead.
        await listenControl(control, app).catch((error: NodeJS.ErrnoException) => {
          process.stderr.write(`[livemod run] cannot listen on the control socket ${control} (${error.code ?? error.message}); reloads of this service cannot swap in place\n`);
        });
      }
      if (flags.report) {
        const { formatLoadReport } = await import('../runtime/index.ts');
        process.once('exit', () => {
          const records = app.loadReport();
          process.stderr.write(`${flags.json ? JSON.stringify({ loadReport: records }) : formatLoadReport(records)}\n`);
        });
      }
      const entry = app.entry;
      const source = app.registry.source;
      const commonJsEntry = entry !== null && source.manifest.modules[entry]?.commonjs === true;
      // As under Node, argv[1] is the main module's path (a file in the store's view of the version), its URL only when it has none;
      // a CommonJS entry's is its __filename (the version's own folder, where Node loads it from).
      const main = entry ? (commonJsEntry && (source.files ?? source.base).startsWith('file:') ? pathToFileURL(join(fileURLToPath(source.files ?? source.base), ...entry.split('/'))).href : app.registry.urlOf(entry)) : pathToFileURL(target).href;
      process.argv = [process.argv[0]!, main.startsWith('file:') ? fileURLToPath(main) : main, ...args];
      const started = app.version;
      try {
        await app.import();
      } catch (error) {
        if (isLivemodError(error) || verbose) {
          // Printed by the CLI (with its stack when verbose); then the program ends as below, whatever it started.
          if (!flags.watch) setImmediate(() => process.exit(process.exitCode ?? 1));
          throw error;
        }
        // As in Node, a program that handles uncaught exceptions gets its own throw there, and runs on.
        if (!isLinkError(error) && process.listenerCount('uncaughtException') > 0) {
          (process.emit as (event: string, error: unknown, origin: string) => boolean)('uncaughtException', error, commonJsEntry ? 'uncaughtException' : 'unhandledRejection');
          return;
        }
        const code = (error as { code?: unknown }).code;
        if (isLinkError(error)) {
          // Not found, a missing export, a file that does not parse: Node's error, in one line.
          process.stderr.write(`[livemod run] ${error.name}: ${error.message.split('\n')[0]}${typeof code === 'string' ? ` [${code}]` : ''}\n`);
        } else {
          // The program's own throw, as Node prints an uncaught one: its source line, then its stack.
          const { explainCommonJsGlobal, formatProgramError } = await import('../runtime/index.ts');
          // A module with top-level await rejects instead of throwing: explained here, as it reaches the top.
          explainCommonJsGlobal(error);
          process.stderr.write(`${formatProgramError(error, inspect(error))}\n`);
        }
        process.exitCode = 1;
        // As in Node, an uncaught throw ends the program, whatever it started before it (a server,
        // a timer); under --watch it waits for the fix instead, as the edit loop it is for.
        if (flags.watch) return;
        // A cached version that fails at once, run without asking the origin first: the origin is
        // asked now, so that the next start (a service's restart) runs a fixed version it has.
        if (remote && flags.revalidate === 'background' && app.refresh) {
          const version = await Promise.race([app.refresh().catch(() => null), new Promise<null>((resolve) => setTimeout(() => resolve(null), BACKGROUND_WAIT_MS).unref())]);
          if (version !== null && version > started) notice(`[livemod run] the origin has version ${version}, newer than the cached version ${started} that failed: it is stored, and the next start runs it`);
        }
        process.exit(1);
      }
    });
}

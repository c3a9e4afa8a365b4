// `livemod service …`: the user-space service manager's command line (src/service).
import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { formatAge } from '../format.ts';
import { PACKAGE_ROOT } from '../own.ts';
import type { RestartPolicy, ServiceManager, ServiceView } from '../service/index.ts';
import { parseDuration, parseSize, usage } from './options.ts';
import { createOutput } from './output.ts';

interface AddFlags {
  cwd?: string;
  env: string[];
  stdout?: string;
  stderr?: string;
  restart: string;
  killTimeout?: string;
  maxLogSize?: string;
  run?: string;
  key?: string;
  app?: string;
  token?: string;
  start: boolean;
  json?: boolean;
}

const POLICIES: readonly RestartPolicy[] = ['always', 'on-failure', 'never'];

/** Opens the state (reconciling: a service whose supervisor died gets a new one, except the one `starting`), runs `body`, closes it. */
async function withManager<T>(body: (manager: ServiceManager) => T | Promise<T>, starting?: string): Promise<T> {
  const { ServiceManager } = await import('../service/index.ts');
  const opened = new ServiceManager();
  try {
    opened.reconcile(starting);
    return await body(opened);
  } finally {
    opened.close();
  }
}

function parseEnv(pairs: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw usage(`--env ${JSON.stringify(pair.slice(0, 60))} is not K=V; write e.g. --env PORT=8080`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return env;
}

function stateLine(view: ServiceView): string {
  const pid = view.pid !== null ? ` (pid ${view.pid}, up ${formatAge(view.uptimeMs ?? 0)})` : '';
  const exit = view.state !== 'running' && view.lastExit ? `; last: ${view.lastExit}` : '';
  return `${view.name}: ${view.state}${pid}${exit}`;
}

function table(views: readonly ServiceView[]): string {
  if (views.length === 0) return 'no services; add one with `livemod service add NAME -- COMMAND`';
  const rows = [['NAME', 'STATE', 'PID', 'UPTIME', 'RESTARTS', 'COMMAND']];
  for (const view of views) {
    const command = view.runUrl !== null ? `livemod run ${view.runUrl}` : view.command.join(' ');
    rows.push([view.name, view.state, view.pid === null ? '-' : String(view.pid), view.uptimeMs === null ? '-' : formatAge(view.uptimeMs), String(view.restarts), command.length > 60 ? `${command.slice(0, 57)}...` : command]);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ')).join('\n');
}

function details(view: ServiceView): string {
  const lines = [stateLine(view), `  command:    ${view.command.join(' ')}`, `  cwd:        ${view.cwd}`, `  restart:    ${view.restart} (restarts so far: ${view.restarts})`];
  lines.push(`  supervisor: ${view.supervisor.running ? `pid ${view.supervisor.pid}` : 'not running'}`);
  lines.push(`  logs:       ${view.stdout}${view.stderr !== view.stdout ? `, ${view.stderr}` : ''}`);
  if (view.lastExit) lines.push(`  last exit:  ${view.lastExit}`);
  if (view.runUrl !== null) lines.push(`  live app:   ${view.runUrl}`);
  if (view.live && 'version' in view.live) {
    const swap = view.live.lastSwap as { at?: string; status?: string; version?: number } | null;
    lines.push(`  version:    ${view.live.version}${swap ? `; last swap ${swap.status} to ${swap.version} at ${swap.at}` : '; no swap yet'}`);
  } else if (view.live) lines.push(`  version:    unknown (${view.live.error})`);
  return lines.join('\n');
}

export function registerService(program: Command): void {
  const service = program
    .command('service')
    .description('keep named programs running (no root, no central daemon): add, start, stop, restart, reload in place, logs')
    .addHelpText('after', '\nState lives in $LIVEMOD_HOME, else $XDG_STATE_HOME/livemod, else ~/.local/state/livemod.\nEach service has a supervisor process of its own; if it dies the service runs on, and the next\n`livemod service` call adopts it. See docs/service.md.\n\nExamples:\n  livemod service add web --cwd ./app --env PORT=8080 -- node server.js\n  livemod service add tools --run http://127.0.0.1:7070/ --key ed25519:…\n  livemod service list\n  livemod service reload tools');

  service
    .command('add')
    .description('add a service and start it')
    .argument('<name>', 'the service name: letters, digits, _ . -')
    .argument('[command...]', 'the command and its arguments, after --')
    .option('--cwd <dir>', 'working folder (default: this one)')
    .option('--env <K=V>', 'an environment variable for the service (repeatable)', (value: string, all: string[]) => [...all, value], [] as string[])
    .option('--stdout <file>', 'append stdout here (default: <state>/logs/NAME.out.log)')
    .option('--stderr <file>', 'append stderr here (default: <state>/logs/NAME.err.log)')
    .option('--restart <policy>', 'always | on-failure | never', 'always')
    .option('--kill-timeout <duration>', 'grace between SIGTERM and SIGKILL on stop', '5s')
    .option('--max-log-size <size>', 'rotate a log file past this size (3 old copies kept)', '10MiB')
    .option('--run <url>', 'the service is `livemod run URL` (a live app: `reload` swaps it in place); program arguments after --')
    .option('-k, --key <public-key>', 'with --run: the publisher key to verify against')
    .option('--app <name>', 'with --run: the app the snapshot must be of')
    .option('--token <token>', 'with --run: the token to send')
    .option('--no-start', 'only record the service; start it later')
    .option('--json', 'print the service as JSON')
    .action(async (name: string, command: string[], flags: AddFlags) => {
      const output = createOutput(flags.json === true);
      if (!POLICIES.includes(flags.restart as RestartPolicy)) throw usage(`--restart ${JSON.stringify(flags.restart.slice(0, 30))} is not a policy; write always, on-failure or never`);
      if (!flags.run && (flags.key || flags.app || flags.token)) throw usage('--key, --app and --token go with --run URL');
      const bin = fileURLToPath(new URL('bin/livemod.js', PACKAGE_ROOT));
      if (flags.run !== undefined && !/^https?:\/\//i.test(flags.run)) throw usage(`--run ${JSON.stringify(flags.run.slice(0, 80))} is not an http(s) URL`);
      const full = flags.run !== undefined
        ? [process.execPath, bin, 'run', flags.run, '--quiet', ...(flags.key ? ['--key', flags.key] : []), ...(flags.app ? ['--app', flags.app] : []), ...(command.length > 0 ? ['--', ...command] : [])]
        : command;
      // The token goes in the service's environment, never its argv (which any local user can read in ps).
      const env = { ...parseEnv(flags.env), ...(flags.token ? { LIVEMOD_TOKEN: flags.token } : {}) };
      await withManager(async (opened) => {
        const view = await opened.add(
          {
            name,
            command: full,
            ...(flags.cwd !== undefined ? { cwd: flags.cwd } : {}),
            env,
            ...(flags.stdout !== undefined ? { stdout: flags.stdout } : {}),
            ...(flags.stderr !== undefined ? { stderr: flags.stderr } : {}),
            restart: flags.restart as RestartPolicy,
            killTimeoutMs: parseDuration('--kill-timeout', flags.killTimeout ?? '5s'),
            maxLogBytes: parseSize('--max-log-size', flags.maxLogSize ?? '10MiB'),
            ...(flags.run !== undefined ? { runUrl: flags.run } : {}),
          },
          { start: flags.start },
        );
        output.result(view, `[livemod service] added ${stateLine(view)}`);
      });
    });

  const simple = (verb: 'start' | 'stop' | 'restart', description: string): void => {
    service
      .command(verb)
      .description(description)
      .argument('<name>')
      .option('--json', 'print the service as JSON')
      .action(async (name: string, flags: { json?: boolean }) => {
        const output = createOutput(flags.json === true);
        await withManager(async (opened) => {
          const started = Date.now();
          const view = await opened[verb](name);
          output.result({ ...view, tookMs: Date.now() - started }, `[livemod service] ${verb}: ${stateLine(view)}`);
          if (verb !== 'stop' && (view.state === 'errored' || view.state === 'exited')) process.exitCode = 1;
        }, verb === 'stop' ? undefined : name);
      });
  };
  simple('start', 'start a stopped service (its supervisor starts it and keeps it running)');
  simple('stop', 'stop a service: SIGTERM to its process group, SIGKILL after the kill timeout; returns once it has exited');
  simple('restart', 'stop, then start');

  service
    .command('reload')
    .description('a live (--run) service syncs and swaps to the newest version in place, same pid; any other service is restarted')
    .argument('<name>')
    .option('--json', 'print the outcome as JSON')
    .action(async (name: string, flags: { json?: boolean }) => {
      const output = createOutput(flags.json === true);
      await withManager(async (opened) => {
        const outcome = await opened.reload(name);
        const how = outcome.inPlace ? `reloaded in place (pid ${outcome.view.pid}, version ${outcome.version})` : 'restarted (not a running livemod service: no in-place reload)';
        output.result({ ...outcome.view, inPlace: outcome.inPlace, version: outcome.version ?? null }, `[livemod service] ${name} ${how}`);
      });
    });

  service
    .command('remove')
    .description('stop a service and forget it (its log files stay)')
    .argument('<name>')
    .option('--json', 'print {"removed": NAME}')
    .action(async (name: string, flags: { json?: boolean }) => {
      const output = createOutput(flags.json === true);
      await withManager(async (opened) => {
        await opened.remove(name);
        output.result({ removed: name }, `[livemod service] removed ${name}`);
      });
    });

  service
    .command('list')
    .description('every service with its verified state')
    .option('--json', 'print a JSON array')
    .action(async (flags: { json?: boolean }) => {
      const output = createOutput(flags.json === true);
      await withManager(async (opened) => {
        const views = opened.list();
        output.result(views, table(views));
      });
    });

  service
    .command('status')
    .description("one service: verified state, pid, restarts, last exit, logs; a live app's running version and last swap")
    .argument('<name>')
    .option('--json', 'print the service as JSON')
    .action(async (name: string, flags: { json?: boolean }) => {
      const output = createOutput(flags.json === true);
      await withManager(async (opened) => {
        const view = await opened.status(name);
        output.result(view, details(view));
        if (view.state !== 'running') process.exitCode = 3;
      });
    });

  service
    .command('logs')
    .description("print a service's last log lines (stdout, then stderr); -f follows them")
    .argument('<name>')
    .option('-n, --lines <n>', 'how many lines of each', '20')
    .option('-f, --follow', 'keep printing new lines until interrupted')
    .action(async (name: string, flags: { lines: string; follow?: boolean }) => {
      const count = Number(flags.lines);
      if (!/^\d+$/.test(flags.lines) || count > 100_000) throw usage(`--lines ${JSON.stringify(flags.lines.slice(0, 20))} is not a line count (0–100000)`);
      const { lastLines, follow } = await import('../service/index.ts');
      const view = await withManager((opened) => opened.status(name));
      const files = view.stderr === view.stdout ? [view.stdout] : [view.stdout, view.stderr];
      const label = (path: string): string => (files.length === 1 ? '' : path === view.stdout ? 'out | ' : 'err | ');
      const ends = new Map<string, number>();
      for (const file of files) {
        const { lines, end } = lastLines(file, count, !flags.follow);
        ends.set(file, end);
        for (const line of lines) process.stdout.write(`${label(file)}${line}\n`);
      }
      if (flags.follow) {
        // From where the last lines ended: a line written meanwhile is neither lost nor printed twice.
        const stop = follow(files, (file, line) => process.stdout.write(`${label(file)}${line}\n`), undefined, ends);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        stop();
      }
    });
}

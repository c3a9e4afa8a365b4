import type { Command } from 'commander';
import { parseDuration, usage } from './options.ts';
import { createOutput } from './output.ts';
import { inert, quoted } from '../text.ts';

interface FleetFlags {
  cluster?: string;
  app?: string;
  wait: string;
  json?: boolean;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function registerFleet(program: Command): void {
  program
    .command('fleet')
    .description('the fleet view: every server on the broker (origins and replicas) with its version, its channel clients and its memory, summed per app')
    .option('--cluster <url>', 'the broker the servers share, nats://HOST:PORT or redis://HOST:PORT (default: env LIVEMOD_CLUSTER)')
    .option('--app <name>', 'only the servers of this app')
    .option('--wait <duration>', 'how long to collect answers', '1s')
    .option('--json', 'print the view as one JSON document')
    .addHelpText('after', '\nExample:\n  livemod fleet --cluster nats://127.0.0.1:4222\n\nServers answer for themselves: the view is what they claim, for an operator; nothing served depends on it.')
    .action(async (flags: FleetFlags) => {
      const output = createOutput(flags.json === true);
      const url = flags.cluster ?? process.env.LIVEMOD_CLUSTER;
      if (!url) throw usage('fleet needs the broker: --cluster nats://HOST:PORT (or env LIVEMOD_CLUSTER)');
      const waitMs = parseDuration('--wait', flags.wait);
      if (waitMs > 60_000) throw usage(`--wait ${inert(flags.wait, 40)} is over a minute; servers answer within milliseconds, so a second or two is plenty`);
      const { connectBroker, gatherFleet } = await import('../cluster/index.ts');
      const broker = await connectBroker(url, { name: `livemod fleet pid ${process.pid}` });
      try {
        const view = await gatherFleet(broker, { ...(flags.app !== undefined ? { app: flags.app } : {}), waitMs });
        const lines = [`${view.servers} server${view.servers === 1 ? '' : 's'} on ${view.broker}, ${view.clients} channel client${view.clients === 1 ? '' : 's'}`];
        for (const app of view.apps) {
          const versions = Object.entries(app.versions).map(([version, servers]) => `${version} on ${servers}`).join(', ');
          lines.push(`app ${quoted(app.app)}: ${app.clients} clients; versions ${versions}`);
          for (const server of app.servers) lines.push(`  ${server.role.padEnd(7)} ${inert(server.url, 200)}  version ${server.version ?? 'none'}  ${server.clients} clients  ${megabytes(server.rssBytes)}  pid ${server.pid} on ${inert(server.host, 60)}`);
        }
        if (view.ignored > 0) lines.push(`(${view.ignored} answer${view.ignored === 1 ? '' : 's'} that were not a livemod server's ignored)`);
        output.result(view, lines.join('\n'));
      } finally {
        await broker.close();
      }
    });
}

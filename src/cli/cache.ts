import type { Command } from 'commander';
import { parseRemoteTarget } from '../client/index.ts';
import { formatAge, formatBytes } from '../format.ts';
import { normaliseOrigin, openStore, type Store } from '../store/index.ts';
import { quoted } from '../text.ts';
import { createOutput } from './output.ts';

interface CacheFlags {
  cache?: string;
  json?: boolean;
  dryRun?: boolean;
}

function open(flags: CacheFlags): Store {
  return openStore(flags.cache ? { dir: flags.cache } : {});
}

export function registerCache(program: Command): void {
  const cache = program
    .command('cache')
    .description('inspect and maintain the store: the verified, content-addressed cache shared by every livemod process')
    .addHelpText('after', '\nThe store lives in $LIVEMOD_CACHE, else $XDG_CACHE_HOME/livemod, else ~/.cache/livemod.');
  const common = (command: Command): Command => command.option('--cache <dir>', 'store folder (default: env LIVEMOD_CACHE, else the user cache directory)').option('--json', 'print the result as JSON');

  common(cache.command('ls').description('list the origins in the store with their versions, and the blob count and size')).action((flags: CacheFlags) => {
    const output = createOutput(flags.json === true);
    const store = open(flags);
    const listing = store.list();
    const now = Date.now();
    const lines = [`${store.dir}: ${listing.blobs} blobs, ${formatBytes(listing.bytes)}${listing.damaged ? `, ${listing.damaged} damaged entries` : ''}`];
    for (const origin of listing.origins) {
      lines.push(`  ${origin.origin}  ${quoted(origin.name)} version ${origin.version}, ${origin.modules} modules, ${formatBytes(origin.bytesNeeded)}, confirmed ${formatAge(now - origin.checkedAt)} ago${origin.missing ? `, ${origin.missing} blobs not fetched (modules no run has needed yet, fetched when first needed)` : ''}`);
    }
    if (listing.origins.length === 0) lines.push('  (no origins yet: `livemod run <url>` fills it)');
    output.result({ dir: store.dir, ...listing }, lines.join('\n'));
  });

  common(cache.command('verify').description('re-hash every blob and stored manifest, remove corrupt ones (the next run refetches them), check each origin has what it needs, and have the next start hash its run pack again')).action((flags: CacheFlags) => {
    const output = createOutput(flags.json === true);
    const store = open(flags);
    const report = store.verify();
    const incomplete = report.incomplete.map((item) => `${item.origin} has ${item.missing.length} blobs not in the store`);
    output.result({ dir: store.dir, ...report }, `[livemod cache] checked ${report.checked} blobs: ${report.corrupt.length} corrupt (removed)${report.repaired.length ? `, ${report.repaired.length} repaired` : ''}${incomplete.length ? `; ${incomplete.join('; ')} (only what runs is fetched: a run fetches what it needs of them)` : ''}`);
    if (report.corrupt.length > 0) process.exitCode = 1;
  });

  common(
    cache
      .command('forget')
      .description("remove one origin's record (its last manifest, version floor and app), so the next run from it is a cold start")
      .argument('<origin>', 'the snapshot base URL, as `cache ls` and error messages name it (e.g. http://127.0.0.1:7070/)'),
  ).action((url: string, flags: CacheFlags) => {
    const output = createOutput(flags.json === true);
    const store = open(flags);
    const origin = normaliseOrigin(parseRemoteTarget(url));
    const forgotten = store.forgetOrigin(origin);
    output.result({ dir: store.dir, origin, forgotten }, forgotten ? `[livemod cache] forgot ${origin}: the next run from it starts cold` : `[livemod cache] nothing recorded for ${origin} in ${store.dir}; \`livemod cache ls\` lists the origins`);
  });

  common(cache.command('prune').description('remove blobs (files and packs) and laid-out version and package folders the newest manifest of each origin (or a running program) does not need, and local build cache files idle for 30 days').option('--dry-run', 'only report what would be removed')).action((flags: CacheFlags) => {
    const output = createOutput(flags.json === true);
    const store = open(flags);
    const report = store.prune({ dryRun: flags.dryRun === true });
    output.result({ dir: store.dir, ...report }, `[livemod cache] ${report.dryRun ? 'would remove' : 'removed'} ${report.removed} blobs (${formatBytes(report.freedBytes)}) and ${report.folders.removed} laid-out folders, kept ${report.kept} blobs and ${report.folders.kept} folders${report.young ? `, left ${report.young} recent blobs a running sync may need` : ''}${report.builds ? `; ${report.builds} idle local build cache files` : ''}`);
  });
}

// One start-up of bench/startup.ts, run as a fresh process. The bench runs it as JavaScript
// (transformed once into bench/out/): a .ts entry would make Node start its type stripper
// (about 30 ms) in every case, including the ones that never load TypeScript. It statically
// imports only Node builtins, so every case pays the same for it, and livemod's own code is
// loaded (and timed) only by the livemod cases, as a user's two-line bootstrap would load it.
//   native <run file>                                      import run.ts / run.js with Node's loader
//   livemod <livemod entry> <url> <key> <cache> [offline]  connect through the store, then app.import('run.ts')
// (the entry is what `import 'livemod'` resolves to: the package's compiled dist/index.js)
// The tree's run module prints {"result": …}; this script then prints one JSON line of timings,
// each a performance.now() reading (ms since the process started):
//   firstLine  this script's first line ran (Node's own start-up is everything before it)
//   loaded     livemod is loaded (livemod only)
//   synced     connect() returned: manifest checked, blobs in the store (livemod only)
//   done       the program's main() returned and printed
import { pathToFileURL } from 'node:url';
import type * as Livemod from '../src/index.ts';

const firstLine = performance.now();
const [mode, ...args] = process.argv.slice(2);

if (mode === 'native') {
  await import(pathToFileURL(args[0]!).href);
  const done = performance.now();
  process.stdout.write(`${JSON.stringify({ firstLine, done })}\n`);
} else if (mode === 'livemod') {
  const [entry, url, publicKey, cache, offline] = args as [string, string, string, string, string | undefined];
  const { connect } = (await import(pathToFileURL(entry).href)) as typeof Livemod;
  const loaded = performance.now();
  const requests: { kind: string; status: number | null }[] = [];
  const notices: string[] = [];
  const app = await connect(url, {
    publicKey,
    cache,
    offline: offline === 'offline',
    onRequest: (event) => requests.push({ kind: event.kind, status: event.status }),
    notice: (line) => notices.push(line),
  });
  const synced = performance.now();
  await app.import('run.ts');
  const done = performance.now();
  await app.close();
  process.stdout.write(`${JSON.stringify({ firstLine, loaded, synced, done, from: app.from, requests, notices })}\n`);
} else {
  process.stderr.write(`usage: startup-child native <run file> | livemod <livemod entry> <url> <public key> <cache dir> [offline]\n`);
  process.exitCode = 2;
}

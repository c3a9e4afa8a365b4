// A live livemod app as a child process, for the file-driven memory runs: the same program and
// protocol as the other tools' children (app.ts), so its heap is measured the same way.
//   node --expose-gc bench/swap/livemod-host.ts folder <dir>
//   node --expose-gc bench/swap/livemod-host.ts server <url> <publicKey> <cacheDir>
import { connect, openFolder, type App } from '../../src/client/index.ts';
import { answerHeap, reportValue } from './report.ts';

const [mode, ...args] = process.argv.slice(2);
const notice = (line: string): void => void process.stderr.write(`${line}\n`);
let app: App;
if (mode === 'folder') {
  app = await openFolder(args[0]!, { live: true, logSwaps: false, notice });
} else if (mode === 'server') {
  app = await connect(args[0]!, { publicKey: args[1]!, cache: args[2]!, live: true, notice });
} else {
  throw new Error(`usage: livemod-host.ts folder <dir> | server <url> <publicKey> <cacheDir>`);
}
const main = await app.import('main.js');
const call = main.call as () => number;
app.on('swap', (record) => {
  if (record.status === 'applied') reportValue(call());
});
// The registry says which replaced versions something still holds (after the collections).
answerHeap(() => ({ retainedVersions: app.registry.retainedVersions().length }));
reportValue(call());

// The built-in example: `npm start` serves this folder and runs one long-lived client of it.
// Edit lib/greet.ts while it runs: the client swaps the new version in place, and the tick
// count goes on — it lives in lib/counter.ts, which an edit of greet.ts does not re-run.
// `-- --ticks N` stops after N ticks.
import { hostname } from 'node:os';
import { greet } from 'hello-livemod/greet';
import { count, tick } from './lib/counter';

const at = process.argv.indexOf('--ticks');
const ticks = at === -1 ? Infinity : Number(process.argv[at + 1]);

function show(): void {
  tick();
  console.log(`${greet(hostname())} (tick ${count})`);
  if (count >= ticks) clearInterval(timer);
}

const timer = setInterval(show, 1000);
show();
// Edited itself, this module re-runs in place: the new version starts its own timer, and this
// one stops once the new version is running.
import.meta.hot?.dispose(() => clearInterval(timer));

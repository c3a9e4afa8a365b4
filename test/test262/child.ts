// One test in one fresh process (so no test sees another's globals, registry or module map):
// the host hooks, the harness as global scripts, then the test as a module entry — through
// livemod (`openFolder` + `app.import()`) or through Node's own loader (the reference). It
// reports what it observed over IPC and exits; judge.ts decides what that means.
import module from 'node:module';
import { readFileSync } from 'node:fs';
import { sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { installHost } from './host.ts';
import { describeThrown, type Job, type Outcome, type ThrownError } from './outcome.ts';
import type { openFolder as OpenFolder } from '../../src/client/index.ts';

// Tests replace globals (returns-promise.js sets `Promise` to a throwing function): what runs
// after the test uses the originals.
const { Promise: SafePromise, setImmediate: safeSetImmediate } = globalThis;

const job = JSON.parse(process.argv[2] ?? '') as Job;

const printed: string[] = [];
const uncaught: ThrownError[] = [];
const unhandled: ThrownError[] = [];
let asyncDone: () => void = () => {};
const asyncSettled = new SafePromise<void>((resolve) => (asyncDone = resolve));
let reported = false;

function report(outcome: Outcome): void {
  if (reported) return;
  reported = true;
  // Exit at once once the runner has it: a test may leave timers or handles behind.
  process.send!(outcome, () => process.exit(0));
}

installHost((line) => {
  printed.push(line);
  if (line.startsWith('Test262:AsyncTestComplete') || line.startsWith('Test262:AsyncTestFailure')) asyncDone();
});
// Recorded, not fatal, so the outcome still reaches the runner with the error's text.
process.on('uncaughtException', (error) => uncaught.push(describeThrown(error)));
process.on('unhandledRejection', (reason) => unhandled.push(describeThrown(reason)));

/**
 * Node picks CommonJS for a `.js` file outside a `"type": "module"` package unless it sees
 * import/export syntax; test262's folder has no package.json, so the reference would run
 * many tests (every script-goal one) as CommonJS. The test's files are modules, as under livemod.
 */
function forceModuleGoal(suiteDir: string): void {
  if (typeof module.registerHooks !== 'function') throw new Error('[test262] the node host needs module.registerHooks (Node ≥ 22.15)');
  const inside = pathToFileURL(suiteDir + sep).href;
  module.registerHooks({
    load(url, context, nextLoad) {
      if (url.startsWith(inside) && url.endsWith('.js')) return nextLoad(url, { ...context, format: 'module' });
      return nextLoad(url, context);
    },
  });
}

async function prepare(): Promise<() => Promise<unknown>> {
  if (job.host === 'livemod') {
    const { openFolder } = (await import(job.livemod)) as { openFolder: typeof OpenFolder };
    // Every file a module, as forceModuleGoal makes them for Node: the suite's folder has no package.json.
    return async () => (await openFolder(job.file, { build: { commonjs: false } })).import();
  }
  forceModuleGoal(job.suiteDir);
  const url = pathToFileURL(job.file).href;
  return () => import(url);
}

function evaluateHarness(): boolean {
  for (const file of job.harness) {
    try {
      vm.runInThisContext(readFileSync(file, 'utf8'), { filename: file });
    } catch (error) {
      report({ settled: false, error: null, uncaught: [], unhandled: [], printed, harnessError: `${file}: ${describeThrown(error).detail}` });
      return false;
    }
  }
  return true;
}

async function main(): Promise<void> {
  const run = await prepare();
  if (!evaluateHarness()) return;
  // An async test whose promise chain just stops leaves nothing to wait for: report it then.
  let settled = false;
  process.on('beforeExit', () => report({ settled, error: null, uncaught, unhandled, printed }));
  let error: ThrownError | null = null;
  try {
    await run();
  } catch (thrown) {
    error = describeThrown(thrown);
  }
  settled = true;
  if (job.async && error === null) await asyncSettled;
  // One macrotask turn: rejections left unhandled by the test's last microtasks are reported by then.
  await new SafePromise((resolve) => safeSetImmediate(resolve));
  report({ settled, error, uncaught, unhandled, printed });
}

await main();

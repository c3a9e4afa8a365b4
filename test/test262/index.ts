// The test262 runner's only door, used by `npm run test262` (run.ts) and by the node:test subset
// (test/test262.test.ts): options in, every test run on every host in its own process, each
// result judged by INTERPRETING.md's rules and then against the host's expected-failures list.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { judge } from './judge.ts';
import { entriesOf, expectedFailuresFile, LIVEMOD_FEATURES_FILE, readList, SKIP_FEATURES_FILE } from './lists.ts';
import type { Host, Job } from './outcome.ts';
import { mapLimit, runChild, type ChildResult } from './pool.ts';
import { listTests, REPO_ROOT, selected, suiteDir, type Goal, type TestCase } from './suite.ts';

export { HOSTS, type Host } from './outcome.ts';
export { suiteDir, suiteExists } from './suite.ts';

export interface SuiteOptions {
  /** The test262 checkout: its `test/` and `harness/` folders. */
  readonly dir: string;
  readonly hosts: readonly Host[];
  /** Path prefixes (`test/language/module-code/namespace/`); none runs everything. */
  readonly prefixes: readonly string[];
  /** Path prefixes left out of what `prefixes` selects. */
  readonly exclude: readonly string[];
  readonly jobs: number;
  readonly timeoutMs: number;
  /** The Node binary each test's process runs on. */
  readonly node: string;
  readonly onResult?: (result: TestResult, done: number, total: number) => void;
}

export function resolveOptions(options: Partial<SuiteOptions> = {}): Readonly<SuiteOptions> {
  const resolved: SuiteOptions = {
    dir: options.dir ?? suiteDir(),
    hosts: options.hosts ?? ['livemod'],
    prefixes: options.prefixes ?? [],
    exclude: options.exclude ?? [],
    jobs: options.jobs ?? 2,
    timeoutMs: options.timeoutMs ?? 10_000,
    // LIVEMOD_NODE lets CI run the same suite on another supported Node without a second runner.
    node: options.node ?? (process.env.LIVEMOD_NODE || process.execPath),
    ...(options.onResult ? { onResult: options.onResult } : {}),
  };
  if (!Number.isInteger(resolved.jobs) || resolved.jobs < 1) throw new Error(`[test262] jobs must be a positive integer, got ${resolved.jobs}`);
  if (!(resolved.timeoutMs > 0)) throw new Error(`[test262] the timeout must be positive, got ${resolved.timeoutMs} ms`);
  return Object.freeze(resolved);
}

export type Status = 'pass' | 'fail' | 'skip';

export interface TestResult {
  readonly path: string;
  readonly host: Host;
  readonly goal: Goal;
  readonly status: Status;
  /** Why it failed, or why it was skipped; empty for a pass. */
  readonly error: string;
  readonly durationMs: number;
}

export interface HostJudgement {
  readonly host: Host;
  readonly listFile: string;
  /** Failed and not in the list. */
  readonly unexpectedFailures: readonly TestResult[];
  /** Passed although the list says it fails: the entry is out of date. */
  readonly unexpectedPasses: readonly TestResult[];
  /** Listed paths within the run's filter that are not tests of this suite (any more). */
  readonly unknown: readonly string[];
}

export interface SuiteRun {
  readonly options: Readonly<SuiteOptions>;
  readonly nodeVersion: string;
  readonly tests: readonly TestCase[];
  readonly results: readonly TestResult[];
  readonly judgements: readonly HostJudgement[];
  readonly ok: boolean;
  readonly wallMs: number;
}

function newestFile(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) latest = Math.max(latest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return latest;
}

/** dist/ loads ~3× faster than stripping types from src/, but only a build newer than every source may stand in for it (the rule bin/livemod.js follows). */
export function livemodEntry(): string {
  const dist = join(REPO_ROOT, 'dist', 'index.js');
  const src = join(REPO_ROOT, 'src');
  const stale = !existsSync(dist) || newestFile(src) > statSync(dist).mtimeMs;
  return stale ? join(src, 'index.ts') : dist;
}

/** 24 for `v24.21.0`. */
export function majorOf(version: string): number {
  return Number(/^v?(\d+)/.exec(version)?.[1] ?? Number.NaN);
}

export function nodeVersion(node: string): string {
  const result = spawnSync(node, ['--version'], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`[test262] ${node} --version failed: ${result.error?.message ?? result.stderr.trim()}`);
  return result.stdout.trim();
}

/** Features no supported Node can run, each with its reason (skip-features.txt). */
export function skipFeatures(): Map<string, string> {
  return entriesOf(readList(SKIP_FEATURES_FILE));
}

/** Features livemod runs although Node cannot (livemod-features.txt): the node host skips them. */
export function livemodFeatures(): Map<string, string> {
  return entriesOf(readList(LIVEMOD_FEATURES_FILE));
}

function harnessFor(test: TestCase, dir: string): string[] {
  // `raw` tests run exactly as written; async ones report through $DONE.
  const names = test.flags.includes('raw') ? [] : ['assert.js', 'sta.js', ...(test.async ? ['doneprintHandle.js'] : []), ...test.includes];
  return [...new Set(names)].map((name) => join(dir, 'harness', name));
}

function verdictOf(test: TestCase, result: ChildResult, timeoutMs: number): { passed: boolean; error: string } {
  switch (result.kind) {
    case 'outcome':
      return judge(test, result.outcome);
    case 'timeout':
      return { passed: false, error: `timed out after ${timeoutMs / 1000} s` };
    case 'crash':
      return { passed: false, error: result.detail };
    default:
      return result satisfies never;
  }
}

export function judgeHost(host: Host, results: readonly TestResult[], tests: readonly TestCase[], prefixes: readonly string[], exclude: readonly string[] = [], nodeMajor: number | null = null, listFile: string = expectedFailuresFile(host)): HostJudgement {
  const expected = entriesOf(readList(listFile), nodeMajor);
  const own = results.filter((result) => result.host === host);
  const known = new Set(tests.map((test) => test.path));
  return {
    host,
    listFile,
    unexpectedFailures: own.filter((result) => result.status === 'fail' && !expected.has(result.path)),
    unexpectedPasses: own.filter((result) => result.status === 'pass' && expected.has(result.path)),
    unknown: [...expected.keys()].filter((path) => selected(path, prefixes) && !exclude.some((prefix) => path.startsWith(prefix)) && !known.has(path)),
  };
}

export async function runSuite(partial: Partial<SuiteOptions> = {}): Promise<SuiteRun> {
  const options = resolveOptions(partial);
  const started = performance.now();
  const version = nodeVersion(options.node);
  const tests = listTests(options.dir, options.prefixes).filter((test) => !options.exclude.some((prefix) => test.path.startsWith(prefix)));
  const skips = skipFeatures();
  const livemodOnly = livemodFeatures();
  const livemod = livemodEntry();
  const work = tests.flatMap((test) => options.hosts.map((host) => ({ test, host })));
  let done = 0;
  const results = await mapLimit(work, options.jobs, async ({ test, host }): Promise<TestResult> => {
    const skippedFor = test.features.find((feature) => skips.has(feature) || (host === 'node' && livemodOnly.has(feature)));
    let result: TestResult;
    if (skippedFor !== undefined) {
      result = { path: test.path, host, goal: test.goal, status: 'skip', error: `feature ${skippedFor}: ${skips.get(skippedFor) ?? livemodOnly.get(skippedFor)}`, durationMs: 0 };
    } else {
      const job: Job = { host, file: test.file, harness: harnessFor(test, options.dir), async: test.async, livemod, suiteDir: options.dir };
      let { result: child, durationMs } = await runChild(job, options);
      // Once more after a timeout: a hang times out every time, a test starved by a burst of load on the machine rarely twice.
      if (child.kind === 'timeout') ({ result: child, durationMs } = await runChild(job, options));
      const verdict = verdictOf(test, child, options.timeoutMs);
      result = { path: test.path, host, goal: test.goal, status: verdict.passed ? 'pass' : 'fail', error: verdict.error, durationMs };
    }
    options.onResult?.(result, ++done, work.length);
    return result;
  });
  const judgements = options.hosts.map((host) => judgeHost(host, results, tests, options.prefixes, options.exclude, majorOf(version)));
  const ok = judgements.every((j) => j.unexpectedFailures.length === 0 && j.unexpectedPasses.length === 0 && j.unknown.length === 0);
  return { options, nodeVersion: version, tests, results, judgements, ok, wallMs: Math.round(performance.now() - started) };
}

/** The folder a result is tabled under: the test's own, without the `test/language/` every path shares. */
export function directoryOf(path: string): string {
  return dirname(path).replace(/^test\/language\//, '');
}

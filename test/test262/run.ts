// `npm run test262 [-- options] [path prefix…]`: see --help. Exit codes: 0 when every result
// matches the expected-failures lists, 1 when one does not, 2 on a usage error.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { HOSTS, runSuite, suiteDir, suiteExists, type Host, type TestResult } from './index.ts';
import { formatReport, updateExpectedFiles, writeJson } from './report.ts';
import { normalizePrefix, REPO_ROOT } from './suite.ts';

const HELP = `Usage: npm run test262 -- [options] [path prefix…]

Runs test262's module tests (TEST262_DIR, default ../shared/test262) through livemod, one
process per test, and judges each result against test/test262/expected-failures.txt.

Path prefixes select tests, e.g. test/language/module-code/namespace/ (test/ may be left off).

Options:
  --host livemod|node   which host runs the tests (default livemod; node: Node's own loader, the reference)
  --compare             run both hosts and print both pass rates and their difference
  --jobs N              tests run at once (default 2)
  --timeout SECONDS     per test; a timeout is a failure (default 10)
  --json FILE           where to write per-test results (default test262-results.json)
  --update-expected     rewrite the expected-failures list(s) from this run: entries for tests
                        that now pass are removed, new failures added with "NEW:" reasons
  -h, --help            this text

Environment: LIVEMOD_NODE runs each test's process on that Node binary instead of this one.`;

function usage(message: string): never {
  process.stderr.write(`[test262] ${message}\n\n${HELP}\n`);
  process.exit(2);
}

function positiveNumber(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!(number > 0)) usage(`--${name} needs a positive number, got "${value}"`);
  return number;
}

const OPTIONS = {
  host: { type: 'string' },
  compare: { type: 'boolean' },
  jobs: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'string' },
  'update-expected': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parse(): ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>> {
  try {
    return parseArgs({ options: OPTIONS, allowPositionals: true });
  } catch (error) {
    usage((error as Error).message);
  }
}

const { values, positionals } = parse();
if (values.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
if (values.host !== undefined && !HOSTS.includes(values.host as Host)) usage(`--host must be ${HOSTS.join(' or ')}, got "${values.host}"`);
if (values.compare && values.host !== undefined) usage('--compare runs both hosts; leave out --host');

const dir = suiteDir();
if (!suiteExists(dir)) usage(`no test262 suite at ${dir} (its test/ and harness/ folders); set TEST262_DIR`);

const hosts: Host[] = values.compare ? ['livemod', 'node'] : [(values.host as Host | undefined) ?? 'livemod'];
const jobs = positiveNumber(values.jobs, 'jobs');
const timeout = positiveNumber(values.timeout, 'timeout');
if (jobs !== undefined && !Number.isInteger(jobs)) usage(`--jobs needs a whole number, got "${values.jobs}"`);

// A counter on a terminal; in a log (CI), a line every 10% so a slow run still shows it is alive.
const progress = (result: TestResult, done: number, total: number): void => {
  if (process.stderr.isTTY) {
    const last = result.status === 'fail' ? ` fail ${result.path}` : '';
    process.stderr.write(`\r\x1b[K[test262] ${done}/${total}${last}`.slice(0, 120));
    if (done === total) process.stderr.write('\r\x1b[K');
  } else if (done === total || done % Math.max(1, Math.ceil(total / 10)) === 0) {
    process.stderr.write(`[test262] ${done}/${total}\n`);
  }
};

const run = await runSuite({
  dir,
  hosts,
  prefixes: positionals.map((prefix) => normalizePrefix(prefix, dir)),
  ...(jobs !== undefined ? { jobs } : {}),
  ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}),
  onResult: progress,
});

// A mistyped prefix would otherwise "pass" with nothing run.
if (run.results.length === 0) usage(`no test matches ${positionals.map((prefix) => `"${prefix}"`).join(', ')}`);

const jsonFile = values.json !== undefined ? resolve(values.json) : resolve(REPO_ROOT, 'test262-results.json');
writeJson(run, jsonFile);
process.stdout.write(formatReport(run));
process.stderr.write(`[test262] results: ${jsonFile}\n`);
if (values['update-expected']) {
  for (const message of updateExpectedFiles(run)) process.stderr.write(`${message}\n`);
  process.exitCode = 0;
} else {
  process.exitCode = run.ok ? 0 : 1;
}

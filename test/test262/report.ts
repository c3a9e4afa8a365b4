// What a run prints and writes: a table per directory, the module-goal and script-goal totals,
// the judgement against each host's expected-failures list, the closing `N passed, N failed,
// N skipped` line, and the JSON results.
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { directoryOf, majorOf, type HostJudgement, type SuiteRun, type TestResult } from './index.ts';
import { expectedFailuresFile, readList, updateExpected, writeList } from './lists.ts';
import type { Host } from './outcome.ts';
import { REPO_ROOT } from './suite.ts';

interface Tally {
  tests: number;
  passed: number;
  failed: number;
  skipped: number;
}

function tally(results: readonly TestResult[]): Tally {
  const counts: Tally = { tests: results.length, passed: 0, failed: 0, skipped: 0 };
  for (const result of results) {
    if (result.status === 'pass') counts.passed++;
    else if (result.status === 'fail') counts.failed++;
    else counts.skipped++;
  }
  return counts;
}

/** Of the tests that ran: a skipped test is neither passed nor failed. */
function rate(counts: Tally): number | null {
  const ran = counts.passed + counts.failed;
  return ran === 0 ? null : (100 * counts.passed) / ran;
}

const percent = (value: number | null): string => (value === null ? '—' : `${value.toFixed(1)}%`);
const signed = (value: number | null): string => (value === null ? '—' : `${value >= 0 ? '+' : ''}${value.toFixed(1)}`);

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => row[column]!.length)));
  // The first column is a name (left-aligned); the rest are numbers (right-aligned).
  const line = (row: readonly string[]): string => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

function groupBy(results: readonly TestResult[], key: (result: TestResult) => string): Map<string, TestResult[]> {
  const groups = new Map<string, TestResult[]>();
  for (const result of results) {
    const name = key(result);
    const group = groups.get(name);
    if (group) group.push(result);
    else groups.set(name, [result]);
  }
  return new Map([...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function singleHostTables(results: readonly TestResult[]): string {
  const row = (name: string, group: readonly TestResult[]): string[] => {
    const counts = tally(group);
    return [name, String(counts.tests), String(counts.passed), String(counts.failed), String(counts.skipped), percent(rate(counts))];
  };
  const header = ['directory', 'tests', 'passed', 'failed', 'skipped', 'pass %'];
  const dirs = [...groupBy(results, (result) => directoryOf(result.path))].map(([name, group]) => row(name, group));
  const goals = [...groupBy(results, (result) => `${result.goal}-goal`)].map(([name, group]) => row(name, group));
  return `${table(header, dirs)}\n\n${table(['goal', ...header.slice(1)], [...goals, row('all', results)])}`;
}

function compareTables(results: readonly TestResult[], hosts: readonly Host[]): string {
  const row = (name: string, group: readonly TestResult[]): string[] => {
    const rates = hosts.map((host) => rate(tally(group.filter((result) => result.host === host))));
    const counts = hosts.map((host) => tally(group.filter((result) => result.host === host)));
    const diff = rates[0] != null && rates[1] != null ? rates[0] - rates[1] : null;
    return [name, String(counts[0]!.tests), String(counts[0]!.skipped), ...hosts.flatMap((_, index) => [String(counts[index]!.passed), percent(rates[index]!)]), signed(diff)];
  };
  const header = ['directory', 'tests', 'skipped', ...hosts.flatMap((host) => [`${host} passed`, `${host} %`]), `${hosts[0]} − ${hosts[1]}`];
  const dirs = [...groupBy(results, (result) => directoryOf(result.path))].map(([name, group]) => row(name, group));
  const goals = [...groupBy(results, (result) => `${result.goal}-goal`)].map(([name, group]) => row(name, group));
  return `${table(header, dirs)}\n\n${table(['goal', ...header.slice(1)], [...goals, row('all', results)])}`;
}

function judgementText(judgement: HostJudgement, failed: number): string {
  const list = relative(REPO_ROOT, judgement.listFile);
  const lines: string[] = [];
  if (judgement.unexpectedFailures.length > 0) {
    lines.push(`[test262 ${judgement.host}] ${judgement.unexpectedFailures.length} unexpected failure(s), not in ${list}:`);
    for (const result of judgement.unexpectedFailures) lines.push(`  FAIL ${result.path}\n       ${result.error.split('\n')[0]}`);
  }
  if (judgement.unexpectedPasses.length > 0) {
    lines.push(`[test262 ${judgement.host}] ${judgement.unexpectedPasses.length} test(s) passed but are listed as expected failures in ${list}; remove them (or run with --update-expected):`);
    for (const result of judgement.unexpectedPasses) lines.push(`  PASS ${result.path}`);
  }
  if (judgement.unknown.length > 0) {
    lines.push(`[test262 ${judgement.host}] ${judgement.unknown.length} entr(ies) in ${list} name no test of this suite; remove them (or run with --update-expected):`);
    for (const path of judgement.unknown) lines.push(`  ${path}`);
  }
  if (lines.length === 0) lines.push(`[test262 ${judgement.host}] as expected: ${failed === 0 ? 'no failures' : `all ${failed} failure(s) are listed in ${list}`}`);
  return lines.join('\n');
}

export function formatReport(run: SuiteRun): string {
  const { hosts } = run.options;
  const parts = [
    `test262 on ${hosts.join(' and ')}, Node ${run.nodeVersion}, ${run.options.jobs} job(s), ${(run.wallMs / 1000).toFixed(1)} s`,
    hosts.length === 2 ? compareTables(run.results, hosts) : singleHostTables(run.results),
    ...run.judgements.map((judgement) => judgementText(judgement, run.results.filter((r) => r.host === judgement.host && r.status === 'fail').length)),
  ];
  if (hosts.length === 2) {
    for (const host of hosts) {
      const counts = tally(run.results.filter((result) => result.host === host));
      parts.push(`${host}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped (${percent(rate(counts))})`);
    }
  }
  const all = tally(run.results);
  // Alone on the last line, in the plain form CI logs are read for.
  parts.push(`${all.passed} passed, ${all.failed} failed, ${all.skipped} skipped`);
  return `${parts.join('\n\n')}\n`;
}

export function writeJson(run: SuiteRun, file: string): void {
  const document = {
    suite: run.options.dir,
    node: run.nodeVersion,
    hosts: run.options.hosts,
    prefixes: run.options.prefixes,
    jobs: run.options.jobs,
    timeoutMs: run.options.timeoutMs,
    wallMs: run.wallMs,
    ok: run.ok,
    results: run.results.map(({ path, host, goal, status, error, durationMs }) => ({ path, host, goal, status, error, duration: durationMs })),
  };
  writeFileSync(file, `${JSON.stringify(document, null, 2)}\n`);
}

/** Rewrites each host's list from what this run saw; tests the run did not judge keep their entries. */
export function updateExpectedFiles(run: SuiteRun): string[] {
  const messages: string[] = [];
  for (const host of run.options.hosts) {
    const file = expectedFailuresFile(host);
    const before = readList(file);
    const ran = new Map<string, { failed: boolean; error: string }>();
    for (const result of run.results) {
      if (result.host === host && result.status !== 'skip') ran.set(result.path, { failed: result.status === 'fail', error: result.error });
    }
    const unknown = new Set(run.judgements.find((judgement) => judgement.host === host)?.unknown ?? []);
    const after = updateExpected(before, ran, majorOf(run.nodeVersion)).filter((line) => line.kind === 'text' || !unknown.has(line.entry.key));
    writeList(file, after);
    const count = (lines: typeof before): number => lines.filter((line) => line.kind === 'entry').length;
    messages.push(`[test262 ${host}] ${relative(REPO_ROOT, file)}: ${count(before)} → ${count(after)} entries`);
  }
  return messages;
}

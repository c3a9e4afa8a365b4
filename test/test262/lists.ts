// The two hand-kept lists beside the runner, one entry a line, `key  # reason` (an entry may
// name the Node majors it holds on, `key node=24  # reason`, when results differ between Nodes):
// skip-features.txt (features no supported Node can run, so neither host is judged on them)
// and expected-failures*.txt (tests allowed to fail, so a run fails on anything else).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Host } from './outcome.ts';

export const LISTS_DIR: string = fileURLToPath(new URL('./', import.meta.url));

export interface ListEntry {
  readonly key: string;
  readonly reason: string;
  /** Node majors the entry holds on (`node=24,25`); null: every Node. */
  readonly nodes: readonly number[] | null;
}

/** The lines of a list file: entries, and the comments and blank lines between them (kept on rewrite). */
export type ListLine = { readonly kind: 'entry'; readonly entry: ListEntry } | { readonly kind: 'text'; readonly text: string };

export function parseList(text: string, file: string): ListLine[] {
  const lines: ListLine[] = [];
  const seen = new Set<string>();
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trimEnd();
    if (line === '' || line.startsWith('#')) {
      lines.push({ kind: 'text', text: line });
      continue;
    }
    const hash = line.indexOf('#');
    const [key = '', ...conditions] = (hash === -1 ? line : line.slice(0, hash)).trim().split(/\s+/);
    const reason = hash === -1 ? '' : line.slice(hash + 1).trim();
    let nodes: number[] | null = null;
    for (const condition of conditions) {
      const match = /^node=(\d+(?:,\d+)*)$/.exec(condition);
      if (!match) throw new Error(`[test262] ${file}:${index + 1}: "${condition}" is not a condition; the one known is node=N[,N…] (the Node majors the entry holds on)`);
      nodes = match[1]!.split(',').map(Number);
    }
    // A reason is what makes the list reviewable: an entry without one is a mistake, not a shortcut.
    if (!reason) throw new Error(`[test262] ${file}:${index + 1}: "${key}" has no reason; write it as \`${key}  # why\``);
    if (seen.has(key)) throw new Error(`[test262] ${file}:${index + 1}: "${key}" is listed twice`);
    seen.add(key);
    lines.push({ kind: 'entry', entry: { key, reason, nodes } });
  }
  while (lines.length > 0 && lines.at(-1)!.kind === 'text' && (lines.at(-1) as { text: string }).text === '') lines.pop();
  return lines;
}

export function readList(file: string): ListLine[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return parseList(text, file);
}

/** Whether an entry holds on this Node major (null: on any). */
export function appliesOn(entry: ListEntry, nodeMajor: number | null): boolean {
  return entry.nodes === null || nodeMajor === null || entry.nodes.includes(nodeMajor);
}

/** key → reason, for the entries that hold on `nodeMajor` (null: all of them). */
export function entriesOf(lines: readonly ListLine[], nodeMajor: number | null = null): Map<string, string> {
  return new Map(lines.flatMap((line) => (line.kind === 'entry' && appliesOn(line.entry, nodeMajor) ? [[line.entry.key, line.entry.reason] as const] : [])));
}

export function formatList(lines: readonly ListLine[]): string {
  // Not aligned in columns: one longer path would otherwise re-pad, and so re-diff, every line.
  return `${lines.map((line) => (line.kind === 'text' ? line.text : `${line.entry.key}${line.entry.nodes ? ` node=${line.entry.nodes.join(',')}` : ''}  # ${line.entry.reason}`)).join('\n')}\n`;
}

export function writeList(file: string, lines: readonly ListLine[]): void {
  writeFileSync(file, formatList(lines));
}

export const SKIP_FEATURES_FILE: string = `${LISTS_DIR}skip-features.txt`;
/** Features livemod runs although no supported Node can: skipped on the node host only. */
export const LIVEMOD_FEATURES_FILE: string = `${LISTS_DIR}livemod-features.txt`;

/** Each host is judged against its own list: livemod's is the work list, Node's keeps the runner honest. */
export function expectedFailuresFile(host: Host): string {
  return host === 'livemod' ? `${LISTS_DIR}expected-failures.txt` : `${LISTS_DIR}expected-failures.${host}.txt`;
}

/** New entries carry this before their reason, so a provisional reason is easy to find and replace. */
export const PROVISIONAL = 'NEW:';

/**
 * The list after a run: entries for tests that ran and passed are dropped, tests that failed and
 * were not listed are added (reason: the observed error's first line, marked provisional), and
 * everything the run did not judge — other paths, comments, order — is kept as it was. A
 * paragraph (lines between blank lines) whose entries are all gone goes with its comments, so
 * a section heading never outlives its section.
 */
export function updateExpected(lines: readonly ListLine[], ran: ReadonlyMap<string, { failed: boolean; error: string }>, nodeMajor: number | null = null): ListLine[] {
  const listed = entriesOf(lines, nodeMajor);
  // An entry for other Node majors was not judged by this run, whatever its test did here.
  const keep = (line: ListLine): boolean => line.kind === 'text' || !appliesOn(line.entry, nodeMajor) || ran.get(line.entry.key)?.failed !== false;
  const paragraphs: ListLine[][] = [[]];
  for (const line of lines) {
    if (line.kind === 'text' && line.text === '') paragraphs.push([]);
    else paragraphs.at(-1)!.push(line);
  }
  const kept = paragraphs
    .filter((paragraph) => !paragraph.some((line) => line.kind === 'entry') || paragraph.some((line) => line.kind === 'entry' && keep(line)))
    .map((paragraph) => paragraph.filter(keep))
    .filter((paragraph, index) => paragraph.length > 0 || index === 0);
  const added = [...ran]
    .filter(([path, result]) => result.failed && !listed.has(path))
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([path, result]): ListLine => ({ kind: 'entry', entry: { key: path, reason: `${PROVISIONAL} ${firstLine(result.error)}`, nodes: null } }));
  const blank: ListLine = { kind: 'text', text: '' };
  // New entries form a paragraph of their own, to be read and moved under their cause.
  const paragraphsOut = added.length > 0 ? [...kept, added] : kept;
  return paragraphsOut.flatMap((paragraph, index) => (index === 0 ? paragraph : [blank, ...paragraph]));
}

export function firstLine(text: string): string {
  const line = text.split('\n').find((candidate) => candidate.trim() !== '') ?? 'failed';
  // A whole line of a minified stack or a long message would make the list unreadable.
  const clean = line.trim().replace(/\s+/g, ' ');
  return clean.length > 160 ? `${clean.slice(0, 157)}...` : clean;
}

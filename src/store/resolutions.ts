// What Node's resolver answered inside a laid-out package folder (packages/<id>), kept beside its
// node_modules as packages/<id>/resolutions-<signature hash>.json, so a later start answers the same questions
// without asking Node again (runtime/resolutions.ts replays them). A package folder never changes
// once it is in place — its id is the hash of what sits where in it and of its links — so a
// question asked from inside it (parent, specifier, conditions) has the same answer while the
// answer lies inside it too: every place Node looks before that answer is inside the folder.
//
// Like a run pack, a derived cache and never trusted further than the folder it sits in: a
// record that does not parse, or does not hold the signature its name says, is read as empty and
// written again; an answer that would leave the folder is dropped when read. Each Node version
// and set of resolving flags (`signature`) keeps its own record, so two Nodes sharing a store
// (a CI matrix, an upgrade under way) each replay theirs instead of overwriting each other's
// at every start. Prune removes them with their folder.
import { existsSync, readdirSync, realpathSync, statSync, unlinkSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { StoreContext } from './context.ts';
import { readAtMost } from '../read.ts';
import { sha256Hex } from '../snapshot/index.ts';
import { writeAtomic } from './files.ts';

const KIND = 'livemod-resolutions';
/** A record's file name: one per signature. */
const RECORD = /^resolutions-[0-9a-f]{16}\.json$/;
/** Records kept per folder; a new signature past it replaces the one used longest ago. */
const MAX_RECORDS = 8;
/** The one record a folder kept before records were per signature. */
const LEGACY = 'resolutions.json';
/**
 * An answer: a path relative to the folder, inside its node_modules or workspaces (URL path
 * characters only: the URL parser drops tabs and line breaks, so `.\t.` would read as `..`), a
 * newline, and the format Node named (possibly empty).
 */
const ANSWER = /^(?:node_modules|workspaces)\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]+\n[a-z-]*$/;
/** Bounds on a record, so a damaged or hostile file cannot make a start read or keep much. */
const MAX_BYTES = 16 * 1024 * 1024;
const MAX_ENTRIES = 100_000;

export interface PackageResolutions {
  /** The package folder as a file: URL ending in `/`, its real path (Node's answers are real paths). */
  readonly folder: string;
  /** key (parent relative to the folder, specifier, conditions; newline-separated) → answer. */
  readonly entries: Map<string, string>;
  /**
   * Writes these entries, merged with the record on disk (what another process added
   * meanwhile), or in its place (`replace`): atomic, best effort (a read-only store or a folder
   * a prune removed meanwhile keeps no record, and nothing is made again).
   */
  save(entries: ReadonlyMap<string, string>, replace: boolean): void;
}

/** An empty, "." or ".." segment. */
const DOT_SEGMENT = /(?:^|\/)\.{0,2}(?:\/|$)/;

/** Whether `relative` (URL-encoded, as Node's answers are) names a place inside the folder. */
function inside(relative: string): boolean {
  // Nothing encoded (nearly every answer): its characters were checked (ANSWER), only its segments are left to check.
  if (!relative.includes('%')) return !DOT_SEGMENT.test(relative);
  for (const segment of relative.split('/')) {
    if (segment === '') return false;
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return false;
    }
    // The answer's characters were checked (ANSWER): what a segment decodes to must not be a separator or a control character.
    if (decoded === '.' || decoded === '..' || decoded.includes('/') || decoded.includes('\\') || [...decoded].some((char) => char.charCodeAt(0) < 0x20)) return false;
  }
  return true;
}

/**
 * Before a new signature's record: the records used longest ago go while the folder holds
 * MAX_RECORDS (and the one file a store before per-signature records kept). Two processes
 * making room at once may leave one record more or one fewer: a cache, asked of Node again.
 */
function makeRoom(folder: string): void {
  const names = readdirSync(folder);
  if (names.includes(LEGACY)) unlinkQuietly(join(folder, LEGACY));
  const records = names.filter((name) => RECORD.test(name));
  if (records.length < MAX_RECORDS) return;
  const byAge = records.map((name) => {
    try {
      return { name, at: statSync(join(folder, name)).mtimeMs };
    } catch {
      return { name, at: 0 };
    }
  });
  byAge.sort((a, b) => a.at - b.at);
  for (const { name } of byAge.slice(0, records.length - MAX_RECORDS + 1)) unlinkQuietly(join(folder, name));
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Gone already (another process made room too).
  }
}

function readEntries(path: string, signature: string): Map<string, string> {
  const entries = new Map<string, string>();
  let parsed: unknown;
  try {
    // Its size is looked at before it is read.
    const bytes = readAtMost(path, MAX_BYTES);
    if (bytes === null) return entries;
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    // Absent, unreadable or not JSON: empty.
    return entries;
  }
  const record = parsed as { kind?: unknown; signature?: unknown; entries?: unknown } | null;
  if (record === null || typeof record !== 'object' || record.kind !== KIND || record.signature !== signature) return entries;
  const list = record.entries;
  if (list === null || typeof list !== 'object' || Array.isArray(list)) return entries;
  for (const [key, answer] of Object.entries(list as Record<string, unknown>)) {
    if (entries.size >= MAX_ENTRIES) break;
    if (typeof answer !== 'string' || !ANSWER.test(answer) || !inside(answer.slice(0, answer.indexOf('\n')))) continue;
    entries.set(key, answer);
  }
  return entries;
}

/**
 * The resolutions record of the package folder a laid-out version links (`tree`/node_modules),
 * for answers Node gave under `signature` (its version and the flags that change resolution);
 * null when the version carries no packages.
 */
export function packageResolutions(context: StoreContext, tree: string, signature: string): PackageResolutions | null {
  let folderPath: string;
  try {
    folderPath = dirname(realpathSync(join(tree, 'node_modules')));
  } catch {
    return null;
  }
  const path = join(folderPath, `resolutions-${sha256Hex(signature).slice(0, 16)}.json`);
  const entries = readEntries(path, signature);
  // Marked as used (its mtime), so that making room for another signature takes the record used longest ago, not the one written first.
  if (entries.size > 0) {
    try {
      const now = new Date();
      utimesSync(path, now, now);
    } catch {
      // A read-only store: its records are not made room in either.
    }
  }
  return {
    folder: `${pathToFileURL(folderPath).href}/`,
    entries,
    save(entries, replace) {
      // Not into a folder a prune is taking away (a record alone must not look like a laid-out folder).
      if (!existsSync(join(folderPath, 'node_modules'))) return;
      // What another process wrote meanwhile is kept: two starts at once each add their answers.
      const merged = replace ? new Map<string, string>() : readEntries(path, signature);
      for (const [question, answer] of entries) {
        if (merged.size >= MAX_ENTRIES && !merged.has(question)) break;
        merged.set(question, answer);
      }
      const bytes = Buffer.from(JSON.stringify({ kind: KIND, signature, entries: Object.fromEntries(merged) }));
      try {
        if (!existsSync(path)) makeRoom(folderPath);
        writeAtomic(context.tmp, path, bytes, () => {}, false);
      } catch {
        // A cache: the next start asks Node again.
      }
    },
  };
}

// Which files of a folder are modules, read safely: nothing outside the folder (symlinks are
// followed only while they stay inside), nothing over the size limits, no dot folders and no
// node_modules. A file that is left out is reported with its reason, never silently.
import { lstatSync, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { formatBytes } from '../format.ts';
import { readAtMost } from '../read.ts';

export const MODULE_EXTENSIONS: readonly string[] = ['.ts', '.tsx', '.mts', '.js', '.jsx', '.mjs', '.json', '.cjs', '.cts'];
const DECLARATION = /\.d\.[mc]?ts$/;

export interface SkippedFile {
  readonly path: string;
  readonly reason: string;
}

export interface FoundFile {
  /** Module path: posix, relative to the folder. */
  readonly path: string;
  /** Where to read it (a symlink's target inside the folder). */
  readonly file: string;
  readonly size: number;
  readonly mtimeMs: number;
  /** With size and mtime, what a kept build record checks to trust the file unchanged (record.ts). */
  readonly ctimeMs?: number;
  readonly ino?: number;
  /** When it was looked at (before its stat): a record trusts its stat only for changes later than a timestamp tick after this. */
  readonly seenAt?: number;
  /** It has an executable bit (a script the program runs): it travels so. */
  readonly executable?: boolean;
}

export interface FileLimits {
  readonly maxFileBytes: number;
  /** Folders to leave out entirely (absolute, real paths), e.g. the publish output inside the folder. */
  readonly exclude: readonly string[];
}

export function isModuleFile(name: string): boolean {
  return MODULE_EXTENSIONS.some((extension) => name.endsWith(extension)) && !DECLARATION.test(name);
}

function toModulePath(root: string, file: string): string {
  return relative(root, file).split(sep).join('/');
}

function inside(root: string, real: string): boolean {
  return real === root || real.startsWith(root + sep);
}


/**
 * Checks one module file. Returns the file, a skip reason, or null when it is not a module
 * (or is gone). `root` must be a real path.
 */
export function examineFile(root: string, path: string, limits: FileLimits, accept: (path: string) => boolean = isModuleFile): FoundFile | SkippedFile | null {
  const file = join(root, ...path.split('/'));
  // Watch events name paths the first walk never took (inside a symlinked folder, say): every
  // segment is checked again, and the real path, not just the last link, must stay inside.
  if (path.split('/').some((part) => part.startsWith('.') || part === 'node_modules')) return null;
  let stats: Stats;
  let real: string;
  const seenAt = Date.now();
  try {
    // The native call: one syscall, where fs.realpathSync lstats every component in JavaScript.
    real = realpathSync.native(file);
    if (!inside(root, real)) return { path, reason: `${lstatSync(file).isSymbolicLink() ? 'symlink' : 'path through a symlink'} to ${real}, outside the published folder` };
    if (limits.exclude.some((dir) => inside(dir, real))) return null;
    stats = statSync(real);
  } catch {
    return null;
  }
  if (!stats.isFile() || !accept(path)) return null;
  if (stats.size > limits.maxFileBytes) {
    return { path, reason: `${formatBytes(stats.size)} is over the ${formatBytes(limits.maxFileBytes)} per-file limit (raise it with --max-file-size)` };
  }
  return { path, file: real, size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, ino: stats.ino, seenAt, ...((stats.mode & 0o111) !== 0 ? { executable: true } : {}) };
}

/**
 * Every file of the folder that `accept` takes (a posix path relative to it), by the same rules:
 * no dot entries, no node_modules, symlinks only while they stay inside.
 */
export function listFiles(root: string, limits: FileLimits, accept: (path: string) => boolean): { files: FoundFile[]; skipped: SkippedFile[] } {
  const files: FoundFile[] = [];
  const skipped: SkippedFile[] = [];
  const visited = new Set<string>();
  const walk = (dir: string): void => {
    const realDir = realpathSync(dir);
    if (visited.has(realDir) || limits.exclude.includes(realDir)) return;
    visited.add(realDir);
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const full = join(dir, entry.name);
      const path = toModulePath(root, full);
      if (entry.isDirectory()) {
        walk(full);
      } else if (entry.isSymbolicLink()) {
        let real: string;
        try {
          real = realpathSync(full);
        } catch {
          skipped.push({ path, reason: 'broken symlink' });
          continue;
        }
        if (!inside(root, real)) {
          skipped.push({ path, reason: `symlink to ${real}, outside the published folder` });
        } else if (statSync(real).isDirectory()) {
          walk(full);
        } else {
          const found = examineFile(root, path, limits, accept);
          if (found) ('file' in found ? files : skipped).push(found as FoundFile & SkippedFile);
        }
      } else if (entry.isFile() && accept(path)) {
        const found = examineFile(root, path, limits, accept);
        if (found) ('file' in found ? files : skipped).push(found as FoundFile & SkippedFile);
      }
    }
  };
  walk(root);
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files, skipped };
}

/**
 * Reads a module file, at most `maxBytes`: the size checked when it was found may have grown
 * since, so the limit is applied to what is read, from one open file. Null when it grew past it.
 */
export function readModuleFile(file: string, maxBytes: number): Buffer | null {
  return readAtMost(file, maxBytes);
}

// Runs one tree twice — natively through Node's own ESM loader, and through livemod's registry
// over a local build — so a test can hold livemod to whatever Node does.
import { inspect } from 'node:util';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openFolder } from '../../src/client/index.ts';
import { tempDir, writeFiles } from './fs.ts';

export type Outcome =
  | { readonly ok: true; readonly namespace: Record<string, unknown>; readonly result: unknown }
  | { readonly ok: false; readonly name: string; readonly code: string | undefined; readonly message: string };

function failed(error: unknown): Outcome {
  const value = error as { name?: string; code?: string; message?: string; constructor?: { name?: string } };
  return { ok: false, name: value?.constructor?.name ?? typeof error, code: value?.code, message: String(value?.message) };
}

/** What a test compares: an error's constructor and code, or the entry's `result` export. */
export function summary(outcome: Outcome): unknown {
  return outcome.ok ? { ok: true, result: outcome.result } : { ok: false, name: outcome.name, code: outcome.code };
}

/** `files` written to a fresh folder (with a package.json of type module), imported natively and through livemod. */
export async function both(t: Parameters<typeof tempDir>[0], files: Record<string, string>, entry = 'main.js'): Promise<{ native: Outcome; live: Outcome; dir: string }> {
  const dir = tempDir(t);
  writeFiles(dir, { 'package.json': '{"type":"module"}', ...files });
  let native: Outcome;
  try {
    const namespace = (await import(pathToFileURL(join(dir, entry)).href)) as Record<string, unknown>;
    native = { ok: true, namespace, result: await namespace.result };
  } catch (error) {
    native = failed(error);
  }
  let live: Outcome;
  try {
    const app = await openFolder(join(dir, entry));
    const namespace = await app.import();
    live = { ok: true, namespace, result: await namespace.result };
  } catch (error) {
    live = failed(error);
  }
  return { native, live, dir };
}

/** util.inspect with the folder's path taken out, so the two runs print the same. */
export function printed(value: unknown, dir: string): string {
  return inspect(value, { depth: 4 }).replaceAll(pathToFileURL(dir).href, '<dir>');
}

// The entry of a worker or forked child that runs a module of a live program (children.ts):
// reads its task (environment data in a worker; in a child process, a file only this user can
// read, named by an environment variable, both removed at once so the program's own children
// do not inherit them), opens the parent's version
// and runs the module as the child's main module, with process.argv[1] its file as Node gives it.
import { readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getEnvironmentData, isMainThread } from 'node:worker_threads';
import { CHILD_ENV, WORKER_DATA_KEY, type ChildTask } from './children.ts';
import { openChild } from './connect.ts';

function fromFile(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } finally {
    rmSync(dirname(file), { recursive: true, force: true });
  }
}

const raw = isMainThread ? fromFile(process.env[CHILD_ENV]) : getEnvironmentData(WORKER_DATA_KEY);
if (isMainThread) delete process.env[CHILD_ENV];
if (typeof raw !== 'string') throw new Error('livemod child entry started without a task: it is started by Worker or fork on a live program\'s module, not directly');
const task = JSON.parse(raw) as ChildTask;
const app = await openChild(task);
const url = app.registry.urlOf(task.module);
if (url.startsWith('file:')) process.argv[1] = fileURLToPath(url);
await app.import();

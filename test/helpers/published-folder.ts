// A folder of source files built and published on a real server, version after version: for the
// tests that change a running program's code (write, invalidate, sign above the last, publish).
import type { TestContext } from 'node:test';
import { SnapshotBuilder } from '../../src/build/index.ts';
import { signSnapshot, type Snapshot } from '../../src/snapshot/index.ts';
import { tempDir, writeFiles } from './fs.ts';
import { startServer, type Running } from './server-fixtures.ts';

export interface PublishedFolder extends Running {
  /** The folder the versions are built from. */
  readonly dir: string;
  /** Writes `changes` into the folder and publishes the version built from it, signed above the last one. */
  publish(changes?: Readonly<Record<string, string>>): Snapshot;
}

/** `files` in a new folder, built and published on a listening server; each `publish` is the next version. */
export async function publishedFolder(t: TestContext, files: Readonly<Record<string, string>>, build: ConstructorParameters<typeof SnapshotBuilder>[1] = {}): Promise<PublishedFolder> {
  const running = await startServer(t);
  const dir = tempDir(t);
  writeFiles(dir, files);
  const builder = new SnapshotBuilder(dir, build);
  let last: Snapshot | undefined;
  const publish = (changes: Readonly<Record<string, string>> = {}): Snapshot => {
    writeFiles(dir, changes);
    builder.invalidate(Object.keys(changes));
    last = signSnapshot(builder.build().content, running.key, last === undefined ? {} : { previousVersion: last.manifest.version });
    running.server.publish(last);
    return last;
  };
  publish();
  return { ...running, dir, publish };
}

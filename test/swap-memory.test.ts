// Old module versions are freed: after many swaps of one module the heap is where it was after
// the first, and the registry says which replaced versions something still holds.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const CHILD = fileURLToPath(new URL('./helpers/swap-memory.ts', import.meta.url));

function run(swaps: number, mode = ''): { retainedBytes: number; retainedVersions: number } {
  const result = spawnSync(process.execPath, ['--expose-gc', CHILD, String(swaps), mode], { encoding: 'utf8', timeout: 110_000 });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as { retainedBytes: number; retainedVersions: number };
}

test('after 10,000 swaps of one module the heap retained beyond the first swap is under 10 MB, and no replaced version is retained', { timeout: 120_000 }, () => {
  const { retainedBytes, retainedVersions } = run(10_000);
  assert.ok(retainedBytes < 10 * 1024 * 1024, `retained ${retainedBytes} bytes`);
  assert.equal(retainedVersions, 0);
});

test('a version the program still holds is listed as retained', { timeout: 60_000 }, () => {
  const { retainedVersions } = run(20, 'leak');
  assert.equal(retainedVersions, 20);
});

import assert from 'node:assert/strict';

/** Awaits a rejection with the given error `code` (and message), and returns the error. */
export async function rejectsWithCode(promise: Promise<unknown>, code: string, message?: RegExp): Promise<Error> {
  let caught: unknown;
  await promise.then(() => assert.fail(`expected ${code}, but it resolved`), (error: unknown) => {
    caught = error;
  });
  const error = caught as Error & { code?: string };
  assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
  if (message) assert.match(error.message, message);
  return error;
}

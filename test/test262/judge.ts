// Pass or fail, by test262's INTERPRETING.md: a negative test passes only when the import
// throws an error of exactly the named constructor; an async test only when it printed
// `Test262:AsyncTestComplete`; any other test when it completes with nothing thrown.
import type { Outcome } from './outcome.ts';
import type { TestCase } from './suite.ts';

export interface Verdict {
  readonly passed: boolean;
  /** Why it failed (empty when it passed): the error's detail, or what was missing. */
  readonly error: string;
}

const PASS: Verdict = { passed: true, error: '' };
const fail = (error: string): Verdict => ({ passed: false, error });

export function judge(test: TestCase, outcome: Outcome): Verdict {
  if (outcome.harnessError) return fail(`harness: ${outcome.harnessError}`);
  const { error, uncaught, printed } = outcome;
  if (!outcome.settled) return fail(`the import never settled: nothing was left to run while it was pending (a top-level await that never resolves)${test.negative ? `; expected ${test.negative.type}` : ''}`);
  if (test.negative) {
    const { phase, type } = test.negative;
    if (error === null) return fail(`expected ${type} in the ${phase} phase, but the test completed`);
    // Parse- and resolution-phase tests start with $DONOTEVALUATE(), which throws a Test262Error:
    // matching the type is what tells an error before evaluation from evaluation having started.
    if (error.constructorName !== type) return fail(`expected ${type} in the ${phase} phase, got ${error.detail}`);
    return PASS;
  }
  if (error !== null) return fail(error.detail);
  if (uncaught.length > 0) return fail(`uncaught: ${uncaught[0]!.detail}`);
  if (test.async) {
    const failure = printed.find((line) => line.startsWith('Test262:AsyncTestFailure'));
    if (failure !== undefined) return fail(failure.slice('Test262:AsyncTestFailure:'.length) || failure);
    if (!printed.includes('Test262:AsyncTestComplete')) {
      const last = outcome.unhandled.at(-1);
      return fail(`async test ended without calling $DONE${last ? `; unhandled rejection: ${last.detail}` : ''}`);
    }
  }
  return PASS;
}

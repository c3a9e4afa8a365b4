// What crosses between the runner and a test's child process: the job it is given, and the raw
// outcome it reports. The child only observes; judging happens in the runner (judge.ts), so the
// rules live in one place and apply to a crash or a timeout the child could not report.
export const HOSTS = ['livemod', 'node'] as const;
export type Host = (typeof HOSTS)[number];

export interface Job {
  readonly host: Host;
  readonly file: string;
  /** Harness files to evaluate as global scripts before the test, in order. */
  readonly harness: readonly string[];
  readonly async: boolean;
  /** The livemod module the child imports `openFolder` from (dist/ or, when that is stale, src/). */
  readonly livemod: string;
  /** Only this folder's `.js` files are forced to the module goal under the node host. */
  readonly suiteDir: string;
}

export interface ThrownError {
  /** The thrown value's constructor name (`SyntaxError`, `Test262Error`, `LivemodError`, …): what `negative.type` is matched against. */
  readonly constructorName: string;
  readonly message: string;
  /** `message` plus the first frames, for the JSON results. */
  readonly detail: string;
}

export interface Outcome {
  /** False when the process ran out of work with the import still pending (a top-level await that never settles). */
  readonly settled: boolean;
  /** Where the test's own run stopped: the import (build, link or evaluation) resolved or rejected. */
  readonly error: ThrownError | null;
  /** Exceptions nothing caught (thrown from a timer or callback after the import): a failure. */
  readonly uncaught: readonly ThrownError[];
  /**
   * Rejections nothing handled. Not a failure: test262 tests leave them on purpose (the
   * syntax tests call `import('')` and drop the promise), but an async test that never calls
   * $DONE usually stopped at one, so it is the best explanation to report.
   */
  readonly unhandled: readonly ThrownError[];
  /** Every line the test passed to `print` (async tests report through it). */
  readonly printed: readonly string[];
  /** Set when the harness itself could not be evaluated: a runner fault, not a test result. */
  readonly harnessError?: string;
}

export function describeThrown(value: unknown): ThrownError {
  try {
    return describe(value);
  } catch (error) {
    // A thrown Proxy or an object whose getters throw must still be reported, if only vaguely.
    return { constructorName: 'unknown', message: `(the thrown value could not be inspected: ${String(error)})`, detail: 'the thrown value could not be inspected' };
  }
}

function describe(value: unknown): ThrownError {
  if (typeof value === 'object' && value !== null) {
    const constructorName = typeof value.constructor === 'function' ? value.constructor.name : 'Object';
    const message = 'message' in value ? String(value.message) : String(value);
    const stack = 'stack' in value && typeof value.stack === 'string' ? value.stack : '';
    const head = `${constructorName}: ${message}`;
    const frames = stack.split('\n').filter((line) => /^\s+at /.test(line)).slice(0, 4).join('\n');
    const code = 'code' in value && typeof value.code === 'string' ? ` [${value.code}]` : '';
    return { constructorName, message, detail: frames ? `${head}${code}\n${frames}` : `${head}${code}` };
  }
  return { constructorName: typeof value, message: String(value), detail: `thrown ${typeof value}: ${String(value)}` };
}

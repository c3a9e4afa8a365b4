// How commands speak: human lines on stderr (stdout stays clean for what scripts read), and
// with --json one JSON document (or one JSON line per event for long-running commands) on stdout.
import { isLivemodError } from '../errors.ts';

export interface Output {
  readonly json: boolean;
  /** A human-readable line on stderr (suppressed with --json). */
  info(line: string): void;
  /** A warning line on stderr, also shown with --json. */
  warn(line: string): void;
  /** The command's result: JSON on stdout with --json, else the human text on stdout. */
  result(value: unknown, human: string): void;
  /** One event of a long-running command: a JSON line with --json, else a human line on stderr. */
  event(value: Record<string, unknown>, human: string): void;
}

export function createOutput(json: boolean): Output {
  return {
    json,
    info(line) {
      if (!json) process.stderr.write(`${line}\n`);
    },
    warn(line) {
      process.stderr.write(`${line}\n`);
    },
    result(value, human) {
      process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${human}\n`);
    },
    event(value, human) {
      if (json) process.stdout.write(`${JSON.stringify(value)}\n`);
      else process.stderr.write(`${human}\n`);
    },
  };
}

export function describeError(error: unknown): { code: string; message: string } {
  if (isLivemodError(error)) return { code: error.code, message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'ERR_LIVEMOD_INTERNAL', message: `[livemod] unexpected error: ${message}` };
}

// The JSON error body every non-2xx livemod response carries, and the reader clients use on it.
// Its `code` is an ErrorCodes value, so a client rebuilds a LivemodError that callers match on.

export interface WireError {
  readonly code: string;
  /** One line: what was wrong and how to fix it. */
  readonly message: string;
  /** Batch 404 only: up to 10 of the requested hashes the server does not hold. */
  readonly unknown?: readonly string[];
  /** Batch 404 only: how many requested hashes were unknown in all. */
  readonly unknownCount?: number;
}

export interface ErrorBody {
  readonly error: WireError;
}

/** Returns the error inside a parsed response body, or undefined when it is not an ErrorBody. */
export function parseErrorBody(value: unknown): WireError | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const error = (value as { error?: unknown }).error;
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, message, unknown, unknownCount } = error as Record<string, unknown>;
  if (typeof code !== 'string' || typeof message !== 'string') return undefined;
  const hashes = Array.isArray(unknown) && unknown.every((item) => typeof item === 'string') ? (unknown as string[]) : undefined;
  return {
    code,
    message,
    ...(hashes ? { unknown: hashes } : {}),
    ...(typeof unknownCount === 'number' ? { unknownCount } : {}),
  };
}

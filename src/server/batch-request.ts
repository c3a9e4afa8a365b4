// Validates a `POST /batch` body: {"hashes": [<hash>, ...]}. The count is checked before any
// hash, so an oversized request costs the server one array length.
import { ErrorCodes, type ErrorCode } from '../errors.ts';
import { isHash } from '../snapshot/index.ts';

export type BatchParse =
  | { readonly ok: true; readonly hashes: readonly string[] }
  | { readonly ok: false; readonly status: 400 | 413; readonly code: ErrorCode; readonly message: string };

const SHAPE = 'send {"hashes": ["<64 lowercase hex digits>", ...]}';

function bad(message: string): BatchParse {
  return { ok: false, status: 400, code: ErrorCodes.BAD_REQUEST, message };
}

/** Hashes deduplicated, first occurrence kept: the response follows request order. */
export function parseBatchRequest(body: Buffer, maxHashes: number): BatchParse {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return bad(`the batch body is not JSON; ${SHAPE}`);
  }
  const hashes = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as { hashes?: unknown }).hashes : undefined;
  if (!Array.isArray(hashes)) return bad(`the batch body has no "hashes" array; ${SHAPE}`);
  if (hashes.length > maxHashes) {
    return { ok: false, status: 413, code: ErrorCodes.TOO_LARGE, message: `the batch asks for ${hashes.length} hashes, over this server's limit of ${maxHashes}; split it into requests of at most ${maxHashes}` };
  }
  const unique = new Set<string>();
  for (let index = 0; index < hashes.length; index += 1) {
    const hash: unknown = hashes[index];
    if (!isHash(hash)) return bad(`batch hashes[${index}] is ${JSON.stringify(hash)?.slice(0, 80) ?? String(hash)}, not 64 lowercase hex digits (sha256); ${SHAPE}`);
    unique.add(hash);
  }
  return { ok: true, hashes: [...unique] };
}

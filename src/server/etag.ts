// `If-None-Match` evaluation (RFC 9110 §13.1.2): a list of entity tags or `*`, compared weakly,
// so `W/"x"` matches `"x"`. A malformed entry matches nothing rather than failing the request.

const ENTITY_TAG = /^(?:W\/)?("[^"]*")$/;

export function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const wanted = ENTITY_TAG.exec(etag)?.[1] ?? etag;
  for (const entry of header.split(',')) {
    const candidate = entry.trim();
    if (candidate === '*') return true;
    if (ENTITY_TAG.exec(candidate)?.[1] === wanted) return true;
  }
  return false;
}

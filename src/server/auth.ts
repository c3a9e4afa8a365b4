// Bearer-token check. Both sides are hashed first so timingSafeEqual compares equal-length
// buffers and the time taken says nothing about a token's length or prefix.
import { createHash, timingSafeEqual } from 'node:crypto';

export type TokenCheck = (authorization: string | undefined) => boolean;

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** With no tokens every request passes. */
export function createTokenCheck(tokens: readonly string[]): TokenCheck {
  if (tokens.length === 0) return () => true;
  const expected = tokens.map(digest);
  return (authorization) => {
    const match = authorization === undefined ? null : /^Bearer +(\S+) *$/i.exec(authorization);
    if (!match) return false;
    const offered = digest(match[1]!);
    let ok = false;
    // No early exit: every token is compared whichever one matches.
    for (const token of expected) ok = timingSafeEqual(token, offered) || ok;
    return ok;
  };
}

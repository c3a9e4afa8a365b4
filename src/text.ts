// Text from the network (or from a signed manifest, which any key holder writes) as it may appear
// in a message: inert and bounded. A terminal interprets C0 and C1 controls (ESC, CSI, CR, LF),
// so a raw key id or status text could erase the line and print a forged "verified" one; bidi
// overrides reorder what is shown. Every such character is shown escaped (`\x1b`), and every
// value is cut, so no answer from a host can make an error line long or active.

// eslint-disable-next-line no-control-regex -- control characters are exactly what is matched
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

function escape(char: string): string {
  const code = char.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Characters kept from a value before it is cut ("… (N more characters)"). */
export const MAX_SHOWN = 120;

/** At most `max` UTF-16 units of `text`, never ending inside a surrogate pair, and how many were dropped. */
function cut(text: string, max: number): { kept: string; dropped: number } {
  if (text.length <= max) return { kept: text, dropped: 0 };
  let kept = text.slice(0, max);
  const last = kept.charCodeAt(kept.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) kept = kept.slice(0, -1);
  return { kept, dropped: text.length - kept.length };
}

function more(dropped: number): string {
  return dropped > 0 ? `… (${dropped} more characters)` : '';
}

/**
 * `value` as inert text: control and bidi characters escaped, at most `max` characters of it kept,
 * the rest counted. Cut first, so a 60 MB value costs nothing.
 */
export function inert(value: unknown, max: number = MAX_SHOWN): string {
  const { kept, dropped } = cut(typeof value === 'string' ? value : String(value), max);
  return kept.replace(UNSAFE, escape) + more(dropped);
}

/** `inert(value)` in double quotes, with quotes and backslashes inside escaped: for names, paths, specifiers. */
export function quoted(value: unknown, max: number = MAX_SHOWN): string {
  const { kept, dropped } = cut(typeof value === 'string' ? value : String(value), max);
  // Backslashes first, so the escapes added for controls stay distinguishable from the value's own.
  return `"${kept.replace(/[\\"]/g, '\\$&').replace(UNSAFE, escape)}"${more(dropped)}`;
}

/** The first `max` items (each made inert by `show`), then "and N more": a list in a message never grows with its input. */
export function listed(items: readonly unknown[], max = 3, show: (item: unknown) => string = (item) => inert(item, 40)): string {
  if (items.length === 0) return 'none';
  const head = items.slice(0, max).map(show).join(', ');
  return items.length > max ? `${head} and ${items.length - max} more` : head;
}

// The import/export rewrite as a list of text replacements, plus the source-map arithmetic it
// needs. The rewrite keeps every line where it was (multi-line removals keep their newlines),
// so the transformer's own map can be carried through the edits by shifting positions instead
// of generating a second map and composing the two (which cost more than the transform).

interface Edit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
  readonly order: number;
}

export class Edits {
  private readonly list: Edit[] = [];

  /** Replaces [start, end) with text; start === end inserts. Edits must not overlap. */
  overwrite(start: number, end: number, text: string): void {
    this.list.push({ start, end, text, order: this.list.length });
  }

  remove(start: number, end: number): void {
    if (end > start) this.overwrite(start, end, '');
  }

  /** Inserts at a position; inserts at one position keep their call order. */
  insert(at: number, text: string): void {
    this.overwrite(at, at, text);
  }

  private sorted(): Edit[] {
    return this.list.sort((a, b) => a.start - b.start || a.end - b.end || a.order - b.order);
  }

  apply(code: string): string {
    const parts: string[] = [];
    let at = 0;
    for (const edit of this.sorted()) {
      parts.push(code.slice(at, edit.start), edit.text);
      at = Math.max(at, edit.end);
    }
    parts.push(code.slice(at));
    return parts.join('');
  }

  /** Line numbers (0-based) of `starts`-indexed code that some edit touches. */
  touchedLines(starts: readonly number[]): Set<number> {
    const lines = new Set<number>();
    for (const edit of this.list) {
      const first = lineOf(starts, edit.start);
      const last = lineOf(starts, edit.end);
      for (let line = first; line <= last; line += 1) lines.add(line);
    }
    return lines;
  }

  /**
   * Where a position of the unedited code ends up in the edited code. A position inside a
   * replaced range maps to the start of its replacement.
   */
  offsetMapper(): (offset: number) => number {
    const edits = this.sorted();
    const starts = edits.map((edit) => edit.start);
    // delta[i]: total length change of edits[0..i).
    const delta = [0];
    for (const edit of edits) delta.push(delta[delta.length - 1]! + edit.text.length - (edit.end - edit.start));
    return (offset) => {
      let low = 0;
      let high = starts.length;
      while (low < high) {
        const mid = (low + high) >>> 1;
        if (starts[mid]! < offset) low = mid + 1;
        else high = mid;
      }
      // Edits [0, low) start before offset.
      const previous = low > 0 ? edits[low - 1]! : undefined;
      if (previous && offset < previous.end) return previous.start + delta[low - 1]!;
      return offset + delta[low]!;
    };
  }
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let index = text.indexOf('\n'); index !== -1; index = text.indexOf('\n', index + 1)) starts.push(index + 1);
  return starts;
}

function lineOf(starts: readonly number[], offset: number): number {
  let low = 0;
  let high = starts.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >>> 1;
    if (starts[mid]! <= offset) low = mid;
    else high = mid - 1;
  }
  return low;
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DIGIT = new Int8Array(128).fill(-1);
for (let index = 0; index < BASE64.length; index += 1) DIGIT[BASE64.charCodeAt(index)] = index;

function vlq(value: number): string {
  let rest = value < 0 ? (-value << 1) | 1 : value << 1;
  let out = '';
  do {
    let digit = rest & 31;
    rest >>>= 5;
    if (rest > 0) digit |= 32;
    out += BASE64[digit];
  } while (rest > 0);
  return out;
}

/**
 * Carries a map of `before` (generated) → original through `edits`, which turned `before` into
 * `edited`, then behind `prefixLines` prepended lines. Edits keep lines (a multi-line removal keeps its
 * newlines), so only generated columns move, and only on lines an edit touches: every other
 * line's VLQ text is copied as it is. On a touched line each segment's first field (its column,
 * relative within the line) is re-encoded and the other fields' deltas are kept verbatim.
 */
export function shiftMappings(mappings: string, before: string, edited: string, edits: Edits, prefixLines: number): string {
  const lines = mappings.split(';');
  const starts = lineStarts(before);
  const editedStarts = lineStarts(edited);
  const touched = edits.touchedLines(starts);
  const mapOffset = edits.offsetMapper();
  for (const line of touched) {
    const text = lines[line];
    if (text === undefined || text === '') continue;
    const lineStart = starts[line]!;
    const newLineStart = editedStarts[line] ?? edited.length;
    let column = 0;
    let previousNew = 0;
    const out: string[] = [];
    for (const segment of text.split(',')) {
      // First field: VLQ delta of the column; the rest of the segment is kept as text.
      let value = 0;
      let shift = 0;
      let index = 0;
      for (;;) {
        const digit = DIGIT[segment.charCodeAt(index++)]!;
        value += (digit & 31) << shift;
        shift += 5;
        if ((digit & 32) === 0) break;
      }
      column += value & 1 ? -(value >>> 1) : value >>> 1;
      const shifted = Math.max(previousNew, mapOffset(lineStart + column) - newLineStart);
      out.push(vlq(shifted - previousNew) + segment.slice(index));
      previousNew = shifted;
    }
    lines[line] = out.join(',');
  }
  return ';'.repeat(prefixLines) + lines.join(';');
}

/**
 * An identity map of JS source: one segment at each word, so stack columns land on tokens —
 * except inside comments and quoted strings, which hold no frame positions (a module that is
 * mostly one big string would otherwise get a segment per word in it). Any subset of identity
 * positions is a correct map, so a misread (a quote inside a regex literal) only makes the map
 * coarser until the line ends; lines are counted in every token, so they never drift. With
 * `stride` n, only every n-th word of a line gets a segment (the first always does).
 */
export function identityMappings(code: string, stride = 1): string {
  const lines: string[] = [];
  let seen = 0;
  let row: string[] = [];
  let previousColumn = 0;
  let previousSourceColumn = 0;
  let lineDelta = 0;
  let lineStart = 0;
  const newLine = (at: number): void => {
    lines.push(row.join(','));
    row = [];
    seen = 0;
    lineStart = at + 1;
    previousColumn = 0;
    lineDelta += 1;
  };
  const token = /\/\/[^\n]*|\/\*[\s\S]*?(?:\*\/|$)|'(?:[^'\\\n]|\\[\s\S])*'?|"(?:[^"\\\n]|\\[\s\S])*"?|[\w$]+|\n/g;
  for (let match = token.exec(code); match !== null; match = token.exec(code)) {
    const text = match[0];
    if (text === '\n') {
      newLine(match.index);
      continue;
    }
    const first = text.charCodeAt(0);
    // 47 "/", 39 "'", 34 '"': a comment or a string: no segment, but its line breaks count.
    if (first === 47 || first === 39 || first === 34) {
      for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) newLine(match.index + at);
      continue;
    }
    // Dense code (minified) keeps every stride-th word of a line: coarser, still exact where it maps.
    if (seen++ % stride !== 0) continue;
    const column = match.index - lineStart;
    // Fields: column (relative in line), source 0 (relative: 0), line delta, source column delta.
    row.push(vlq(column - previousColumn) + 'A' + vlq(lineDelta) + vlq(column - previousSourceColumn));
    previousColumn = column;
    previousSourceColumn = column;
    lineDelta = 0;
  }
  lines.push(row.join(','));
  return lines.join(';');
}

/**
 * COPY's text format, read back: a row is its column values separated by tabs and ended by
 * a newline, where a backslash escapes tabs, newlines and backslashes inside a value (JSON
 * text can hold them) and `\N` is NULL.
 */

/**
 * One CopyData message's values as text (`\N` stays as written: the callers select no
 * nullable columns). Scanned with indexOf rather than split: this runs once per event read
 * and split costs twice as much.
 */
export function splitCopyRow(chunk: Buffer, fieldCount: number): string[] {
  const line = chunk.toString('utf8', 0, chunk[chunk.length - 1] === 10 ? chunk.length - 1 : chunk.length);
  const fields = new Array<string>(fieldCount);
  let start = 0;
  for (let i = 0; i < fieldCount - 1; i++) {
    const end = line.indexOf('\t', start);
    if (end === -1) throw new Error(`a COPY row has ${i + 1} columns, expected ${fieldCount}`);
    fields[i] = line.slice(start, end);
    start = end + 1;
  }
  fields[fieldCount - 1] = line.slice(start);
  if (chunk.indexOf(92) !== -1) {
    for (let i = 0; i < fieldCount; i++) if (fields[i]!.includes('\\')) fields[i] = unescapeCopy(fields[i]!);
  }
  return fields;
}

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };

/** Undoes COPY's text-format escaping of one value. */
export function unescapeCopy(field: string): string {
  let out = '';
  for (let i = 0; i < field.length; i++) {
    const char = field[i]!;
    if (char !== '\\' || i === field.length - 1) {
      out += char;
      continue;
    }
    const next = field[++i]!;
    out += ESCAPES[next] ?? next;
  }
  return out;
}

/**
 * Identifiers from config (schema, table and column names) are quoted once, when the
 * config is loaded, and only ever interpolated in their quoted form. Values never are:
 * they travel as bind parameters.
 */

const MAX_IDENTIFIER_BYTES = 63;

/** Why `name` cannot be a PostgreSQL identifier, or undefined when it can. */
export function identifierProblem(name: string): string | undefined {
  if (name.length === 0) return 'an identifier cannot be empty';
  if (name.includes('\u0000')) return 'an identifier cannot contain a NUL character';
  if (Buffer.byteLength(name, 'utf8') > MAX_IDENTIFIER_BYTES) {
    return `"${name}" is longer than PostgreSQL's ${MAX_IDENTIFIER_BYTES}-byte identifier limit (it would be silently truncated)`;
  }
  return undefined;
}

/** Double-quotes an identifier, doubling embedded quotes, so any name is safe to interpolate. */
export function quoteIdent(name: string): string {
  const problem = identifierProblem(name);
  if (problem) throw new TypeError(problem);
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * A lower-case identifier that needs no quoting. Some places cannot quote (the
 * replication protocol's publication list is interpolated as-is), so names used there
 * are restricted to this form.
 */
export function isPlainIdentifier(name: string): boolean {
  return /^[a-z_][a-z0-9_]*$/.test(name) && name.length <= MAX_IDENTIFIER_BYTES;
}

export interface TableName {
  schema: string | undefined;
  name: string;
  /** `"schema"."name"` or `"name"`. */
  quoted: string;
}

/** Splits `schema.table` (or a bare `table`, found through the search_path) and quotes both parts. */
export function parseTableName(input: string): TableName | { error: string } {
  const parts = input.split('.');
  if (parts.length > 2) {
    return { error: `"${input}" has more than one dot; write the table as "table" or "schema.table"` };
  }
  for (const part of parts) {
    const problem = identifierProblem(part);
    if (problem) return { error: `"${input}": ${problem}` };
  }
  const [first, second] = parts as [string, string | undefined];
  if (second === undefined) return { schema: undefined, name: first, quoted: quoteIdent(first) };
  return { schema: first, name: second, quoted: `${quoteIdent(first)}.${quoteIdent(second)}` };
}

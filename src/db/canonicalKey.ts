import type { KeyType } from '../config/keyTypes.js';
import { ValidationError } from '../errors.js';
import type { AggregateIdInput } from '../types.js';

/**
 * The canonical aggregate id: the one place that decides how a key becomes the text
 * stored in `events.aggregate_id`. Every path (app appends, lookups, the listener, the
 * baseline import, the verifier) must produce the same bytes for the same row, so the
 * text is always made by PostgreSQL, never by JavaScript: each key value is cast to the
 * column's exact type and typmod and printed with that type's output function
 * (`00A1...`::uuid prints lower case, `1`::numeric(10,2) prints `1.00`). A composite
 * key is exactly `jsonb_build_array(k1::text, k2::text, ...)::text`.
 */

export interface KeyColumn {
  column: string;
  /** The column name, quoted for interpolation. */
  quoted: string;
  type: KeyType;
}

/**
 * SQL for the canonical key, given one SQL expression per key column: a text bind
 * parameter (`$2::text`) on the app's path, a column reference (`t."id"`) on the paths
 * that read legacy rows. Both go through the same casts, so they agree byte for byte.
 */
export function canonicalKeySql(columns: ReadonlyArray<KeyColumn>, expressions: ReadonlyArray<string>): string {
  if (columns.length !== expressions.length || columns.length === 0) {
    throw new TypeError(`canonicalKeySql: ${columns.length} key columns but ${expressions.length} expressions`);
  }
  const parts = columns.map((column, i) => `(${expressions[i]})::${column.type.sql}::text`);
  return parts.length === 1 ? parts[0]! : `jsonb_build_array(${parts.join(', ')})::text`;
}

const INTEGER_TEXT = /^[+-]?\d+$/;
const NUMERIC_TEXT = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;
const UUID_BODY = '[0-9a-f]{4}(-?[0-9a-f]{4}){7}';
const UUID_TEXT = new RegExp(`^(${UUID_BODY}|\\{${UUID_BODY}\\})$`, 'i');

/**
 * Checks the app's key values and turns them into text bind parameters, so a bad id is
 * refused with a clear message before anything is sent (a failed cast inside the
 * caller's transaction would abort it). The text is cast by `canonicalKeySql`.
 */
export function keyParameters(
  aggregateType: string,
  columns: ReadonlyArray<KeyColumn>,
  id: AggregateIdInput,
): string[] {
  const values: ReadonlyArray<unknown> = Array.isArray(id) ? id : [id];
  if (values.length !== columns.length) {
    const expected = columns.length === 1 ? 'one key value' : `an array of ${columns.length} key values (${columns.map((c) => c.column).join(', ')})`;
    throw new ValidationError(`${aggregateType} id: expected ${expected}, got ${describe(id)}`, { path: 'aggregateId' });
  }
  return columns.map((column, i) => keyText(aggregateType, column, values[i]));
}

function keyText(aggregateType: string, column: KeyColumn, value: unknown): string {
  const where = `${aggregateType} id (${column.column} ${column.type.sql})`;
  const fail = (what: string): never => {
    throw new ValidationError(`${where}: ${what}, got ${describe(value)}`, { path: 'aggregateId' });
  };
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'bigint') text = value.toString();
  else if (typeof value === 'number') {
    if (!Number.isFinite(value)) fail('expected a finite number');
    if (column.type.kind === 'integer' && !Number.isSafeInteger(value)) {
      fail('expected a safe integer (pass larger values as a string or bigint)');
    }
    text = String(value);
  } else return fail('expected a string, number or bigint');

  const type = column.type;
  switch (type.kind) {
    case 'integer': {
      if (!INTEGER_TEXT.test(text)) fail('expected an integer');
      const n = BigInt(text);
      if (n < type.min || n > type.max) fail(`expected an integer from ${type.min} to ${type.max}`);
      return text;
    }
    case 'uuid':
      if (!UUID_TEXT.test(text)) fail('expected a UUID');
      return text;
    case 'numeric': {
      if (!NUMERIC_TEXT.test(text)) fail(`expected a decimal number such as 12.50`);
      const [whole = '', fraction = ''] = text.replace(/^[+-]/, '').split('.');
      if (whole.replace(/^0+/, '').length > type.precision - type.scale) {
        fail(`expected at most ${type.precision - type.scale} digits before the decimal point`);
      }
      // The cast would round extra decimals, making two ids one key: refuse them instead.
      if (/[1-9]/.test(fraction.slice(type.scale))) fail(`expected at most ${type.scale} decimals`);
      return text;
    }
    case 'text': {
      if (text.includes('\u0000')) fail('a key cannot contain a NUL character');
      if (type.maxLength !== undefined && [...text].length > type.maxLength) {
        fail(`expected at most ${type.maxLength} characters`);
      }
      return text;
    }
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return `[${value.map(describe).join(', ')}]`;
  return String(value);
}

/** A readable form of an id for messages (not the canonical text, which only SQL makes). */
export function displayId(id: AggregateIdInput): string {
  return Array.isArray(id) ? `[${id.map(String).join(', ')}]` : String(id);
}

/**
 * How a query names one aggregate: by the app's key values (cast to the canonical id in
 * SQL, as above) or by a canonical id already read from the store. `sql(n)` is the SQL
 * for the canonical id with its parameters starting at $n; `params` are their values.
 */
export interface AggregateRef {
  params: readonly string[];
  sql(firstParam: number): string;
}

export function byKey(columns: ReadonlyArray<KeyColumn>, keyParams: readonly string[]): AggregateRef {
  return { params: keyParams, sql: (first) => canonicalKeySql(columns, keyParams.map((_, i) => `$${first + i}::text`)) };
}

export function byCanonicalId(aggregateId: string): AggregateRef {
  return { params: [aggregateId], sql: (first) => `$${first}::text` };
}

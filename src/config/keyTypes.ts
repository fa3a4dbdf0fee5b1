/**
 * The column types an aggregate key may have. The canonical key is the column's
 * PostgreSQL text output after casting to the exact type and typmod, so only types
 * whose text output is one-to-one with their values are allowed: a numeric without a
 * declared scale prints `1` and `1.0` differently, a timestamp follows the session's
 * DateStyle and TimeZone, floats round.
 */

export type KeyType =
  | { kind: 'integer'; sql: 'smallint' | 'integer' | 'bigint'; min: bigint; max: bigint }
  | { kind: 'uuid'; sql: 'uuid' }
  | { kind: 'text'; sql: string; maxLength: number | undefined }
  | { kind: 'numeric'; sql: string; precision: number; scale: number };

export const KEY_TYPE_HELP =
  'smallint, integer, bigint, uuid, text, varchar(n) or numeric(p,s) (numeric needs a declared scale)';

const INTEGER_TYPES: Record<string, { sql: 'smallint' | 'integer' | 'bigint'; bits: bigint }> = {
  smallint: { sql: 'smallint', bits: 16n },
  int2: { sql: 'smallint', bits: 16n },
  integer: { sql: 'integer', bits: 32n },
  int: { sql: 'integer', bits: 32n },
  int4: { sql: 'integer', bits: 32n },
  bigint: { sql: 'bigint', bits: 64n },
  int8: { sql: 'bigint', bits: 64n },
};

/** Parses a declared key type; returns a message saying what is allowed when it is not one. */
export function parseKeyType(declared: string): KeyType | { error: string } {
  const text = declared.trim().toLowerCase().replace(/\s+/g, ' ');
  const integer = INTEGER_TYPES[text];
  if (integer) {
    const half = 1n << (integer.bits - 1n);
    return { kind: 'integer', sql: integer.sql, min: -half, max: half - 1n };
  }
  if (text === 'uuid') return { kind: 'uuid', sql: 'uuid' };
  if (text === 'text' || text === 'varchar' || text === 'character varying') {
    return { kind: 'text', sql: 'text', maxLength: undefined };
  }
  const varchar = /^(?:varchar|character varying) ?\( ?(\d+) ?\)$/.exec(text);
  if (varchar) {
    const n = Number(varchar[1]);
    if (n < 1 || n > 10485760) return { error: `varchar length must be 1..10485760, got ${n}` };
    return { kind: 'text', sql: `character varying(${n})`, maxLength: n };
  }
  const numeric = /^(?:numeric|decimal) ?\( ?(\d+) ?, ?(\d+) ?\)$/.exec(text);
  if (numeric) {
    const precision = Number(numeric[1]);
    const scale = Number(numeric[2]);
    if (precision < 1 || precision > 1000 || scale > precision) {
      return { error: `numeric(${precision},${scale}) is not a valid numeric type (1 <= p <= 1000, 0 <= s <= p)` };
    }
    return { kind: 'numeric', sql: `numeric(${precision},${scale})`, precision, scale };
  }
  if (text === 'numeric' || text === 'decimal') {
    return { error: `${declared} has no declared scale, so 1 and 1.0 would be different keys; declare numeric(p,s)` };
  }
  return { error: `${declared} cannot be an aggregate key column type; allowed: ${KEY_TYPE_HELP}` };
}

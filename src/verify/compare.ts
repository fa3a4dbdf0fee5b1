import type { Sql } from '../db/queryable.js';
import { sqlStateOf } from '../db/sqlState.js';
import type { ComparedColumn } from './columns.js';

/**
 * Field comparison. Both sides meet in PostgreSQL: the legacy value as the text its type
 * printed (read under fixed TimeZone and DateStyle), the projected value as text made from
 * the state (below), each cast to the legacy column's type and compared with that type's
 * own equality, or by the column's rule. So 1.50 equals 1.5 in a numeric column, two jsonb
 * documents compare structurally, and two timestamps 1 microsecond apart differ unless the
 * rule lowers the precision. No value passes through a driver's type parser.
 */

/** A state field as the verifier sends it: absent from the state, or its text (null for null). */
export type ProjectedValue = { missing: true } | { missing: false; text: string | null };

export interface FieldVerdict {
  equal: boolean;
  /** Why the values could not be compared as the column's type (a projected value of the wrong form). */
  note?: string;
}

/** The text a state value is compared as (see the README for how each kind is read). */
export function projectedValue(state: unknown, field: string): ProjectedValue {
  if (typeof state !== 'object' || state === null || !Object.hasOwn(state, field)) return { missing: true };
  const value = (state as Record<string, unknown>)[field];
  if (value === undefined) return { missing: true };
  return { missing: false, text: valueText(value) };
}

function valueText(value: unknown): string | null {
  if (value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'invalid date' : value.toISOString();
  return jsonText(value);
}

/** JSON text of a state value, bigints as exact numbers and Dates as ISO text. */
function jsonText(value: unknown): string {
  const marks: string[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') {
      marks.push(v.toString());
      return `\u0000bigint${marks.length - 1}\u0000`;
    }
    return v;
  });
  return text.replace(/"\\u0000bigint(\d+)\\u0000"/g, (_, i: string) => marks[Number(i)]!);
}

/** SQL that is true when legacy text `l` and projected text `p` (SQL expressions) are equal for `column`. */
export function equalitySql(column: ComparedColumn, l: string, p: string, tolerance: string): string {
  const type = column.castType;
  const isJsonType = column.typeName === 'json' || column.typeName === 'jsonb';
  switch (column.compare) {
    case 'text':
      return `${l} = ${p}`;
    case 'json':
      return `(${l})::jsonb = (${p})::jsonb`;
    case 'numeric':
      if (column.scale !== undefined) return `round((${l})::numeric, ${column.scale}) = round((${p})::numeric, ${column.scale})`;
      if (column.tolerance !== undefined) return `abs((${l})::numeric - (${p})::numeric) <= (${tolerance})::numeric`;
      return `(${l})::numeric = (${p})::numeric`;
    case 'timestamp': {
      const asType = column.category === 'D' ? type : 'timestamptz';
      const precision = column.precision ?? 'microsecond';
      // date_trunc takes timestamps and intervals; dates and times of day compare as they are
      const truncatable = column.category !== 'D' || ['timestamp', 'timestamptz', 'interval'].includes(column.typeName);
      if (precision === 'microsecond' || !truncatable) return `(${l})::${asType} = (${p})::${asType}`;
      return `date_trunc('${precision}', (${l})::${asType}) = date_trunc('${precision}', (${p})::${asType})`;
    }
    case 'exact':
      if (isJsonType) return `(${l})::jsonb = (${p})::jsonb`;
      if (column.category === 'N') return `(${l})::numeric = (${p})::numeric`;
      if (column.category === 'A') return `to_jsonb((${l})::${type}) = (${p})::jsonb`;
      if (column.hasEquality) return `(${l})::${type} = (${p})::${type}`;
      return `${l} = ${p}`;
  }
}

/** One aggregate's pairs: legacy text (after any `values` rename) and projected value, per compared column. */
export interface RowPairs {
  legacy: ReadonlyArray<string | null>;
  projected: ReadonlyArray<ProjectedValue>;
}

/**
 * Verdicts for many aggregates' fields in one query. NULLs are decided here: equal when both
 * sides are null, or the column allows a NULL to equal a missing field. A projected value
 * that cannot be cast to the column's type fails the batch query; the rows are then
 * compared one by one so that only the bad value is reported, with a note.
 */
export async function compareRows(sql: Sql, columns: readonly ComparedColumn[], rows: readonly RowPairs[]): Promise<FieldVerdict[][]> {
  const verdicts: Array<Array<FieldVerdict | undefined>> = rows.map((row) =>
    columns.map((column, k) => nullVerdict(column, row.legacy[k] ?? null, row.projected[k]!)),
  );
  const pending = rows.map((_, i) => i).filter((i) => verdicts[i]!.some((v) => v === undefined));
  if (pending.length > 0) {
    try {
      await compareInSql(sql, columns, rows, pending, verdicts);
    } catch (error) {
      if (!sqlStateOf(error)?.startsWith('22')) throw error;
      for (const i of pending) await compareOneByOne(sql, columns, rows[i]!, verdicts[i]!);
    }
  }
  return verdicts as FieldVerdict[][];
}

/**
 * The verdicts that need no SQL: nulls and absent fields, and identical texts. The legacy
 * text is its type's own output, so an identical projected text is the same value, and
 * every equality and rule here is reflexive. Only texts that differ go to PostgreSQL,
 * which in a clean run is none.
 */
function nullVerdict(column: ComparedColumn, legacy: string | null, projected: ProjectedValue): FieldVerdict | undefined {
  const projectedNull = projected.missing || projected.text === null;
  if (legacy !== null && !projectedNull) return legacy === projected.text ? { equal: true } : undefined; // else for SQL
  if (legacy === null && projectedNull) return { equal: !projected.missing || column.nullEqualsMissing };
  return { equal: false };
}

function sqlParts(columns: readonly ComparedColumn[]): { expressions: string[]; tolerances: string[] } {
  const tolerances: string[] = [];
  const expressions = columns.map((column, k) => {
    const tolerance = column.tolerance === undefined ? 'NULL' : `$${columns.length * 2 + 2 + tolerances.push(column.tolerance) - 1}::text`;
    return `CASE WHEN u.l${k} IS NULL OR u.p${k} IS NULL THEN NULL ELSE (${equalitySql(column, `u.l${k}`, `u.p${k}`, tolerance)}) END`;
  });
  return { expressions, tolerances };
}

async function compareInSql(
  sql: Sql,
  columns: readonly ComparedColumn[],
  rows: readonly RowPairs[],
  pending: readonly number[],
  verdicts: Array<Array<FieldVerdict | undefined>>,
): Promise<void> {
  const { expressions, tolerances } = sqlParts(columns);
  const arrays: Array<Array<string | null>> = [];
  columns.forEach((_, k) => {
    arrays.push(pending.map((i) => (verdicts[i]![k] === undefined ? rows[i]!.legacy[k]! : null)));
    arrays.push(pending.map((i) => (verdicts[i]![k] === undefined ? textOf(rows[i]!.projected[k]!) : null)));
  });
  const names = columns.map((_, k) => `l${k}, p${k}`).join(', ');
  const result = await sql.rows(
    `SELECT ${expressions.map((e) => `(${e})::text`).join(', ')}
     FROM unnest($1::int[], ${arrays.map((_, j) => `$${j + 2}::text[]`).join(', ')}) WITH ORDINALITY AS u(i, ${names}, n)
     ORDER BY u.n`,
    [pending.map((_, n) => n), ...arrays, ...tolerances],
  );
  result.forEach((row, n) => {
    const i = pending[n]!;
    columns.forEach((_, k) => {
      if (verdicts[i]![k] === undefined) verdicts[i]![k] = { equal: row[k] === 'true' };
    });
  });
}

async function compareOneByOne(sql: Sql, columns: readonly ComparedColumn[], row: RowPairs, verdicts: Array<FieldVerdict | undefined>): Promise<void> {
  for (let k = 0; k < columns.length; k++) {
    if (verdicts[k] !== undefined) continue;
    const column = columns[k]!;
    const tolerance = column.tolerance === undefined ? 'NULL' : '$3::text';
    try {
      const [result] = await sql.rows(`SELECT (${equalitySql(column, '$1::text', '$2::text', tolerance)})::text`, [
        row.legacy[k]!,
        textOf(row.projected[k]!),
        ...(column.tolerance === undefined ? [] : [column.tolerance]),
      ]);
      verdicts[k] = { equal: result![0] === 'true' };
    } catch (error) {
      if (!sqlStateOf(error)?.startsWith('22')) throw error;
      verdicts[k] = { equal: false, note: `the values cannot be compared as ${column.sqlType}: ${error instanceof Error ? error.message : String(error)}` };
    }
  }
}

function textOf(value: ProjectedValue): string | null {
  return value.missing ? null : value.text;
}

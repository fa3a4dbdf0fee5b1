import type pg from 'pg';
import type { AggregateType } from '../config/resolve.js';
import { canonicalKeySql } from '../db/canonicalKey.js';
import { quoteIdent } from '../db/identifiers.js';
import { inSnapshot } from '../db/transaction.js';
import { utcMicros } from '../store/eventRow.js';
import type { ComparedColumn } from './columns.js';

/**
 * Legacy rows, read for comparison: each page in a REPEATABLE READ READ ONLY transaction of
 * its own whose first statement records the snapshot S (the events folded for the page are
 * those visible in S), in the table's own key order, by keyset (the next page starts after
 * the last key, compared by the key columns' own types and collations, never JavaScript's).
 */

export interface LegacyRow {
  /** The canonical aggregate id (the same SQL that made the events' ids). */
  id: string;
  /** The key columns' text, for the next page's keyset. */
  key: string[];
  /** The compared columns' text (the type's output under fixed TimeZone and DateStyle), in column order. */
  values: Array<string | null>;
  /** The `verify.updatedAt` column, as UTC microsecond text. */
  updatedAt: string | null;
}

export interface LegacyPage {
  rows: LegacyRow[];
  /** pg_current_snapshot() of the page's transaction, as text. */
  snapshot: string;
  /** pg_current_wal_insert_lsn() when the page was read (for the run's history). */
  walLsn: string;
  /**
   * The start of the oldest transaction then open, written yet or not (or now()): every
   * legacy write not visible in the snapshot set its `updatedAt` (= its transaction's
   * now()) at or after it.
   */
  since: string;
}

export type PageSelection =
  | { kind: 'after'; key: readonly string[] | undefined; limit: number; upTo?: readonly string[] | undefined }
  | { kind: 'ids'; ids: readonly string[] }
  | { kind: 'sample'; size: number }
  | { kind: 'changed'; since: string; ids: readonly string[]; after: readonly string[] | undefined; limit: number };

export async function readLegacyPage(
  pool: pg.Pool,
  aggregate: AggregateType,
  columns: readonly ComparedColumn[],
  selection: PageSelection,
): Promise<LegacyPage> {
  const keyColumns = aggregate.key.map((k) => `t.${k.quoted}`);
  const keyTypes = aggregate.key.map((k) => k.type.sql);
  const updatedAt = aggregate.verify.updatedAt
    ? utcMicros(`t.${quoteIdent(aggregate.verify.updatedAt)}`)
    : 'NULL::text';
  const select = `SELECT ${canonicalKeySql(aggregate.key, keyColumns)} AS id,
                         ${keyColumns.map((c) => `${c}::text`).join(', ')},
                         ${updatedAt},
                         ${columns.map((c) => `t.${c.quoted}::text`).join(', ') || 'NULL'}
                  FROM ${aggregate.table.quoted} t`;
  let text: string;
  let values: unknown[];
  const order = `ORDER BY ${keyColumns.join(', ')}`;
  const afterKey = (key: readonly string[] | undefined, first: number) =>
    key ? `(${keyColumns.join(', ')}) > (${key.map((_, i) => `$${first + i}::${keyTypes[i]}`).join(', ')})` : 'true';
  switch (selection.kind) {
    case 'after':
      // A chunk of a shared run ends at its range's last key ($2, the key columns' text).
      text = `${select} WHERE ${afterKey(selection.key, 3)} AND ${upToKey(aggregate, keyColumns, '$2::text[]')} ${order} LIMIT $1::int`;
      values = [selection.limit, selection.upTo ? [...selection.upTo] : null, ...(selection.key ?? [])];
      break;
    case 'ids':
      text = `${select} WHERE ${matchIds(aggregate, '$1::text[]')} ${order}`;
      values = [[...selection.ids]];
      break;
    case 'sample':
      text = `SELECT * FROM (${select} ORDER BY random() LIMIT $1::int) s`;
      values = [selection.size];
      break;
    case 'changed': {
      // Without an updatedAt column no row is selected by time ($2 is still typed, as every parameter must be).
      const changedRow = aggregate.verify.updatedAt ? `t.${quoteIdent(aggregate.verify.updatedAt)} > $2::timestamptz` : 'false AND $2::timestamptz IS NULL';
      text = `${select} WHERE (${changedRow} OR ${matchIds(aggregate, '$3::text[]')}) AND ${afterKey(selection.after, 4)} ${order} LIMIT $1::int`;
      values = [selection.limit, selection.since, [...selection.ids], ...(selection.after ?? [])];
      break;
    }
  }
  return inSnapshot(pool, async (client) => {
    const { rows: marks } = await client.query<{ snapshot: string; lsn: string; since: string }>(
      `SELECT pg_current_snapshot()::text AS snapshot, pg_current_wal_insert_lsn()::text AS lsn,
              ${utcMicros('least(now(), (SELECT min(xact_start) FROM pg_stat_activity WHERE xact_start IS NOT NULL))')} AS since`,
    );
    const { rows } = await client.query<string[]>({ text, values, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } } as never);
    const keys = aggregate.key.length;
    return {
      snapshot: marks[0]!.snapshot,
      walLsn: marks[0]!.lsn,
      since: marks[0]!.since,
      rows: rows.map((row) => ({
        id: row[0]!,
        key: row.slice(1, 1 + keys),
        updatedAt: row[1 + keys] ?? null,
        values: columns.map((_, k) => row[2 + keys + k] ?? null),
      })),
    };
  });
}

/**
 * SQL true for rows whose canonical id is in the text array `ids`, written so that the key's
 * index can serve it: each id is turned back into key values of the key columns' types.
 */
export function matchIds(aggregate: AggregateType, ids: string): string {
  if (aggregate.key.length === 1) {
    const key = aggregate.key[0]!;
    return `t.${key.quoted} = ANY (ARRAY(SELECT x::${key.type.sql} FROM unnest(${ids}) x))`;
  }
  const parts = aggregate.key.map((k, i) => `(j.v->>${i})::${k.type.sql}`).join(', ');
  return `(${aggregate.key.map((k) => `t.${k.quoted}`).join(', ')}) IN (SELECT ${parts} FROM unnest(${ids}) x, LATERAL (SELECT x::jsonb) j(v))`;
}

/** SQL true if the key (one SQL expression per key column) is at or before the text array `upTo` (true if NULL). */
export function upToKey(aggregate: AggregateType, keys: readonly string[], upTo: string): string {
  const bound = aggregate.key.map((k, i) => `(${upTo})[${i + 1}]::${k.type.sql}`);
  return `(${upTo} IS NULL OR (${keys.join(', ')}) <= (${bound.join(', ')}))`;
}

/** SQL true if the key is after the text array `after` (true if NULL). */
export function afterKeyArray(aggregate: AggregateType, keys: readonly string[], after: string): string {
  const bound = aggregate.key.map((k, i) => `(${after})[${i + 1}]::${k.type.sql}`);
  return `(${after} IS NULL OR (${keys.join(', ')}) > (${bound.join(', ')}))`;
}

/** The key columns' values of a canonical id (SQL text expression), one SQL expression per key column. */
export function keyOfId(aggregate: AggregateType, id: string): string[] {
  if (aggregate.key.length === 1) return [`(${id})::${aggregate.key[0]!.type.sql}`];
  return aggregate.key.map((k, i) => `((${id})::jsonb->>${i})::${k.type.sql}`);
}

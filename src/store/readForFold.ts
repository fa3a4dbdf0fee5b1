import type { AggregateType } from '../config/resolve.js';
import type { AggregateRef } from '../db/canonicalKey.js';
import { splitCopyRow } from '../db/copyText.js';
import type { TableName } from '../db/identifiers.js';
import type { Sql } from '../db/queryable.js';
import { aggregateKey } from './aggregateOrder.js';
import type { ProjectedEvent } from '../types.js';
import { FOLD_COLUMN_COUNT, foldColumns, toProjectedEvent } from './eventRow.js';
import type { GlobalCheckpoint } from './readAll.js';
import type { StoreTables } from './tables.js';

/**
 * The reads of folds (projecting, the updater, rebuilds): the same rows as readAggregate
 * and readAll, with only the columns a handler gets. Folding reads many events; the
 * columns nobody folds (hash, recorded_at, the listener's source fields) cost as much to
 * produce and parse as the rest.
 */

/**
 * From this many events on, a read of one aggregate goes through COPY where the handle
 * offers it (a pool): below it, the extra round trips of COPY's transaction cost more than
 * node-postgres's row parsing (docs/benchmarks.md, "project one aggregate").
 */
export const COPY_READ_FROM_EVENTS = 1000;

/** Sequences from..to (inclusive) of one aggregate. */
export async function readAggregateForFold(
  sql: Sql,
  tables: StoreTables,
  aggregate: AggregateType,
  ref: AggregateRef,
  fromSequence: number,
  toSequence: number,
): Promise<ProjectedEvent[]> {
  const events: ProjectedEvent[] = [];
  await forEachAggregateEvent(sql, tables, aggregate, ref, fromSequence, toSequence, (event) => events.push(event));
  return events;
}

/**
 * Sequences from..to (inclusive) of one aggregate, handed to `onEvent` in order as they
 * arrive (through COPY) rather than collected: a fold that keeps only its state lets each
 * event be collected young, which for a long history halves the time spent in garbage
 * collection. A throwing `onEvent` stops the read and rejects with its error.
 */
export async function forEachAggregateEvent(
  sql: Sql,
  tables: StoreTables,
  aggregate: AggregateType,
  ref: AggregateRef,
  fromSequence: number,
  toSequence: number,
  onEvent: (event: ProjectedEvent) => void,
): Promise<void> {
  const select = (raw: boolean) =>
    `SELECT ${foldColumns(raw)} FROM ${tables.events} e
     WHERE e.aggregate_type = $1::text AND e.aggregate_id = ${ref.sql(4)} AND e.sequence BETWEEN $2::bigint AND $3::bigint
     ORDER BY e.sequence`;
  const values = [aggregate.type, String(fromSequence), String(toSequence), ...ref.params];
  if (sql.copyRows && toSequence - fromSequence + 1 >= COPY_READ_FROM_EVENTS) {
    await sql.copyRows(select(true), values, (chunk) => onEvent(toProjectedEvent(splitCopyRow(chunk, FOLD_COLUMN_COUNT))));
    return;
  }
  const rows = await sql.rows(select(sql.rawText), values);
  for (const row of rows) onEvent(toProjectedEvent(row));
}

export interface FoldPage {
  events: ProjectedEvent[];
  checkpoint: GlobalCheckpoint;
  scanned: number;
  /** With `appliedIn`: the sequence that table reflects for each aggregate of the page's events, by aggregateKey (absent: none). */
  applied?: Map<string, number>;
}

/**
 * A page of the gap-safe global read (see readAll), keeping the events of some aggregate
 * types. With `appliedIn`, the same statement also reports what a read-model table
 * already reflects of each aggregate it returns (its row's sequence, or its tombstone's),
 * which a subscriber needs before it can apply them: one round trip instead of two.
 */
export async function readPageForFold(
  sql: Sql,
  tables: StoreTables,
  after: GlobalCheckpoint,
  limit: number,
  aggregateTypes: readonly string[],
  appliedIn?: { table: TableName; sequenceColumn: string },
): Promise<FoldPage> {
  // Events of other types only move the checkpoint: their heavy columns are not produced.
  const wanted = 'e.aggregate_type = ANY($4::text[])';
  const applied = appliedIn
    ? `, CASE WHEN ${wanted} THEN (SELECT max(s.sequence) FROM (
           SELECT r.${appliedIn.sequenceColumn} AS sequence FROM ${appliedIn.table.quoted} r WHERE r.aggregate_id = e.aggregate_id
           UNION ALL
           SELECT t.sequence FROM ${tables.tombstones} t WHERE t.table_oid = $5::regclass::oid AND t.aggregate_id = e.aggregate_id
         ) s)::text END`
    : '';
  const rows = await sql.rows(
    `SELECT ${foldColumns(sql.rawText, wanted)}, e.transaction_id::text, (${wanted})::text${applied}
     FROM ${tables.events} e
     WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
       AND (e.transaction_id, e.global_position) > ($1::xid8, $2::bigint)
     ORDER BY e.transaction_id, e.global_position
     LIMIT $3::int`,
    [after.transactionId, String(after.globalPosition), limit, [...aggregateTypes], ...(appliedIn ? [appliedIn.table.quoted] : [])],
  );
  // After the fold's columns: the transaction id, whether the row is of a wanted type, and the applied sequence.
  const isWanted = (row: ReadonlyArray<string | null>) => row[FOLD_COLUMN_COUNT + 1] === 'true';
  const last = rows[rows.length - 1];
  const page: FoldPage = {
    events: rows.filter(isWanted).map(toProjectedEvent),
    checkpoint: last ? { transactionId: String(last[FOLD_COLUMN_COUNT]), globalPosition: Number(last[0]) } : after,
    scanned: rows.length,
  };
  if (appliedIn) {
    page.applied = new Map();
    for (const row of rows) {
      const sequence = row[FOLD_COLUMN_COUNT + 2];
      if (sequence !== null && sequence !== undefined) page.applied.set(aggregateKey({ aggregateType: row[2]!, aggregateId: row[3]! }), Number(sequence));
    }
  }
  return page;
}

import type { AggregateType } from '../config/resolve.js';
import type { AggregateRef } from '../db/canonicalKey.js';
import type { Sql } from '../db/queryable.js';
import type { StoredEvent } from '../types.js';
import { EVENT_COLUMNS, toStoredEvent, type EventRow } from './eventRow.js';
import type { StoreTables } from './tables.js';

export interface AggregateRange {
  /** First sequence to read. Default 1. */
  fromSequence?: number;
  /** Last sequence to read (inclusive). Default: the latest. */
  toSequence?: number;
  /** Only events with occurred_at >= from (timestamptz text with an offset). */
  from?: string;
  /** Only events with occurred_at < to (exclusive). */
  to?: string;
}

/**
 * An aggregate's events in sequence order, optionally a sequence range or those that
 * occurred in a time range. Served by the (type, id, sequence) and (type, id, occurred_at)
 * indexes.
 */
export async function readAggregate(
  sql: Sql,
  tables: StoreTables,
  aggregate: AggregateType,
  ref: AggregateRef,
  range: AggregateRange = {},
): Promise<StoredEvent[]> {
  const key = ref.sql(6);
  const rows = await sql.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM ${tables.events} e
     WHERE e.aggregate_type = $1::text AND e.aggregate_id = ${key}
       AND e.sequence >= $2::bigint AND ($3::bigint IS NULL OR e.sequence <= $3::bigint)
       AND ($4::timestamptz IS NULL OR e.occurred_at >= $4::timestamptz)
       AND ($5::timestamptz IS NULL OR e.occurred_at < $5::timestamptz)
     ORDER BY e.sequence`,
    [
      aggregate.type,
      String(range.fromSequence ?? 1),
      range.toSequence === undefined ? null : String(range.toSequence),
      range.from ?? null,
      range.to ?? null,
      ...ref.params,
    ],
  );
  return rows.map(toStoredEvent);
}

export interface AggregateHead {
  aggregateId: string;
  version: number;
}

/** The canonical id and current version of an aggregate; version 0 when it has no events. */
export async function readHead(sql: Sql, tables: StoreTables, aggregate: AggregateType, ref: AggregateRef): Promise<AggregateHead> {
  const key = ref.sql(2);
  const [row] = await sql.query<{ aggregate_id: string; version: string | null }>(
    `SELECT ${key} AS aggregate_id,
            (SELECT h.version::text FROM ${tables.heads} h WHERE h.aggregate_type = $1::text AND h.aggregate_id = ${key}) AS version`,
    [aggregate.type, ...ref.params],
  );
  return { aggregateId: row!.aggregate_id, version: Number(row!.version ?? 0) };
}

/**
 * "As of T": the sequence of the last event of the prefix that ends before the first
 * event with occurred_at > T (never a time filter: business times can be out of order).
 * 0 when even the first event is after T. Also the head, read in the same statement.
 */
export async function sequenceAsOf(
  sql: Sql,
  tables: StoreTables,
  aggregate: AggregateType,
  ref: AggregateRef,
  asOf: string,
): Promise<AggregateHead & { sequence: number }> {
  const key = ref.sql(3);
  const [row] = await sql.query<{ aggregate_id: string; first_after: string | null; version: string | null }>(
    `SELECT ${key} AS aggregate_id,
            (SELECT min(e.sequence)::text FROM ${tables.events} e
              WHERE e.aggregate_type = $1::text AND e.aggregate_id = ${key} AND e.occurred_at > $2::timestamptz) AS first_after,
            (SELECT h.version::text FROM ${tables.heads} h WHERE h.aggregate_type = $1::text AND h.aggregate_id = ${key}) AS version`,
    [aggregate.type, asOf, ...ref.params],
  );
  const version = Number(row!.version ?? 0);
  const sequence = row!.first_after === null ? version : Number(row!.first_after) - 1;
  return { aggregateId: row!.aggregate_id, sequence, version };
}

/**
 * The events of an aggregate from sequence 1 through the last one that occurred in
 * [from, to), each marked whether it is in that range: what a ledger needs to fold
 * states from the start and show only the range, in one read.
 */
export async function readThroughRange(
  sql: Sql,
  tables: StoreTables,
  aggregate: AggregateType,
  ref: AggregateRef,
  range: { from?: string; to?: string },
): Promise<Array<{ event: StoredEvent; inRange: boolean }>> {
  const key = ref.sql(4);
  const inRange = `($2::timestamptz IS NULL OR e.occurred_at >= $2::timestamptz) AND ($3::timestamptz IS NULL OR e.occurred_at < $3::timestamptz)`;
  const rows = await sql.query<EventRow & { in_range: boolean }>(
    `SELECT ${EVENT_COLUMNS}, ${inRange} AS in_range FROM ${tables.events} e
     WHERE e.aggregate_type = $1::text AND e.aggregate_id = ${key}
       AND e.sequence <= (SELECT max(e.sequence) FROM ${tables.events} e
                          WHERE e.aggregate_type = $1::text AND e.aggregate_id = ${key} AND ${inRange})
     ORDER BY e.sequence`,
    [aggregate.type, range.from ?? null, range.to ?? null, ...ref.params],
  );
  return rows.map((row) => ({ event: toStoredEvent(row), inRange: row.in_range }));
}

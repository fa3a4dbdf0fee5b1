import type { Sql } from '../db/queryable.js';
import type { StoredEvent } from '../types.js';
import { toStoredEvent, utcMicros, type EventRow } from './eventRow.js';
import type { StoreTables } from './tables.js';

/** How far a subscriber has read: the (transaction id, global position) of the last event it passed. */
export interface GlobalCheckpoint {
  /** xid8 as decimal text. */
  transactionId: string;
  globalPosition: number;
}

export const START_OF_LOG: GlobalCheckpoint = { transactionId: '0', globalPosition: 0 };

export interface GlobalReadOptions {
  after?: GlobalCheckpoint;
  /** Events scanned per page, matching or not. Default 1000. */
  limit?: number;
  /** Only events of these aggregate types. */
  aggregateTypes?: readonly string[];
  /** Only events of these event types. */
  eventTypes?: readonly string[];
  /** Only events that occurred at or after this time (timestamptz text with an offset). */
  from?: string;
  /** Only events that occurred before this time. */
  to?: string;
}

export interface GlobalPage {
  /** The page's events that match the filters, in (transaction id, global position) order. */
  events: StoredEvent[];
  /** Pass back as `after` to read on: the last event scanned, matching or not. */
  checkpoint: GlobalCheckpoint;
  /** Events scanned; fewer than the limit means the reader has caught up for now. */
  scanned: number;
}

/**
 * The gap-safe global read. Global positions are handed out at insert but become
 * visible at commit, so "everything after the last position I saw" skips a transaction
 * that took a lower position and committed later. Instead, read only rows whose
 * transaction id is below the xmin of the current snapshot (every such transaction has
 * ended, so nothing can still appear below it), ordered by (transaction id, global
 * position), and checkpoint that pair.
 *
 * Filters apply within the scanned page, and the checkpoint moves past events that do
 * not match, so a subscriber of a rare type does not rescan everything else each poll.
 *
 * The price: one long-running transaction anywhere in the cluster holds every reader at
 * its xid. And this order can deliver an aggregate's sequence n+1 before n (see the
 * README's per-aggregate order contract): apply each aggregate's events by sequence.
 */
export async function readAll(sql: Sql, tables: StoreTables, options: GlobalReadOptions = {}): Promise<GlobalPage> {
  const after = options.after ?? START_OF_LOG;
  const limit = options.limit ?? 1000;
  const wanted = `($4::text[] IS NULL OR e.aggregate_type = ANY($4::text[]))
      AND ($5::text[] IS NULL OR e.event_type = ANY($5::text[]))
      AND ($6::timestamptz IS NULL OR e.occurred_at >= $6::timestamptz)
      AND ($7::timestamptz IS NULL OR e.occurred_at < $7::timestamptz)`;
  // Rows that do not match come back with their heavy columns empty: only their position counts.
  const rows = await sql.query<EventRow & { wanted: boolean }>(
    `SELECT e.global_position::text AS global_position, e.transaction_id::text AS transaction_id, ${wanted} AS wanted,
            e.event_id::text AS event_id, e.aggregate_type, e.aggregate_id, e.sequence::text AS sequence, e.event_type,
            e.schema_version::text AS schema_version,
            CASE WHEN ${wanted} THEN e.payload::text END AS payload, CASE WHEN ${wanted} THEN e.metadata::text END AS metadata,
            e.source, e.source_commit_lsn::text AS source_commit_lsn, e.source_ordinal::text AS source_ordinal,
            e.source_xid::text AS source_xid, ${utcMicros('e.occurred_at')} AS occurred_at,
            ${utcMicros('e.recorded_at')} AS recorded_at, encode(e.hash, 'hex') AS hash
     FROM ${tables.events} e
     WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
       AND (e.transaction_id, e.global_position) > ($1::xid8, $2::bigint)
     ORDER BY e.transaction_id, e.global_position
     LIMIT $3::int`,
    [
      after.transactionId,
      String(after.globalPosition),
      limit,
      options.aggregateTypes ? [...options.aggregateTypes] : null,
      options.eventTypes ? [...options.eventTypes] : null,
      options.from ?? null,
      options.to ?? null,
    ],
  );
  const last = rows[rows.length - 1];
  return {
    events: rows.filter((row) => row.wanted).map(toStoredEvent),
    checkpoint: last ? { transactionId: last.transaction_id, globalPosition: Number(last.global_position) } : after,
    scanned: rows.length,
  };
}

import type { EventMetadata, EventSource, StoredEvent } from '../types.js';

/**
 * The SELECT list for reading events: every column as text in a form no session setting
 * changes, so results do not depend on pg's global type parsers (which belong to the
 * host app) or on the session's TimeZone and DateStyle. `e` is the events table alias.
 */
export const EVENT_COLUMNS = `
  e.global_position::text AS global_position, e.event_id::text AS event_id, e.aggregate_type,
  e.aggregate_id, e.sequence::text AS sequence, e.event_type, e.schema_version::text AS schema_version,
  e.payload::text AS payload, e.metadata::text AS metadata, e.source,
  e.source_commit_lsn::text AS source_commit_lsn, e.source_ordinal::text AS source_ordinal,
  e.source_xid::text AS source_xid, e.transaction_id::text AS transaction_id,
  ${utcMicros('e.occurred_at')} AS occurred_at, ${utcMicros('e.recorded_at')} AS recorded_at,
  encode(e.hash, 'hex') AS hash`;

/** ISO-8601 UTC text to the microsecond, independent of the session's TimeZone and DateStyle. */
export function utcMicros(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

export interface EventRow {
  global_position: string;
  event_id: string;
  aggregate_type: string;
  aggregate_id: string;
  sequence: string;
  event_type: string;
  schema_version: string;
  payload: string;
  metadata: string;
  source: string;
  source_commit_lsn: string | null;
  source_ordinal: string | null;
  source_xid: string | null;
  transaction_id: string;
  occurred_at: string;
  recorded_at: string;
  hash: string;
}

export function toStoredEvent(row: EventRow): StoredEvent {
  return {
    globalPosition: Number(row.global_position),
    eventId: row.event_id,
    aggregateType: row.aggregate_type,
    aggregateId: row.aggregate_id,
    sequence: Number(row.sequence),
    type: row.event_type,
    schemaVersion: Number(row.schema_version),
    payload: JSON.parse(row.payload) as unknown,
    metadata: JSON.parse(row.metadata) as EventMetadata,
    source: row.source as EventSource,
    sourceCommitLsn: row.source_commit_lsn,
    sourceOrdinal: row.source_ordinal === null ? null : Number(row.source_ordinal),
    sourceXid: row.source_xid,
    transactionId: row.transaction_id,
    occurredAt: row.occurred_at,
    recordedAt: row.recorded_at,
    hash: row.hash,
  };
}

import type { EventMetadata, EventSource, ProjectedEvent, StoredEvent } from '../types.js';

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

/**
 * The lean SELECT list for folds (projections, the updater, rebuilds): what a handler
 * gets (ProjectedEvent), in this column order, with occurred_at as epoch seconds, which is
 * cheaper to produce than formatted text and as session-independent. With `raw` (the
 * driver returns every column as text) the casts are left out: they cost as much again.
 */
export function foldColumns(raw: boolean, wanted?: string): string {
  const text = (expression: string) => (raw ? expression : `${expression}::text`);
  const heavy = (expression: string) => (wanted ? `CASE WHEN ${wanted} THEN ${text(expression)} END` : text(expression));
  return [
    text('e.global_position'),
    text('e.event_id'),
    'e.aggregate_type',
    'e.aggregate_id',
    text('e.sequence'),
    'e.event_type',
    text('e.schema_version'),
    heavy('e.payload'),
    heavy('e.metadata'),
    'e.source',
    text('extract(epoch FROM e.occurred_at)'),
  ].join(', ');
}

/** The number of columns foldColumns selects. */
export const FOLD_COLUMN_COUNT = 11;

export function toProjectedEvent(row: ReadonlyArray<string | null>): ProjectedEvent {
  return {
    globalPosition: Number(row[0]),
    eventId: row[1]!,
    aggregateType: row[2]!,
    aggregateId: row[3]!,
    sequence: Number(row[4]),
    type: row[5]!,
    schemaVersion: Number(row[6]),
    payload: JSON.parse(row[7]!) as unknown,
    metadata: JSON.parse(row[8]!) as EventMetadata,
    source: row[9] as EventSource,
    occurredAt: epochToIso(row[10]!),
  };
}

/** `1769940000.123456` (PostgreSQL's exact epoch seconds) as `2026-02-01T10:00:00.123456Z`. */
export function epochToIso(epoch: string): string {
  const dot = epoch.indexOf('.');
  if (epoch[0] !== '-') {
    // the common case, without BigInt: whole seconds fit a double exactly, the fraction stays text
    const seconds = Number(dot < 0 ? epoch : epoch.slice(0, dot));
    const fraction = dot < 0 ? '000000' : epoch.slice(dot + 1, dot + 7).padEnd(6, '0');
    return `${isoSeconds(seconds)}.${fraction}Z`;
  }
  const [whole = '0', fraction = ''] = epoch.slice(1).split('.');
  const micros = -(BigInt(whole) * 1_000_000n + BigInt(fraction.padEnd(6, '0').slice(0, 6)));
  const millis = micros >= 0n ? micros / 1000n : -((-micros + 999n) / 1000n);
  const microsOfSecond = ((micros % 1_000_000n) + 1_000_000n) % 1_000_000n;
  return `${new Date(Number(millis)).toISOString().slice(0, 19)}.${String(microsOfSecond).padStart(6, '0')}Z`;
}

// Formatting a Date costs more than the rest of reading an event; the events of one read
// mostly fall on few days, so the date part is cached and the time of day computed.
let cachedDay = Number.NaN;
let cachedDate = '';
const two = (n: number) => (n < 10 ? `0${n}` : String(n));

/** `YYYY-MM-DDTHH:MM:SS` (UTC) of whole epoch seconds. */
function isoSeconds(seconds: number): string {
  const day = Math.floor(seconds / 86_400);
  if (day !== cachedDay) {
    cachedDay = day;
    cachedDate = new Date(day * 86_400_000).toISOString().slice(0, 10);
  }
  const inDay = seconds - day * 86_400;
  return `${cachedDate}T${two(Math.floor(inDay / 3600))}:${two(Math.floor((inDay % 3600) / 60))}:${two(inDay % 60)}`;
}

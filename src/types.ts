/**
 * Central types. Glossary, once:
 * - event: an immutable record that something happened to one aggregate (`account.credited`).
 * - aggregate: one thing with a history, named by a type and a canonical id (`account` 42);
 *   in a retrofit, one row of a legacy table.
 * - sequence: an event's place in its aggregate's history, 1, 2, 3... without gaps.
 * - version: the sequence of an aggregate's last event (0 before the first).
 * - global position: an event's place in the whole log, in insertion order (not commit order).
 * - checkpoint: how far a subscriber has read, as a (transaction id, global position) pair.
 * - projector: folds an aggregate's events into its state.
 * - read model: a table kept up to date from events for queries (later issue).
 * - slot, publication: PostgreSQL's logical-replication bookmark and table set (later issue).
 * - verification run: one comparison of projected state with the legacy rows (later issue).
 */

/** How an aggregate type's events are captured. */
export type CaptureMode = 'app' | 'listener' | 'both';

/** Where an event came from. */
export type EventSource = 'app' | 'replication' | 'import';

/**
 * The version an append expects the aggregate to be at: an exact number (0 = no events),
 * `none` (must not exist), `exists` (must have events) or `any`.
 */
export type ExpectedVersion = number | 'any' | 'none' | 'exists';

/** An aggregate id as the app holds it: one key value, or one per column of a composite key. */
export type AggregateIdInput = string | number | bigint | ReadonlyArray<string | number | bigint>;

/** Well-known metadata keys, stored in snake_case; apps may add any other JSON values. */
export interface EventMetadata {
  actor?: string;
  reason?: string;
  correlation_id?: string;
  causation_id?: string;
  request_id?: string;
  [key: string]: unknown;
}

/** What a projector's handler gets: the columns a fold uses (read lean; payload and metadata parsed as each event is read). */
export interface ProjectedEvent<P = unknown> {
  globalPosition: number;
  eventId: string;
  aggregateType: string;
  /** The canonical key text (see db/canonicalKey.ts). */
  aggregateId: string;
  sequence: number;
  type: string;
  schemaVersion: number;
  payload: P;
  metadata: EventMetadata;
  source: EventSource;
  /** ISO-8601 in UTC to the microsecond, e.g. `2026-02-03T09:15:00.123456Z`. */
  occurredAt: string;
}

/** An event as stored, with every column in a lossless JavaScript form. */
export interface StoredEvent<P = unknown> extends ProjectedEvent<P> {
  sourceCommitLsn: string | null;
  sourceOrdinal: number | null;
  sourceXid: string | null;
  /** xid8 of the transaction that wrote the event, as decimal text. */
  transactionId: string;
  recordedAt: string;
  /** sha256 chained over the aggregate's events, hex. */
  hash: string;
}

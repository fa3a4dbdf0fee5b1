import type { AggregateType } from '../config/resolve.js';
import type { Sql } from '../db/queryable.js';
import { genericKindOf } from '../events/genericEvents.js';
import { foldInto, initialFold, type Folded } from '../projection/fold.js';
import { epochToIso } from '../store/eventRow.js';
import type { StoreTables } from '../store/tables.js';
import type { EventMetadata, EventSource, ProjectedEvent } from '../types.js';

/**
 * The projected side of a comparison: each aggregate's events that the legacy snapshot S
 * could see, folded cold from the first. An event is visible when the transaction that
 * made its change committed before S: `coalesce(source_xid, transaction_id)`, since a
 * listener's event is appended later, by the listener's own transaction, for a legacy
 * transaction whose id is `source_xid`. Snapshots of the projection are never used: a run
 * must not trust what it is checking.
 */

export interface VisibleFold {
  folded: Folded;
  /** The events folded, in sequence order, for explanations; only when read with `detail` (or for a type with a projector). */
  events: ProjectedEvent[];
  /** Event types folded that the projector had no handler for and skipped. */
  unhandled: Set<string>;
  /** When the last event was written (UTC microsecond ISO text): compared with the row's `updatedAt`. Empty unless detailed. */
  lastRecordedAt: string;
  /** Whether `events` and `lastRecordedAt` were read. */
  detailed: boolean;
}

/** An event as the full query sends it: position, id, sequence, type, version, payload, metadata, source, occurred and recorded (epoch text). */
type EventTuple = [number, string, number, string, number, unknown, EventMetadata, EventSource, string, string];
/** As the lean query sends it: sequence, type, version, payload, id. */
type LeanTuple = [number, string, number, unknown, string];

export type VisibleFoldResult = { folds: Map<string, VisibleFold> } | { problem: string };

/**
 * Folds the visible events of `ids`. A type without a projector folds by its column map,
 * which reads only each event's type, version and payload: unless `detail` is asked for
 * (to explain a mismatch), only those are read, a third of the server's work per event.
 * A projector's handlers get every field, so its types are always read in full.
 */
export async function foldVisible(
  sql: Sql,
  tables: StoreTables,
  aggregate: AggregateType,
  ids: readonly string[],
  snapshot: string,
  detail = false,
): Promise<VisibleFoldResult> {
  const folds = new Map<string, VisibleFold>();
  if (ids.length === 0) return { folds };
  const full = detail || aggregate.projector !== undefined;
  // One row per aggregate, its visible events as one JSON array in sequence order: parsed
  // by one JSON.parse each instead of a dozen driver strings per event (verify reads
  // millions). Positions and numbers are exact in JSON (bigints below 2^53, as before);
  // times travel as PostgreSQL's exact epoch text.
  const fields = full
    ? `e.global_position, e.event_id, e.sequence, e.event_type, e.schema_version, e.payload, e.metadata,
       e.source, extract(epoch FROM e.occurred_at)::text, extract(epoch FROM e.recorded_at)::text`
    : 'e.sequence, e.event_type, e.schema_version, e.payload, e.event_id';
  const rows = await sql.rows(
    `SELECT e.aggregate_id, json_agg(json_build_array(${fields}) ORDER BY e.sequence)::text
     FROM ${tables.events} e
     WHERE e.aggregate_type = $1::text AND e.aggregate_id = ANY ($2::text[])
       AND pg_visible_in_snapshot(coalesce(e.source_xid, e.transaction_id), $3::pg_snapshot)
     GROUP BY e.aggregate_id`,
    [aggregate.type, [...ids], snapshot],
  );
  const handlers = aggregate.projector?.handlers ?? {};
  for (const [aggregateId, json] of rows) {
    const fold: VisibleFold = { folded: initialFold(aggregate), events: [], unhandled: new Set(), lastRecordedAt: '', detailed: full };
    folds.set(aggregateId!, fold);
    let recordedAt = '';
    for (const tuple of JSON.parse(json!) as Array<EventTuple | LeanTuple>) {
      let event: ProjectedEvent;
      if (full) {
        const [globalPosition, eventId, sequence, type, schemaVersion, payload, metadata, source, occurredAt, recorded] = tuple as EventTuple;
        event = { globalPosition, eventId, aggregateType: aggregate.type, aggregateId: aggregateId!, sequence, type, schemaVersion, payload, metadata, source, occurredAt: epochToIso(occurredAt) };
        recordedAt = recorded;
      } else {
        // The column map's fold reads the type, version and payload (and the id, for an upcasting error); nothing else is kept.
        const [sequence, type, schemaVersion, payload, eventId] = tuple as LeanTuple;
        event = { globalPosition: 0, eventId, aggregateType: aggregate.type, aggregateId: aggregateId!, sequence, type, schemaVersion, payload, metadata: {}, source: 'app', occurredAt: '' };
      }
      if (event.sequence !== fold.folded.version + 1) {
        // Visible events always form a prefix of each history (appends to one aggregate commit in sequence order).
        return { problem: `${aggregate.type} ${aggregateId}: the events visible in the run's snapshot skip from sequence ${fold.folded.version} to ${event.sequence}` };
      }
      foldInto(aggregate, fold.folded, event);
      if (full) fold.events.push(event);
      if (!Object.hasOwn(handlers, event.type) && !genericKindOf(aggregate.tableLabel, event.type)) fold.unhandled.add(event.type);
    }
    if (full) fold.lastRecordedAt = epochToIso(recordedAt);
  }
  return { folds };
}

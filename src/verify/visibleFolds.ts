import type { AggregateType } from '../config/resolve.js';
import type { Sql } from '../db/queryable.js';
import { genericKindOf } from '../events/genericEvents.js';
import { foldInto, initialFold, type Folded } from '../projection/fold.js';
import { FOLD_COLUMN_COUNT, foldColumns, toProjectedEvent, utcMicros } from '../store/eventRow.js';
import type { StoreTables } from '../store/tables.js';
import type { ProjectedEvent } from '../types.js';

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
  /** The events folded, in sequence order (kept for explanations). */
  events: ProjectedEvent[];
  /** Event types folded that the projector had no handler for and skipped. */
  unhandled: Set<string>;
  /** When the last event was written (UTC microsecond ISO text): compared with the row's `updatedAt`. */
  lastRecordedAt: string;
}

export type VisibleFoldResult = { folds: Map<string, VisibleFold> } | { problem: string };

export async function foldVisible(
  sql: Sql,
  tables: StoreTables,
  aggregate: AggregateType,
  ids: readonly string[],
  snapshot: string,
): Promise<VisibleFoldResult> {
  const folds = new Map<string, VisibleFold>();
  if (ids.length === 0) return { folds };
  const rows = await sql.rows(
    `SELECT ${foldColumns(sql.rawText)}, ${utcMicros('e.recorded_at')} FROM ${tables.events} e
     WHERE e.aggregate_type = $1::text AND e.aggregate_id = ANY ($2::text[])
       AND pg_visible_in_snapshot(coalesce(e.source_xid, e.transaction_id), $3::pg_snapshot)
     ORDER BY e.aggregate_id, e.sequence`,
    [aggregate.type, [...ids], snapshot],
  );
  const handlers = aggregate.projector?.handlers ?? {};
  for (const row of rows) {
    const event = toProjectedEvent(row);
    let fold = folds.get(event.aggregateId);
    if (!fold) folds.set(event.aggregateId, (fold = { folded: initialFold(aggregate), events: [], unhandled: new Set(), lastRecordedAt: '' }));
    if (event.sequence !== fold.folded.version + 1) {
      // Visible events always form a prefix of each history (appends to one aggregate commit in sequence order).
      return { problem: `${aggregate.type} ${event.aggregateId}: the events visible in the run's snapshot skip from sequence ${fold.folded.version} to ${event.sequence}` };
    }
    foldInto(aggregate, fold.folded, event);
    fold.events.push(event);
    fold.lastRecordedAt = row[FOLD_COLUMN_COUNT]!;
    if (!Object.hasOwn(handlers, event.type) && !genericKindOf(aggregate.tableLabel, event.type)) fold.unhandled.add(event.type);
  }
  return { folds };
}

import type { AggregateType } from '../config/resolve.js';
import { byCanonicalId } from '../db/canonicalKey.js';
import type { Sql } from '../db/queryable.js';
import type { JsonValue } from '../events/json.js';
import { foldColumns, toProjectedEvent } from '../store/eventRow.js';
import { COPY_READ_FROM_EVENTS } from '../store/readForFold.js';
import type { StoreTables } from '../store/tables.js';
import { foldInto, initialFold, type Folded } from './fold.js';
import { foldFromStore } from './project.js';
import { codecOf } from './snapshots.js';

/**
 * Many aggregates' states, each at a given sequence (which must exist): their latest
 * usable snapshots in one query, then the events after them in one query per few thousand
 * events, instead of two round trips per aggregate. An updater pays this for each
 * aggregate of a batch that its cache does not hold (after a start, after a failed or
 * stale batch, or once the cache is full), which at a few hundred events a second was two
 * thirds of its queries; a resumed rebuild, for every aggregate it had written. An
 * aggregate with a long stretch (COPY_READ_FROM_EVENTS or more) goes alone through
 * foldFromStore, which streams it. Targets must name distinct aggregates.
 */

export interface FoldTarget {
  /** Canonical id. */
  aggregateId: string;
  /** The sequence to fold up to (it must exist; 0 means the initial state). */
  sequence: number;
}

/** Events per query when folding several aggregates together. */
const EVENTS_PER_QUERY = 5000;

export async function foldedAtMany(sql: Sql, tables: StoreTables, aggregate: AggregateType, targets: readonly FoldTarget[]): Promise<Map<string, Folded>> {
  const result = new Map<string, Folded>();
  if (new Set(targets.map((target) => target.aggregateId)).size !== targets.length) {
    throw new Error(`internal: foldedAtMany was given the same ${aggregate.type} twice`);
  }
  const needed = targets.filter((target) => target.sequence > 0);
  for (const target of targets) if (target.sequence === 0) result.set(target.aggregateId, initialFold(aggregate));
  if (needed.length === 0) return result;

  const snapshots = await latestSnapshots(sql, tables, aggregate, needed);
  let group: Array<{ target: FoldTarget; folded: Folded }> = [];
  let groupEvents = 0;
  const flush = async () => {
    if (group.length > 0) await foldGroup(sql, tables, aggregate, group);
    group = [];
    groupEvents = 0;
  };
  for (const target of needed) {
    const start = snapshots.get(target.aggregateId) ?? initialFold(aggregate);
    const folded: Folded = { state: start.state, version: start.version, deleted: start.deleted };
    result.set(target.aggregateId, folded);
    const stretch = target.sequence - start.version;
    if (stretch <= 0) continue;
    if (stretch >= COPY_READ_FROM_EVENTS) {
      result.set(target.aggregateId, await foldFromStore(sql, tables, aggregate, byCanonicalId(target.aggregateId), start, target.sequence));
      continue;
    }
    if (groupEvents + stretch > EVENTS_PER_QUERY) await flush();
    group.push({ target, folded });
    groupEvents += stretch;
  }
  await flush();
  for (const target of needed) {
    const folded = result.get(target.aggregateId)!;
    if (folded.version !== target.sequence) {
      throw new Error(`internal: ${aggregate.type} ${target.aggregateId} has no contiguous events up to ${target.sequence} in the store`);
    }
  }
  return result;
}

/** The latest snapshot of the current projection version at or before each target's sequence. */
async function latestSnapshots(sql: Sql, tables: StoreTables, aggregate: AggregateType, targets: readonly FoldTarget[]): Promise<Map<string, Folded>> {
  const rows = await sql.query<{ aggregate_id: string; sequence: string; state: string; deleted: boolean }>(
    `SELECT u.aggregate_id, s.sequence::text AS sequence, s.state #>> '{}' AS state, s.deleted
     FROM unnest($3::text[], $4::bigint[]) AS u(aggregate_id, up_to)
     CROSS JOIN LATERAL (
       SELECT s.sequence, s.state, s.deleted FROM ${tables.snapshots} s
       WHERE s.aggregate_type = $1::text AND s.aggregate_id = u.aggregate_id AND s.projector_version = $2::text AND s.sequence <= u.up_to
       ORDER BY s.sequence DESC LIMIT 1
     ) s`,
    [aggregate.type, aggregate.projectionVersion, targets.map((t) => t.aggregateId), targets.map((t) => String(t.sequence))],
  );
  const codec = codecOf(aggregate);
  return new Map(
    rows.map((row) => [row.aggregate_id, { state: codec.decode(JSON.parse(row.state) as JsonValue), version: Number(row.sequence), deleted: row.deleted }]),
  );
}

/** Folds each aggregate of the group on from its state up to its target, with one read of all their events. */
async function foldGroup(sql: Sql, tables: StoreTables, aggregate: AggregateType, group: ReadonlyArray<{ target: FoldTarget; folded: Folded }>): Promise<void> {
  const byId = new Map(group.map((entry) => [entry.target.aggregateId, entry.folded]));
  const rows = await sql.rows(
    `SELECT ${foldColumns(sql.rawText)} FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS u(aggregate_id, after, up_to)
     JOIN ${tables.events} e ON e.aggregate_type = $1::text AND e.aggregate_id = u.aggregate_id AND e.sequence > u.after AND e.sequence <= u.up_to
     ORDER BY e.aggregate_id, e.sequence`,
    [
      aggregate.type,
      group.map((entry) => entry.target.aggregateId),
      group.map((entry) => String(entry.folded.version)),
      group.map((entry) => String(entry.target.sequence)),
    ],
  );
  for (const row of rows) {
    const event = toProjectedEvent(row);
    foldInto(aggregate, byId.get(event.aggregateId)!, event);
  }
}

import type { AggregateType } from '../config/resolve.js';
import type { AggregateRef } from '../db/canonicalKey.js';
import { Params } from '../db/params.js';
import type { Sql } from '../db/queryable.js';
import type { JsonValue } from '../events/json.js';
import type { StoreTables } from '../store/tables.js';
import type { Folded } from './fold.js';
import { defaultStateCodec, type StateCodec } from './stateCodec.js';

/**
 * Snapshots: an aggregate's folded state at a sequence, so projecting replays only the
 * events after it. Each is tagged with the aggregate type's projection version (projector
 * version and column map): a changed projector never reads an older one's snapshots.
 */

export function codecOf(aggregate: AggregateType): StateCodec<unknown> {
  return aggregate.projector?.codec ?? defaultStateCodec;
}

export interface SnapshotToWrite {
  /** Canonical id. */
  aggregateId: string;
  folded: Folded;
}

/**
 * Writes snapshots (one statement for all); an existing one at the same sequence is kept.
 * The encoded state is stored as a jsonb string holding its JSON text, not as a jsonb
 * object: jsonb reorders keys, and a restored state must equal the folded one exactly.
 */
export async function writeSnapshots(sql: Sql, tables: StoreTables, aggregate: AggregateType, snapshots: readonly SnapshotToWrite[]): Promise<void> {
  if (snapshots.length === 0) return;
  const params = new Params();
  await sql.query(snapshotRows(tables, aggregate, snapshots, params), params.values);
}

/** The INSERT of writeSnapshots, its values added to `params`; `guard` as in upsertRows. */
export function snapshotRows(tables: StoreTables, aggregate: AggregateType, snapshots: readonly SnapshotToWrite[], params: Params, guard?: string): string {
  const codec = codecOf(aggregate);
  const arrays = [
    params.add(snapshots.map((s) => s.aggregateId), 'text[]'),
    params.add(snapshots.map((s) => String(s.folded.version)), 'bigint[]'),
    params.add(snapshots.map((s) => JSON.stringify(codec.encode(s.folded.state))), 'text[]'),
    params.add(snapshots.map((s) => s.folded.deleted), 'boolean[]'),
  ];
  return `INSERT INTO ${tables.snapshots} (aggregate_type, aggregate_id, projector_version, sequence, state, deleted)
     SELECT ${params.add(aggregate.type, 'text')}, s.aggregate_id, ${params.add(aggregate.projectionVersion, 'text')}, s.sequence, to_jsonb(s.state), s.deleted
     FROM unnest(${arrays.join(', ')}) AS s(aggregate_id, sequence, state, deleted)${guard ? ` WHERE ${guard}` : ''}
     ON CONFLICT DO NOTHING`;
}

/** The latest snapshot of this projection version at or before `atOrBefore`, if any. */
export async function latestSnapshot(
  sql: Sql,
  tables: StoreTables,
  aggregate: AggregateType,
  ref: AggregateRef,
  atOrBefore: number,
): Promise<Folded | undefined> {
  const key = ref.sql(4);
  const [row] = await sql.query<{ sequence: string; state: string; deleted: boolean }>(
    `SELECT s.sequence::text AS sequence, s.state #>> '{}' AS state, s.deleted FROM ${tables.snapshots} s
     WHERE s.aggregate_type = $1::text AND s.aggregate_id = ${key} AND s.projector_version = $2::text AND s.sequence <= $3::bigint
     ORDER BY s.sequence DESC LIMIT 1`,
    [aggregate.type, aggregate.projectionVersion, String(atOrBefore), ...ref.params],
  );
  if (!row) return undefined;
  return { state: codecOf(aggregate).decode(JSON.parse(row.state) as JsonValue), version: Number(row.sequence), deleted: row.deleted };
}

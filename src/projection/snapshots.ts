import type { AggregateType } from '../config/resolve.js';
import type { AggregateRef } from '../db/canonicalKey.js';
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

function codecOf(aggregate: AggregateType): StateCodec<unknown> {
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
  const codec = codecOf(aggregate);
  await sql.query(
    `INSERT INTO ${tables.snapshots} (aggregate_type, aggregate_id, projector_version, sequence, state, deleted)
     SELECT $1::text, s.aggregate_id, $2::text, s.sequence, to_jsonb(s.state), s.deleted
     FROM unnest($3::text[], $4::bigint[], $5::text[], $6::boolean[]) AS s(aggregate_id, sequence, state, deleted)
     ON CONFLICT DO NOTHING`,
    [
      aggregate.type,
      aggregate.projectionVersion,
      snapshots.map((s) => s.aggregateId),
      snapshots.map((s) => String(s.folded.version)),
      snapshots.map((s) => JSON.stringify(codec.encode(s.folded.state))),
      snapshots.map((s) => s.folded.deleted),
    ],
  );
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

import type { AggregateType } from '../config/resolve.js';
import type { Sql } from '../db/queryable.js';
import { cachedStatement, manyInputSql, manyValues, type ManyRow } from './appendMany.js';
import { GENESIS_HASH, type StoreTables } from './tables.js';

/**
 * The baseline import's statement: each row is the first event of an aggregate that has
 * none, so its sequence is 1 and its hash is chained from the genesis hash, with none of
 * appendMany's work of locking heads and walking each aggregate's chain. The heads are
 * inserted first; an aggregate that already has a head is not overwritten, and the
 * statement writes no event at all, so the caller can refuse the batch with its id.
 * Rows must name distinct aggregates.
 */

const statements: Parameters<typeof cachedStatement>[0] = new Map();

function statementFor(tables: StoreTables, aggregate: AggregateType): { name: string; text: string } {
  return cachedStatement(statements, tables, [aggregate], 'hindsight_opening', () => `
WITH input AS (
  ${manyInputSql([aggregate])}
),
hashed AS (
  SELECT input.*, ${tables.eventHash}(${GENESIS_HASH}, event_id, aggregate_type, aggregate_id, 1, event_type, schema_version, payload,
           metadata, source, source_commit_lsn, source_ordinal, source_xid, pg_current_xact_id(), occurred_at, now()) AS hash
  FROM input
),
heads AS (
  INSERT INTO ${tables.heads} (aggregate_type, aggregate_id, version, last_hash)
  SELECT aggregate_type, aggregate_id, 1, hash FROM hashed ORDER BY aggregate_id
  ON CONFLICT (aggregate_type, aggregate_id) DO NOTHING
  RETURNING aggregate_id
),
taken AS (
  SELECT (SELECT count(*) FROM heads) = (SELECT count(*) FROM hashed) AS all_new
),
events AS (
  INSERT INTO ${tables.events} (event_id, aggregate_type, aggregate_id, sequence, event_type, schema_version, payload, metadata,
      source, source_commit_lsn, source_ordinal, source_xid, transaction_id, occurred_at, recorded_at, hash)
  SELECT e.event_id, e.aggregate_type, e.aggregate_id, 1, e.event_type, e.schema_version, e.payload, e.metadata, e.source,
         e.source_commit_lsn, e.source_ordinal, e.source_xid, pg_current_xact_id(), e.occurred_at, now(), e.hash
  FROM hashed e, taken WHERE taken.all_new
  ORDER BY e.n
  RETURNING 1
)
SELECT (SELECT count(*) FROM events)::int AS appended,
       coalesce((SELECT min(aggregate_id) FROM hashed WHERE aggregate_id NOT IN (SELECT aggregate_id FROM heads)),
                (SELECT min(aggregate_id) FROM hashed GROUP BY aggregate_id HAVING count(*) > 1 LIMIT 1)) AS existing`);
}

/**
 * Appends each row as the opening event (sequence 1) of its aggregate, in one statement.
 * `existing` names an aggregate that already had events, or came twice: then no event was
 * appended, and the caller must roll back (the heads of the others were inserted).
 */
export async function appendOpening(sql: Sql, tables: StoreTables, aggregate: AggregateType, rows: readonly ManyRow[]): Promise<{ existing?: string }> {
  if (rows.length === 0) return {};
  const statement = statementFor(tables, aggregate);
  const values = manyValues([aggregate], rows);
  const [result] = await sql.query<{ appended: number; existing: string | null }>(statement.text, values, statement.name);
  if (result!.appended === rows.length) return {};
  // Refused: an aggregate had a head already, or came twice in the batch (a key that is not unique).
  return { existing: result!.existing ?? '(an aggregate of this batch)' };
}

import { createHash } from 'node:crypto';
import type { AggregateType } from '../config/resolve.js';
import { canonicalKeySql } from '../db/canonicalKey.js';
import type { Sql } from '../db/queryable.js';
import { rowArrays } from './appendEvents.js';
import type { ManyRow } from './appendMany.js';
import { GENESIS_HASH, type StoreTables } from './tables.js';

/**
 * The baseline import's statement: each row is the first event of an aggregate that has
 * none, so its sequence is 1 and its hash is chained from the genesis hash, with none of
 * appendMany's work of locking heads and walking each aggregate's chain. The heads are
 * inserted first; an aggregate that already has a head is not overwritten, and the
 * statement writes no event at all, so the caller can refuse the batch with its id.
 * Rows must name distinct aggregates.
 */

const statements = new WeakMap<AggregateType, Map<string, { name: string; text: string }>>();

function statementFor(tables: StoreTables, aggregate: AggregateType): { name: string; text: string } {
  let byTables = statements.get(aggregate);
  if (!byTables) statements.set(aggregate, (byTables = new Map()));
  let statement = byTables.get(tables.schema);
  if (statement) return statement;
  const keyArrays = aggregate.key.map((_, i) => `$${12 + i}::text[]`);
  const keyAliases = aggregate.key.map((_, i) => `k${i}`);
  const canonical = canonicalKeySql(aggregate.key, keyAliases.map((k) => `i.${k}`));
  // $1 type, $2..$11 the events' fields, then one text[] per key column, as appendMany.
  const text = `
WITH input AS (
  SELECT i.n, i.event_id::uuid AS event_id, i.event_type, i.schema_version, i.payload::jsonb AS payload, i.metadata::jsonb AS metadata,
         coalesce(i.occurred_at::timestamptz, now()) AS occurred_at, i.source, i.source_commit_lsn::pg_lsn AS source_commit_lsn,
         i.source_ordinal, i.source_xid::xid8 AS source_xid, ${canonical} AS aggregate_id
  FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int[], $11::text[], ${keyArrays.join(', ')})
       WITH ORDINALITY AS i(event_id, event_type, schema_version, payload, metadata, occurred_at, source, source_commit_lsn, source_ordinal,
                            source_xid, ${keyAliases.join(', ')}, n)
),
hashed AS (
  SELECT input.*, ${tables.eventHash}(${GENESIS_HASH}, event_id, $1::text, aggregate_id, 1, event_type, schema_version, payload,
           metadata, source, source_commit_lsn, source_ordinal, source_xid, pg_current_xact_id(), occurred_at, now()) AS hash
  FROM input
),
heads AS (
  INSERT INTO ${tables.heads} (aggregate_type, aggregate_id, version, last_hash)
  SELECT $1::text, aggregate_id, 1, hash FROM hashed ORDER BY aggregate_id
  ON CONFLICT (aggregate_type, aggregate_id) DO NOTHING
  RETURNING aggregate_id
),
taken AS (
  SELECT (SELECT count(*) FROM heads) = (SELECT count(*) FROM hashed) AS all_new
),
events AS (
  INSERT INTO ${tables.events} (event_id, aggregate_type, aggregate_id, sequence, event_type, schema_version, payload, metadata,
      source, source_commit_lsn, source_ordinal, source_xid, transaction_id, occurred_at, recorded_at, hash)
  SELECT e.event_id, $1::text, e.aggregate_id, 1, e.event_type, e.schema_version, e.payload, e.metadata, e.source,
         e.source_commit_lsn, e.source_ordinal, e.source_xid, pg_current_xact_id(), e.occurred_at, now(), e.hash
  FROM hashed e, taken WHERE taken.all_new
  ORDER BY e.n
  RETURNING 1
)
SELECT (SELECT count(*) FROM events)::int AS appended,
       coalesce((SELECT min(aggregate_id) FROM hashed WHERE aggregate_id NOT IN (SELECT aggregate_id FROM heads)),
                (SELECT min(aggregate_id) FROM hashed GROUP BY aggregate_id HAVING count(*) > 1 LIMIT 1)) AS existing`;
  statement = { name: `hindsight_opening_${createHash('sha256').update(text).digest('hex').slice(0, 16)}`, text };
  byTables.set(tables.schema, statement);
  return statement;
}

/**
 * Appends each row as the opening event (sequence 1) of its aggregate, in one statement.
 * `existing` names an aggregate that already had events, or came twice: then no event was
 * appended, and the caller must roll back (the heads of the others were inserted).
 */
export async function appendOpening(sql: Sql, tables: StoreTables, aggregate: AggregateType, rows: readonly ManyRow[]): Promise<{ existing?: string }> {
  if (rows.length === 0) return {};
  const statement = statementFor(tables, aggregate);
  const values: unknown[] = [aggregate.type, ...rowArrays(rows), ...aggregate.key.map((_, i) => rows.map((r) => r.key[i]))];
  const [result] = await sql.query<{ appended: number; existing: string | null }>(statement.text, values, statement.name);
  if (result!.appended === rows.length) return {};
  // Refused: an aggregate had a head already, or came twice in the batch (a key that is not unique).
  return { existing: result!.existing ?? '(an aggregate of this batch)' };
}

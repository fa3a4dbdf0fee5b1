import { createHash } from 'node:crypto';
import type { AggregateType } from '../config/resolve.js';
import { canonicalKeySql } from '../db/canonicalKey.js';
import type { Sql } from '../db/queryable.js';
import { rowArrays, type AppendRow } from './appendEvents.js';
import { GENESIS_HASH, type StoreTables } from './tables.js';

/**
 * Appends events to many aggregates of one type in one statement, in the order given
 * (each aggregate's events get the next sequences after its head, chained from its last
 * hash). For writers that are the only writer of their type and need no expected
 * version: the listener (a source transaction's events, thousands at a time) and the
 * baseline import. Heads are locked in canonical id order, so two such statements never
 * deadlock, and an app append to the same aggregate waits rather than interleaves.
 */

export interface ManyRow extends AppendRow {
  /** The key columns' text, in key order. */
  key: readonly string[];
}

export interface AppendedRow {
  aggregateId: string;
  sequence: number;
}

type StatementCache = WeakMap<AggregateType, Map<string, { name: string; text: string }>>;
const statements: StatementCache = new WeakMap();

/** A many-row statement's text, built once per aggregate type and schema, and its prepared name. */
export function cachedStatement(cache: StatementCache, tables: StoreTables, aggregate: AggregateType, prefix: string, build: () => string): { name: string; text: string } {
  let byTables = cache.get(aggregate);
  if (!byTables) cache.set(aggregate, (byTables = new Map()));
  let statement = byTables.get(tables.schema);
  if (statement) return statement;
  const text = build();
  statement = { name: `${prefix}_${createHash('sha256').update(text).digest('hex').slice(0, 16)}`, text };
  byTables.set(tables.schema, statement);
  return statement;
}

/** The input rows of a many-row append, with their canonical ids: $2..$11 the events' fields, then one text[] per key column. */
export function manyInputSql(aggregate: AggregateType): string {
  const keyArrays = aggregate.key.map((_, i) => `$${12 + i}::text[]`);
  const keyAliases = aggregate.key.map((_, i) => `k${i}`);
  const canonical = canonicalKeySql(aggregate.key, keyAliases.map((k) => `i.${k}`));
  return `SELECT i.n, i.event_id::uuid AS event_id, i.event_type, i.schema_version, i.payload::jsonb AS payload, i.metadata::jsonb AS metadata,
         coalesce(i.occurred_at::timestamptz, now()) AS occurred_at, i.source, i.source_commit_lsn::pg_lsn AS source_commit_lsn,
         i.source_ordinal, i.source_xid::xid8 AS source_xid, ${canonical} AS aggregate_id
  FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int[], $11::text[], ${keyArrays.join(', ')})
       WITH ORDINALITY AS i(event_id, event_type, schema_version, payload, metadata, occurred_at, source, source_commit_lsn, source_ordinal,
                            source_xid, ${keyAliases.join(', ')}, n)`;
}

/** The bind values of a many-row append: $1 the type, the events' fields, the key columns. */
export function manyValues(aggregate: AggregateType, rows: readonly ManyRow[]): unknown[] {
  return [aggregate.type, ...rowArrays(rows), ...aggregate.key.map((_, i) => rows.map((r) => r.key[i]))];
}

function statementFor(tables: StoreTables, aggregate: AggregateType): { name: string; text: string } {
  return cachedStatement(statements, tables, aggregate, 'hindsight_many', () => `
WITH RECURSIVE input AS (
  ${manyInputSql(aggregate)}
),
numbered AS (
  SELECT input.*, row_number() OVER (PARTITION BY aggregate_id ORDER BY n) AS k FROM input
),
locked AS (
  SELECT h.aggregate_id, h.version, h.last_hash FROM ${tables.heads} h
  WHERE h.aggregate_type = $1::text AND h.aggregate_id IN (SELECT aggregate_id FROM input)
  ORDER BY h.aggregate_id
  FOR UPDATE
),
chain AS (
  SELECT a.aggregate_id, 0::bigint AS k, coalesce(l.version, 0) AS sequence, coalesce(l.last_hash, ${GENESIS_HASH}) AS hash
  FROM (SELECT DISTINCT aggregate_id FROM input) a LEFT JOIN locked l ON l.aggregate_id = a.aggregate_id
  UNION ALL
  SELECT c.aggregate_id, c.k + 1, c.sequence + 1,
         ${tables.eventHash}(c.hash, e.event_id, $1::text, c.aggregate_id, c.sequence + 1, e.event_type, e.schema_version, e.payload,
           e.metadata, e.source, e.source_commit_lsn, e.source_ordinal, e.source_xid, pg_current_xact_id(), e.occurred_at, now())
  FROM chain c JOIN numbered e ON e.aggregate_id = c.aggregate_id AND e.k = c.k + 1
),
last_link AS (
  SELECT DISTINCT ON (aggregate_id) aggregate_id, sequence, hash FROM chain ORDER BY aggregate_id, k DESC
),
heads AS (
  INSERT INTO ${tables.heads} AS h (aggregate_type, aggregate_id, version, last_hash)
  SELECT $1::text, aggregate_id, sequence, hash FROM last_link
  ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET version = excluded.version, last_hash = excluded.last_hash
  RETURNING 1
)
-- (the heads CTE runs once whether or not it is read: data-modifying CTEs always do)
INSERT INTO ${tables.events} (event_id, aggregate_type, aggregate_id, sequence, event_type, schema_version, payload, metadata,
    source, source_commit_lsn, source_ordinal, source_xid, transaction_id, occurred_at, recorded_at, hash)
SELECT e.event_id, $1::text, e.aggregate_id, c.sequence, e.event_type, e.schema_version, e.payload, e.metadata, e.source,
       e.source_commit_lsn, e.source_ordinal, e.source_xid, pg_current_xact_id(), e.occurred_at, now(), c.hash
FROM chain c JOIN numbered e ON e.aggregate_id = c.aggregate_id AND e.k = c.k
ORDER BY e.n
RETURNING aggregate_id, sequence::text AS sequence`);
}

/** Appends `rows` (any aggregates of `aggregate`'s type) in one statement; returns each event's aggregate and sequence, in order. */
export async function appendMany(sql: Sql, tables: StoreTables, aggregate: AggregateType, rows: readonly ManyRow[]): Promise<AppendedRow[]> {
  if (rows.length === 0) return [];
  const statement = statementFor(tables, aggregate);
  const values = manyValues(aggregate, rows);
  const appended = await sql.query<{ aggregate_id: string; sequence: string }>(statement.text, values, statement.name);
  return appended.map((r) => ({ aggregateId: r.aggregate_id, sequence: Number(r.sequence) }));
}

import { createHash } from 'node:crypto';
import type { AggregateType } from '../config/resolve.js';
import { canonicalKeySql } from '../db/canonicalKey.js';
import type { Sql } from '../db/queryable.js';
import { rowArrays, type AppendRow } from './appendEvents.js';
import { GENESIS_HASH, type StoreTables } from './tables.js';

/**
 * Appends events to many aggregates, of one type or several, in one statement, in the
 * order given (each aggregate's events get the next sequences after its head, chained
 * from its last hash; global positions follow the order of the rows). For writers that
 * are the only writer of their types and need no expected version: the listener (a
 * group of source transactions, thousands of events at a time, whatever tables they
 * touched) and the baseline import. Heads are locked in (type, canonical id) order, so
 * two such statements never deadlock, and an app append to the same aggregate waits
 * rather than interleaves.
 */

export interface ManyRow extends AppendRow {
  /** The key columns' text, in key order. */
  key: readonly string[];
}

/** A row of a statement that may span types: the row and its aggregate type. */
export interface TypedRow extends ManyRow {
  aggregate: AggregateType;
}

export interface AppendedRow {
  aggregateType: string;
  aggregateId: string;
  sequence: number;
}

type StatementCache = Map<string, { name: string; text: string }>;
const statements: StatementCache = new Map();

/**
 * A many-row statement's text, built once per set of types (their key columns decide the
 * canonical-id SQL) and schema, and its prepared name.
 */
export function cachedStatement(cache: StatementCache, tables: StoreTables, types: readonly AggregateType[], prefix: string, build: () => string): { name: string; text: string } {
  const cacheKey = [tables.schema, ...types.map((t) => `${t.type}\u0000${t.key.map((k) => k.type.sql).join(',')}`)].join('\u0001');
  let statement = cache.get(cacheKey);
  if (statement) return statement;
  const text = build();
  statement = { name: `${prefix}_${createHash('sha256').update(text).digest('hex').slice(0, 16)}`, text };
  cache.set(cacheKey, statement);
  return statement;
}

/**
 * The input rows of a many-row append, with their types and canonical ids. $1 is the
 * statement's type names, $2 each row's type (an index into $1, from 1), $3..$12 the
 * events' fields, then one text[] per key column position (null past a type's own key).
 */
export function manyInputSql(types: readonly AggregateType[]): string {
  const width = Math.max(...types.map((t) => t.key.length));
  const keyArrays = Array.from({ length: width }, (_, i) => `$${13 + i}::text[]`);
  const keyAliases = Array.from({ length: width }, (_, i) => `k${i}`);
  const canonicalOf = (t: AggregateType) => canonicalKeySql(t.key, t.key.map((_, i) => `i.k${i}`));
  const canonical = types.length === 1 ? canonicalOf(types[0]!) : `CASE i.t ${types.map((t, n) => `WHEN ${n + 1} THEN ${canonicalOf(t)}`).join(' ')} END`;
  return `SELECT i.n, ($1::text[])[i.t] AS aggregate_type, i.event_id::uuid AS event_id, i.event_type, i.schema_version, i.payload::jsonb AS payload,
         i.metadata::jsonb AS metadata, coalesce(i.occurred_at::timestamptz, now()) AS occurred_at, i.source,
         i.source_commit_lsn::pg_lsn AS source_commit_lsn, i.source_ordinal, i.source_xid::xid8 AS source_xid, ${canonical} AS aggregate_id
  FROM unnest($2::int[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[], $12::text[], ${keyArrays.join(', ')})
       WITH ORDINALITY AS i(t, event_id, event_type, schema_version, payload, metadata, occurred_at, source, source_commit_lsn, source_ordinal,
                            source_xid, ${keyAliases.join(', ')}, n)`;
}

/** The bind values of a many-row append over `types`: the type names, each row's type index, the events' fields, the key columns. */
export function manyValues(types: readonly AggregateType[], rows: readonly ManyRow[], typeOf: (row: ManyRow) => AggregateType = () => types[0]!): unknown[] {
  const index = new Map(types.map((t, i) => [t, i + 1]));
  const width = Math.max(...types.map((t) => t.key.length));
  return [
    types.map((t) => t.type),
    rows.map((r) => index.get(typeOf(r))!),
    ...rowArrays(rows),
    ...Array.from({ length: width }, (_, i) => rows.map((r) => r.key[i] ?? null)),
  ];
}

function statementFor(tables: StoreTables, types: readonly AggregateType[]): { name: string; text: string } {
  return cachedStatement(statements, tables, types, 'hindsight_many', () => `
WITH RECURSIVE input AS (
  ${manyInputSql(types)}
),
numbered AS (
  SELECT input.*, row_number() OVER (PARTITION BY aggregate_type, aggregate_id ORDER BY n) AS k FROM input
),
locked AS (
  SELECT h.aggregate_type, h.aggregate_id, h.version, h.last_hash FROM ${tables.heads} h
  WHERE (h.aggregate_type, h.aggregate_id) IN (SELECT aggregate_type, aggregate_id FROM input)
  ORDER BY h.aggregate_type, h.aggregate_id
  FOR UPDATE
),
chain AS (
  SELECT a.aggregate_type, a.aggregate_id, 0::bigint AS k, coalesce(l.version, 0) AS sequence, coalesce(l.last_hash, ${GENESIS_HASH}) AS hash
  FROM (SELECT DISTINCT aggregate_type, aggregate_id FROM input) a
  LEFT JOIN locked l ON l.aggregate_type = a.aggregate_type AND l.aggregate_id = a.aggregate_id
  UNION ALL
  SELECT c.aggregate_type, c.aggregate_id, c.k + 1, c.sequence + 1,
         ${tables.eventHash}(c.hash, e.event_id, c.aggregate_type, c.aggregate_id, c.sequence + 1, e.event_type, e.schema_version, e.payload,
           e.metadata, e.source, e.source_commit_lsn, e.source_ordinal, e.source_xid, pg_current_xact_id(), e.occurred_at, now())
  FROM chain c JOIN numbered e ON e.aggregate_type = c.aggregate_type AND e.aggregate_id = c.aggregate_id AND e.k = c.k + 1
),
last_link AS (
  SELECT DISTINCT ON (aggregate_type, aggregate_id) aggregate_type, aggregate_id, sequence, hash FROM chain ORDER BY aggregate_type, aggregate_id, k DESC
),
heads AS (
  INSERT INTO ${tables.heads} AS h (aggregate_type, aggregate_id, version, last_hash)
  SELECT aggregate_type, aggregate_id, sequence, hash FROM last_link
  ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET version = excluded.version, last_hash = excluded.last_hash
  RETURNING 1
)
-- (the heads CTE runs once whether or not it is read: data-modifying CTEs always do)
INSERT INTO ${tables.events} (event_id, aggregate_type, aggregate_id, sequence, event_type, schema_version, payload, metadata,
    source, source_commit_lsn, source_ordinal, source_xid, transaction_id, occurred_at, recorded_at, hash)
SELECT e.event_id, e.aggregate_type, e.aggregate_id, c.sequence, e.event_type, e.schema_version, e.payload, e.metadata, e.source,
       e.source_commit_lsn, e.source_ordinal, e.source_xid, pg_current_xact_id(), e.occurred_at, now(), c.hash
FROM chain c JOIN numbered e ON e.aggregate_type = c.aggregate_type AND e.aggregate_id = c.aggregate_id AND e.k = c.k
ORDER BY e.n
RETURNING aggregate_type, aggregate_id, sequence::text AS sequence`);
}

/**
 * Appends `rows` (any aggregates, of any types) in one statement; returns each event's
 * aggregate and sequence, in order.
 */
export async function appendMany(sql: Sql, tables: StoreTables, rows: readonly TypedRow[]): Promise<AppendedRow[]> {
  if (rows.length === 0) return [];
  // The statement is per set of types: sorted by name, so one set is one prepared statement.
  const types = [...new Set(rows.map((r) => r.aggregate))].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  const statement = statementFor(tables, types);
  const values = manyValues(types, rows, (r) => (r as TypedRow).aggregate);
  const appended = await sql.query<{ aggregate_type: string; aggregate_id: string; sequence: string }>(statement.text, values, statement.name);
  return appended.map((r) => ({ aggregateType: r.aggregate_type, aggregateId: r.aggregate_id, sequence: Number(r.sequence) }));
}

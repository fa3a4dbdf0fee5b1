import { createHash } from 'node:crypto';
import type { AggregateType } from '../config/resolve.js';
import { canonicalKeySql } from '../db/canonicalKey.js';
import type { Sql } from '../db/queryable.js';
import { SQLSTATE, sqlStateOf } from '../db/sqlState.js';
import { ConcurrencyError } from '../errors.js';
import type { EventSource, ExpectedVersion } from '../types.js';
import { GENESIS_HASH, type StoreTables } from './tables.js';

/**
 * The one statement through which every event is written (app appends, operators'
 * `hindsight append`, later the listener and the baseline import).
 *
 * In one round trip it locks the aggregate's head row, checks the expected version,
 * chains sha256 over the batch from the head's last hash, updates (or creates) the head
 * and inserts the events with sequences head+1..head+n. The head row lock orders writers
 * of one aggregate; nothing is shared between aggregates. Every hashed value is computed
 * in the statement and inserted explicitly, so the stored row is exactly what was hashed.
 */

/** One event, validated and serialised, ready for the statement. */
export interface AppendRow {
  eventId: string;
  type: string;
  schemaVersion: number;
  /** JSON text. */
  payload: string;
  /** JSON text of an object. */
  metadata: string;
  /** Timestamptz text with an offset, or null for now(). */
  occurredAt: string | null;
  source: EventSource;
  sourceCommitLsn: string | null;
  sourceOrdinal: number | null;
  sourceXid: string | null;
}

export interface AppendOutcome {
  /** The canonical aggregate id, as stored. */
  aggregateId: string;
  /** The version before the append; the events got sequences fromVersion+1 .. fromVersion+n. */
  fromVersion: number;
  toVersion: number;
}

const statements = new WeakMap<AggregateType, Map<string, { name: string; text: string }>>();

function appendStatement(tables: StoreTables, aggregate: AggregateType): { name: string; text: string } {
  let bySchema = statements.get(aggregate);
  if (!bySchema) statements.set(aggregate, (bySchema = new Map()));
  const cached = bySchema.get(tables.schema);
  if (cached) return cached;

  const keyParams = aggregate.key.map((_, i) => `$${14 + i}::text`);
  const key = canonicalKeySql(aggregate.key, keyParams);
  const text = `
WITH RECURSIVE input AS (
  SELECT i.n, i.event_id::uuid AS event_id, i.event_type, i.schema_version, i.payload::jsonb AS payload,
         i.metadata::jsonb AS metadata, coalesce(i.occurred_at::timestamptz, now()) AS occurred_at,
         i.source, i.source_commit_lsn::pg_lsn AS source_commit_lsn, i.source_ordinal,
         i.source_xid::xid8 AS source_xid
  FROM unnest($4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int[], $13::text[])
       WITH ORDINALITY AS i(event_id, event_type, schema_version, payload, metadata, occurred_at, source,
                            source_commit_lsn, source_ordinal, source_xid, n)
),
target AS (
  SELECT $1::text AS aggregate_type, ${key} AS aggregate_id, pg_current_xact_id() AS transaction_id, now() AS recorded_at
),
locked AS (
  SELECT h.version, h.last_hash FROM ${tables.heads} h
  WHERE h.aggregate_type = $1::text AND h.aggregate_id = ${key}
  FOR UPDATE
),
decision AS (
  SELECT s.head_exists, s.current_version, s.current_hash,
         CASE WHEN s.head_exists THEN $2::text IN ('any', 'exists') OR ($2::text = 'exact' AND s.current_version = $3::bigint)
              ELSE $2::text IN ('any', 'none') END AS allowed
  FROM (SELECT EXISTS (SELECT 1 FROM locked) AS head_exists,
               coalesce((SELECT version FROM locked), 0) AS current_version,
               coalesce((SELECT last_hash FROM locked), ${GENESIS_HASH}) AS current_hash) s
),
chain AS (
  SELECT 0::bigint AS n, d.current_version AS sequence, d.current_hash AS hash FROM decision d WHERE d.allowed
  UNION ALL
  SELECT i.n, c.sequence + 1,
         ${tables.eventHash}(c.hash, i.event_id, t.aggregate_type, t.aggregate_id, c.sequence + 1, i.event_type,
           i.schema_version, i.payload, i.metadata, i.source, i.source_commit_lsn, i.source_ordinal, i.source_xid,
           t.transaction_id, i.occurred_at, t.recorded_at)
  FROM chain c JOIN input i ON i.n = c.n + 1 CROSS JOIN target t
),
last_link AS (SELECT sequence, hash FROM chain ORDER BY n DESC LIMIT 1),
head_update AS (
  UPDATE ${tables.heads} h SET version = l.sequence, last_hash = l.hash
  FROM last_link l, decision d
  WHERE d.allowed AND d.head_exists AND h.aggregate_type = $1::text AND h.aggregate_id = ${key}
  RETURNING 1
),
head_insert AS (
  INSERT INTO ${tables.heads} (aggregate_type, aggregate_id, version, last_hash)
  SELECT t.aggregate_type, t.aggregate_id, l.sequence, l.hash FROM target t, last_link l, decision d
  WHERE d.allowed AND NOT d.head_exists
  ON CONFLICT (aggregate_type, aggregate_id) DO NOTHING
  RETURNING 1
),
appended AS (
  INSERT INTO ${tables.events} (event_id, aggregate_type, aggregate_id, sequence, event_type, schema_version, payload,
    metadata, source, source_commit_lsn, source_ordinal, source_xid, transaction_id, occurred_at, recorded_at, hash)
  SELECT i.event_id, t.aggregate_type, t.aggregate_id, c.sequence, i.event_type, i.schema_version, i.payload,
         i.metadata, i.source, i.source_commit_lsn, i.source_ordinal, i.source_xid, t.transaction_id, i.occurred_at,
         t.recorded_at, c.hash
  FROM chain c JOIN input i ON i.n = c.n CROSS JOIN target t
  -- Data-modifying CTEs do not gate each other: insert only if the head write happened,
  -- or a racer that lost the head insert would still insert its events.
  WHERE EXISTS (SELECT 1 FROM head_update) OR EXISTS (SELECT 1 FROM head_insert)
  ORDER BY c.n
  RETURNING 1
)
SELECT d.head_exists, d.current_version::text AS current_version, d.allowed,
       (SELECT count(*) FROM appended)::int AS appended, (SELECT aggregate_id FROM target) AS aggregate_id
FROM decision d`;
  const statement = { name: `hindsight_append_${createHash('sha256').update(text).digest('hex').slice(0, 16)}`, text };
  bySchema.set(tables.schema, statement);
  return statement;
}

interface DecisionRow {
  head_exists: boolean;
  current_version: string;
  allowed: boolean;
  appended: number;
  aggregate_id: string;
}

/**
 * Appends `rows` to one aggregate if its version matches `expected`; throws a
 * ConcurrencyError otherwise, also for serialization failures and deadlocks, which are
 * the same retryable conflict seen from REPEATABLE READ or SERIALIZABLE transactions.
 */
export async function appendEvents(
  sql: Sql,
  tables: StoreTables,
  aggregate: AggregateType,
  keyParams: readonly string[],
  displayId: string,
  rows: readonly AppendRow[],
  expected: ExpectedVersion,
): Promise<AppendOutcome> {
  const statement = appendStatement(tables, aggregate);
  const kind = typeof expected === 'number' ? (expected === 0 ? 'none' : 'exact') : expected;
  const values = [
    aggregate.type,
    kind,
    typeof expected === 'number' ? String(expected) : null,
    rows.map((r) => r.eventId),
    rows.map((r) => r.type),
    rows.map((r) => r.schemaVersion),
    rows.map((r) => r.payload),
    rows.map((r) => r.metadata),
    rows.map((r) => r.occurredAt),
    rows.map((r) => r.source),
    rows.map((r) => r.sourceCommitLsn),
    rows.map((r) => r.sourceOrdinal),
    rows.map((r) => r.sourceXid),
    ...keyParams,
  ];
  const conflict = (actual: number | undefined, cause?: unknown, reason?: string) =>
    new ConcurrencyError({ aggregateType: aggregate.type, aggregateId: displayId, expected, actual, cause, reason });

  // A lost race to create the head (kind "any") is retried once: in READ COMMITTED the
  // next statement sees the winner's head and appends after it.
  for (let attempt = 0; ; attempt++) {
    let decision: DecisionRow;
    try {
      [decision] = (await sql.query(statement.text, values, statement.name)) as [DecisionRow];
    } catch (error) {
      const state = sqlStateOf(error);
      if (state === SQLSTATE.SERIALIZATION_FAILURE) throw conflict(undefined, error, 'serialization failure');
      if (state === SQLSTATE.DEADLOCK_DETECTED) throw conflict(undefined, error, 'deadlock');
      throw error;
    }
    const current = Number(decision.current_version);
    if (!decision.allowed) throw conflict(decision.head_exists ? current : 0);
    if (decision.appended === rows.length) {
      return { aggregateId: decision.aggregate_id, fromVersion: current, toVersion: current + rows.length };
    }
    if (kind !== 'any' || attempt > 0) throw conflict(undefined, undefined, 'another transaction created it first');
  }
}

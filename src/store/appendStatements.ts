import { createHash } from 'node:crypto';
import type { AggregateType } from '../config/resolve.js';
import { canonicalKeySql } from '../db/canonicalKey.js';
import { GENESIS_HASH, type StoreTables } from './tables.js';

/**
 * The SQL of the append, built once per aggregate type (its key columns shape the
 * canonical key) and prepared by name on each connection.
 *
 * One event (most appends) takes a lean statement chosen by the expected version: the
 * head row is written by one UPDATE (exact version, "exists"), INSERT ... ON CONFLICT DO
 * NOTHING ("none") or upsert ("any"), whose RETURNING gives the event its sequence and
 * chained hash, computed from the head row it locked; the event INSERT reads them from
 * there. No head row returned means the expectation failed. Several events take the
 * batch statement, which locks the head, checks, chains the hashes with a recursive CTE
 * and writes head and events. Either way: one statement, one round trip, and every
 * hashed value computed in SQL and inserted as hashed.
 */

export type SingleKind = 'any' | 'none' | 'exists' | 'exact';

export interface Statement {
  name: string;
  text: string;
}

const cache = new WeakMap<AggregateType, Map<string, Statement>>();

function named(text: string): Statement {
  return { name: `hindsight_append_${createHash('sha256').update(text).digest('hex').slice(0, 16)}`, text };
}

function cached(aggregate: AggregateType, key: string, build: () => string): Statement {
  let byKey = cache.get(aggregate);
  if (!byKey) cache.set(aggregate, (byKey = new Map()));
  let statement = byKey.get(key);
  if (!statement) byKey.set(key, (statement = named(build())));
  return statement;
}

const INSERTED_COLUMNS = `event_id, aggregate_type, aggregate_id, sequence, event_type, schema_version, payload, metadata,
    source, source_commit_lsn, source_ordinal, source_xid, transaction_id, occurred_at, recorded_at, hash`;

/**
 * One event. Parameters: $1 aggregate type, $2 event id, $3 event type, $4 schema
 * version, $5 payload, $6 metadata, $7 occurred_at (null: now()), $8 source, $9 source
 * commit LSN, $10 source ordinal, $11 source xid, $12.. the key values, then (exact
 * only) the expected version.
 */
export function singleStatement(tables: StoreTables, aggregate: AggregateType, kind: SingleKind): Statement {
  return cached(aggregate, `single:${kind}:${tables.schema}`, () => {
    const keyCount = aggregate.key.length;
    const key = canonicalKeySql(aggregate.key, aggregate.key.map((_, i) => `$${12 + i}::text`));
    const expectedVersion = `$${12 + keyCount}::bigint`;
    const occurredAt = 'coalesce($7::timestamptz, now())';
    const hash = (previous: string, sequence: string) => `${tables.eventHash}(${previous}, $2::uuid, $1::text, ${key}, ${sequence},
        $3::text, $4::int, $5::jsonb, $6::jsonb, $8::text, $9::pg_lsn, $10::int, $11::xid8, pg_current_xact_id(), ${occurredAt}, now())`;
    const newHead = `INSERT INTO ${tables.heads} AS h (aggregate_type, aggregate_id, version, last_hash)
    VALUES ($1::text, ${key}, 1, ${hash(GENESIS_HASH, '1')})`;
    const head =
      kind === 'any'
        ? `${newHead}
    ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET version = h.version + 1, last_hash = ${hash('h.last_hash', 'h.version + 1')}`
        : kind === 'none'
          ? `${newHead}
    ON CONFLICT (aggregate_type, aggregate_id) DO NOTHING`
          : `UPDATE ${tables.heads} AS h SET version = h.version + 1, last_hash = ${hash('h.last_hash', 'h.version + 1')}
    WHERE h.aggregate_type = $1::text AND h.aggregate_id = ${key}${kind === 'exact' ? ` AND h.version = ${expectedVersion}` : ''}`;
    return `
WITH head AS (
  ${head}
  RETURNING h.aggregate_id, h.version, h.last_hash
)
INSERT INTO ${tables.events} (${INSERTED_COLUMNS})
SELECT $2::uuid, $1::text, head.aggregate_id, head.version, $3::text, $4::int, $5::jsonb, $6::jsonb, $8::text, $9::pg_lsn,
       $10::int, $11::xid8, pg_current_xact_id(), ${occurredAt}, now(), head.last_hash
FROM head
RETURNING aggregate_id, sequence::text AS sequence`;
  });
}

/**
 * Several events. Parameters: $1 aggregate type, $2 expectation kind, $3 expected
 * version, $4..$13 arrays of the events' fields (as in singleStatement), $14.. the key.
 */
export function batchStatement(tables: StoreTables, aggregate: AggregateType): Statement {
  return cached(aggregate, `batch:${tables.schema}`, () => {
    const key = canonicalKeySql(aggregate.key, aggregate.key.map((_, i) => `$${14 + i}::text`));
    return `
WITH RECURSIVE input AS (
  SELECT i.n, i.event_id::uuid AS event_id, i.event_type, i.schema_version, i.payload::jsonb AS payload,
         i.metadata::jsonb AS metadata, coalesce(i.occurred_at::timestamptz, now()) AS occurred_at,
         i.source, i.source_commit_lsn::pg_lsn AS source_commit_lsn, i.source_ordinal, i.source_xid::xid8 AS source_xid
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
  SELECT l.version IS NOT NULL AS head_exists, coalesce(l.version, 0) AS current_version,
         coalesce(l.last_hash, ${GENESIS_HASH}) AS current_hash,
         CASE WHEN l.version IS NOT NULL THEN $2::text IN ('any', 'exists') OR ($2::text = 'exact' AND l.version = $3::bigint)
              ELSE $2::text IN ('any', 'none') END AS allowed
  FROM (SELECT 1) AS one LEFT JOIN locked l ON true
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
  INSERT INTO ${tables.events} (${INSERTED_COLUMNS})
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
  });
}

import type { AggregateType } from '../config/resolve.js';
import type { Sql } from '../db/queryable.js';
import { SQLSTATE, sqlStateOf } from '../db/sqlState.js';
import { ConcurrencyError } from '../errors.js';
import type { EventSource, ExpectedVersion } from '../types.js';
import { batchStatement, singleStatement, type SingleKind } from './appendStatements.js';
import { readHead } from './readAggregate.js';
import { byKey } from '../db/canonicalKey.js';
import type { StoreTables } from './tables.js';

/**
 * The one place through which every event is written (app appends, operators'
 * `hindsight append`, later the listener and the baseline import): one statement that
 * locks the aggregate's head row, checks the expected version, chains the hash from the
 * head's last hash, updates (or creates) the head and inserts the events with sequences
 * head+1..head+n (see appendStatements.ts). The head row lock orders writers of one
 * aggregate; nothing is shared between aggregates.
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

/**
 * The rows' fields as ten parallel arrays, in the order the batch statements unnest them:
 * event id, type, schema version, payload, metadata, occurred_at, source, source commit
 * LSN, source ordinal, source xid.
 */
export function rowArrays(rows: readonly AppendRow[]): unknown[][] {
  return [
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
  ];
}

export interface AppendOutcome {
  /** The canonical aggregate id, as stored. */
  aggregateId: string;
  /** The version before the append; the events got sequences fromVersion+1 .. fromVersion+n. */
  fromVersion: number;
  toVersion: number;
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
  const conflict = (actual: number | undefined, cause?: unknown, reason?: string) =>
    new ConcurrencyError({ aggregateType: aggregate.type, aggregateId: displayId, expected, actual, cause, reason });
  const run = async <Row>(text: string, values: unknown[], name: string): Promise<Row[]> => {
    try {
      return (await sql.query(text, values, name)) as Row[];
    } catch (error) {
      // In REPEATABLE READ and SERIALIZABLE a concurrent append shows as a serialization
      // failure: the same retryable conflict as a stale version.
      const state = sqlStateOf(error);
      if (state === SQLSTATE.SERIALIZATION_FAILURE) throw conflict(undefined, error, 'serialization failure');
      if (state === SQLSTATE.DEADLOCK_DETECTED) throw conflict(undefined, error, 'deadlock');
      throw error;
    }
  };

  const kind: SingleKind = typeof expected === 'number' ? (expected === 0 ? 'none' : 'exact') : expected;
  if (rows.length === 1) {
    const row = rows[0]!;
    const statement = singleStatement(tables, aggregate, kind);
    const values: unknown[] = [
      aggregate.type, row.eventId, row.type, row.schemaVersion, row.payload, row.metadata, row.occurredAt,
      row.source, row.sourceCommitLsn, row.sourceOrdinal, row.sourceXid, ...keyParams,
    ];
    if (kind === 'exact') values.push(String(expected));
    const [appended] = await run<{ aggregate_id: string; sequence: string }>(statement.text, values, statement.name);
    if (appended) {
      const sequence = Number(appended.sequence);
      return { aggregateId: appended.aggregate_id, fromVersion: sequence - 1, toVersion: sequence };
    }
    // No head row written: the expectation failed. Say what the version is (a failed
    // statement that raised no error leaves the caller's transaction usable).
    throw conflict((await readHead(sql, tables, aggregate, byKey(aggregate.key, keyParams))).version);
  }

  const statement = batchStatement(tables, aggregate);
  const values = [
    aggregate.type,
    kind,
    typeof expected === 'number' ? String(expected) : null,
    ...rowArrays(rows),
    ...keyParams,
  ];
  // A lost race to create the head (kind "any") is retried once: in READ COMMITTED the
  // next statement sees the winner's head and appends after it.
  for (let attempt = 0; ; attempt++) {
    const [decision] = await run<DecisionRow>(statement.text, values, statement.name);
    const current = Number(decision!.current_version);
    if (!decision!.allowed) throw conflict(decision!.head_exists ? current : 0);
    if (decision!.appended === rows.length) {
      return { aggregateId: decision!.aggregate_id, fromVersion: current, toVersion: current + rows.length };
    }
    if (kind !== 'any' || attempt > 0) {
      throw conflict((await readHead(sql, tables, aggregate, byKey(aggregate.key, keyParams))).version, undefined, 'another transaction created it first');
    }
  }
}

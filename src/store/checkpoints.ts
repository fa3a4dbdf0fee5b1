import { Params } from '../db/params.js';
import type { Sql } from '../db/queryable.js';
import type { GlobalCheckpoint } from './readAll.js';
import { utcMicros } from './eventRow.js';
import type { StoreTables } from './tables.js';

/**
 * Subscriber checkpoints: where each subscriber (a read model's updater, a rebuild, an
 * app's own consumer) is in the gap-safe global read. Writing the checkpoint in the same
 * transaction as the work it covers gives effectively-once processing for work in the
 * same database.
 */

export interface SubscriberCheckpoint {
  subscriber: string;
  position: GlobalCheckpoint;
  eventsApplied: number;
  /** ISO UTC, microseconds. */
  updatedAt: string;
  failedAt: string | null;
  /** Why it stopped: event, aggregate and message, as recorded. */
  failure: Record<string, unknown> | null;
}

interface CheckpointRow {
  subscriber: string;
  transaction_id: string;
  global_position: string;
  events_applied: string;
  updated_at: string;
  failed_at: string | null;
  failure: string | null;
}

const COLUMNS = `c.subscriber, c.transaction_id::text AS transaction_id, c.global_position::text AS global_position,
  c.events_applied::text AS events_applied, ${utcMicros('c.updated_at')} AS updated_at,
  CASE WHEN c.failed_at IS NOT NULL THEN ${utcMicros('c.failed_at')} END AS failed_at, c.failure::text AS failure`;

function toCheckpoint(row: CheckpointRow): SubscriberCheckpoint {
  return {
    subscriber: row.subscriber,
    position: { transactionId: row.transaction_id, globalPosition: Number(row.global_position) },
    eventsApplied: Number(row.events_applied),
    updatedAt: row.updated_at,
    failedAt: row.failed_at,
    failure: row.failure === null ? null : (JSON.parse(row.failure) as Record<string, unknown>),
  };
}

export async function loadCheckpoints(sql: Sql, tables: StoreTables, subscribers: readonly string[]): Promise<Map<string, SubscriberCheckpoint>> {
  const rows = await sql.query<CheckpointRow>(`SELECT ${COLUMNS} FROM ${tables.checkpoints} c WHERE c.subscriber = ANY($1::text[])`, [
    [...subscribers],
  ]);
  return new Map(rows.map((row) => [row.subscriber, toCheckpoint(row)]));
}

export async function loadCheckpoint(sql: Sql, tables: StoreTables, subscriber: string): Promise<SubscriberCheckpoint | undefined> {
  return (await loadCheckpoints(sql, tables, [subscriber])).get(subscriber);
}

/**
 * Moves a subscriber forward to `position` (and clears a recorded failure). Run it in the
 * transaction of the work it covers. Never moves a checkpoint back: a writer that raced
 * a rebuild's swap cannot undo it. To start a subscriber over, delete its checkpoint.
 */
export async function saveCheckpoint(sql: Sql, tables: StoreTables, subscriber: string, position: GlobalCheckpoint, applied = 0): Promise<void> {
  await sql.query(
    `INSERT INTO ${tables.checkpoints} AS c (subscriber, transaction_id, global_position, events_applied, updated_at)
     VALUES ($1::text, $2::xid8, $3::bigint, $4::bigint, now())
     ON CONFLICT (subscriber) DO UPDATE
       SET transaction_id = excluded.transaction_id, global_position = excluded.global_position,
           events_applied = c.events_applied + excluded.events_applied, updated_at = now(), failed_at = NULL, failure = NULL
       WHERE (c.transaction_id, c.global_position) <= (excluded.transaction_id, excluded.global_position)`,
    [subscriber, position.transactionId, String(position.globalPosition), String(applied)],
  );
}

/** A checkpoint move: from exactly `from` to `to`, counting `applied` more events. */
export interface CheckpointMove {
  subscriber: string;
  from: GlobalCheckpoint;
  to: GlobalCheckpoint;
  applied: number;
}

/**
 * The compare and set of a checkpoint as common table expressions, its values added to
 * `params`: `moved` moves the subscriber from exactly `from` (clearing a recorded
 * failure), `created` makes its row when it had none and `from` is the start of the log,
 * and `advanced` has a row when either did. Only where `condition` holds (the updater's
 * one-statement commit puts its lease there).
 */
export function checkpointMoveCtes(tables: StoreTables, params: Params, move: CheckpointMove, condition = 'true'): string {
  const subscriber = params.add(move.subscriber, 'text');
  const from = `(${params.add(move.from.transactionId, 'xid8')}, ${params.add(String(move.from.globalPosition), 'bigint')})`;
  const xid = params.add(move.to.transactionId, 'xid8');
  const position = params.add(String(move.to.globalPosition), 'bigint');
  const applied = params.add(String(move.applied), 'bigint');
  return `moved AS (
       UPDATE ${tables.checkpoints} c
       SET transaction_id = ${xid}, global_position = ${position}, events_applied = c.events_applied + ${applied},
           updated_at = now(), failed_at = NULL, failure = NULL
       WHERE c.subscriber = ${subscriber} AND (c.transaction_id, c.global_position) = ${from} AND ${condition}
       RETURNING 1
     ), created AS (
       INSERT INTO ${tables.checkpoints} (subscriber, transaction_id, global_position, events_applied, updated_at)
       SELECT ${subscriber}, ${xid}, ${position}, ${applied}, now()
       WHERE ${from} = ('0'::xid8, 0::bigint) AND ${condition}
         AND NOT EXISTS (SELECT 1 FROM ${tables.checkpoints} c WHERE c.subscriber = ${subscriber})
       ON CONFLICT (subscriber) DO NOTHING
       RETURNING 1
     ), advanced AS (SELECT 1 FROM moved UNION ALL SELECT 1 FROM created)`;
}

/**
 * Moves a subscriber from exactly `from` to `to` (see checkpointMoveCtes), or does nothing
 * and returns false when its checkpoint is elsewhere (a rebuild swapped in its own). A
 * subscriber with no checkpoint is at the start of the log. Run it in the transaction of
 * the work it covers.
 */
export async function advanceCheckpoint(sql: Sql, tables: StoreTables, move: CheckpointMove): Promise<boolean> {
  const params = new Params();
  const [row] = await sql.query<{ moved: boolean }>(
    `WITH ${checkpointMoveCtes(tables, params, move)} SELECT EXISTS (SELECT 1 FROM advanced) AS moved`,
    params.values,
  );
  return Boolean(row?.moved);
}

/** Records why a subscriber stopped, keeping its position. */
export async function recordFailure(sql: Sql, tables: StoreTables, subscriber: string, failure: Record<string, unknown>): Promise<void> {
  await sql.query(
    `INSERT INTO ${tables.checkpoints} AS c (subscriber, failed_at, failure) VALUES ($1::text, now(), $2::jsonb)
     ON CONFLICT (subscriber) DO UPDATE SET failed_at = now(), failure = excluded.failure`,
    [subscriber, JSON.stringify(failure)],
  );
}

export async function deleteCheckpoint(sql: Sql, tables: StoreTables, subscriber: string): Promise<void> {
  await sql.query(`DELETE FROM ${tables.checkpoints} WHERE subscriber = $1::text`, [subscriber]);
}

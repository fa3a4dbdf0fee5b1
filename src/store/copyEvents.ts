import type pg from 'pg';
import type { ProjectedEvent } from '../types.js';
import { copyOut } from '../db/copy.js';
import { splitCopyRow } from '../db/copyText.js';
import { FOLD_COLUMN_COUNT, foldColumns, toProjectedEvent } from './eventRow.js';
import type { GlobalCheckpoint } from './readAll.js';
import type { StoreTables } from './tables.js';

/**
 * The gap-safe global read of one aggregate type as a stream, for rebuilds: `COPY (...) TO
 * STDOUT` in text format, parsed here row by row. It reads several times faster than rows
 * through node-postgres's row parser, which is what bounds a rebuild. COPY takes no bind
 * parameters, so the values go in through set_config() (which does) and the query reads
 * them back with current_setting().
 */

export interface CopiedEvent extends ProjectedEvent {
  transactionId: string;
}

/** The fold's columns (as text: COPY prints every value as text) and the transaction id last. */
const COLUMNS = `${foldColumns(true)}, e.transaction_id`;
const FIELDS = FOLD_COLUMN_COUNT + 1;

/**
 * Streams up to `limit` events of `aggregateType` after `after`, below the snapshot's
 * xmin, in (transaction id, global position) order, calling `onEvent` for each in order.
 * Runs in its own transaction on `client`. Returns how many were read.
 */
export async function copyEvents(
  client: pg.ClientBase,
  tables: StoreTables,
  aggregateType: string,
  after: GlobalCheckpoint,
  limit: number,
  onEvent: (event: CopiedEvent) => void,
): Promise<number> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await client.query(
      `SELECT set_config('hindsight.copy_type', $1::text, true), set_config('hindsight.copy_after_xid', $2::text, true),
              set_config('hindsight.copy_after_position', $3::text, true), set_config('hindsight.copy_limit', $4::text, true)`,
      [aggregateType, after.transactionId, String(after.globalPosition), String(limit)],
    );
    const rows = await copyOut(
      client,
      `COPY (SELECT ${COLUMNS} FROM ${tables.events} e
             WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
               AND (e.transaction_id, e.global_position) >
                   (current_setting('hindsight.copy_after_xid')::xid8, current_setting('hindsight.copy_after_position')::bigint)
               AND e.aggregate_type = current_setting('hindsight.copy_type')
             ORDER BY e.transaction_id, e.global_position
             LIMIT current_setting('hindsight.copy_limit')::int) TO STDOUT`,
      (chunk) => onEvent(parseRow(chunk)),
    );
    await client.query('COMMIT');
    return rows;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** One CopyData message (a row in text format) as an event: the fold's row, plus the transaction id. */
function parseRow(chunk: Buffer): CopiedEvent {
  const fields = splitCopyRow(chunk, FIELDS);
  const event = toProjectedEvent(fields) as CopiedEvent;
  event.transactionId = fields[FOLD_COLUMN_COUNT]!;
  return event;
}

import type { Sql } from '../db/queryable.js';
import type { StoredEvent } from '../types.js';
import { EVENT_COLUMNS, toStoredEvent, type EventRow } from './eventRow.js';
import type { StoreTables } from './tables.js';

/** How far a subscriber has read: the (transaction id, global position) of the last event it took. */
export interface GlobalCheckpoint {
  /** xid8 as decimal text. */
  transactionId: string;
  globalPosition: number;
}

export const START_OF_LOG: GlobalCheckpoint = { transactionId: '0', globalPosition: 0 };

export interface GlobalPage {
  events: StoredEvent[];
  /** Pass back as `after` to read on; unchanged when nothing new was visible. */
  checkpoint: GlobalCheckpoint;
}

/**
 * The gap-safe global read. Global positions are handed out at insert but become
 * visible at commit, so "everything after the last position I saw" skips a transaction
 * that took a lower position and committed later. Instead, read only rows whose
 * transaction id is below the xmin of the current snapshot (every such transaction has
 * ended, so nothing can still appear below it), ordered by (transaction id, global
 * position), and checkpoint that pair.
 *
 * The price: one long-running transaction anywhere in the cluster holds every reader at
 * its xid. And this order can deliver an aggregate's sequence n+1 before n (see the
 * README's per-aggregate order contract): apply each aggregate's events by sequence.
 */
export async function readAll(
  sql: Sql,
  tables: StoreTables,
  options: { after?: GlobalCheckpoint; limit?: number } = {},
): Promise<GlobalPage> {
  const after = options.after ?? START_OF_LOG;
  const limit = options.limit ?? 1000;
  const rows = await sql.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM ${tables.events} e
     WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
       AND (e.transaction_id, e.global_position) > ($1::xid8, $2::bigint)
     ORDER BY e.transaction_id, e.global_position
     LIMIT $3::int`,
    [after.transactionId, String(after.globalPosition), limit],
  );
  const events = rows.map(toStoredEvent);
  const last = events[events.length - 1];
  return { events, checkpoint: last ? { transactionId: last.transactionId, globalPosition: last.globalPosition } : after };
}

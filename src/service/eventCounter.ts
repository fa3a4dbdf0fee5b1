import type { Sql } from '../db/queryable.js';
import type { StoreTables } from '../store/tables.js';

/** Where the appended-events counter has counted up to: a gap-safe reader's checkpoint pair. */
export interface EventCounter {
  position: { transactionId: string; globalPosition: string } | undefined;
}

/** Events counted per scrape at most; a larger backlog is counted over the next scrapes. */
const PAGE = 50_000;

/**
 * Counts the events appended since the last call, by type and source, reading the log the
 * way every subscriber does (DESIGN.md): only transactions below the snapshot's xmin, in
 * (transaction id, position) order, so an event whose transaction commits late is counted
 * late, never skipped. The first call only finds where the log ends.
 */
export async function countNewEvents(sql: Sql, tables: StoreTables, counter: EventCounter): Promise<Array<{ type: string; source: string; count: number }>> {
  if (!counter.position) {
    const [end] = await sql.query<{ tx: string; pos: string }>(
      `SELECT transaction_id::text AS tx, global_position::text AS pos FROM ${tables.events}
       WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
       ORDER BY transaction_id DESC, global_position DESC LIMIT 1`,
    );
    counter.position = end ? { transactionId: end.tx, globalPosition: end.pos } : { transactionId: '0', globalPosition: '0' };
    return [];
  }
  const rows = await sql.query<{ type: string; source: string; n: string; tx: string; pos: string }>(
    `WITH page AS (
       SELECT aggregate_type, source, transaction_id, global_position FROM ${tables.events}
       WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint) AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
       ORDER BY transaction_id, global_position LIMIT ${PAGE}
     ), last AS (
       SELECT transaction_id::text AS tx, global_position::text AS pos FROM page ORDER BY transaction_id DESC, global_position DESC LIMIT 1
     )
     SELECT aggregate_type AS type, source, count(*)::text AS n, (SELECT tx FROM last) AS tx, (SELECT pos FROM last) AS pos FROM page GROUP BY 1, 2`,
    [counter.position.transactionId, counter.position.globalPosition],
  );
  if (rows.length > 0) counter.position = { transactionId: rows[0]!.tx, globalPosition: rows[0]!.pos };
  return rows.map((r) => ({ type: r.type, source: r.source, count: Number(r.n) }));
}

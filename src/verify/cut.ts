import { pollUntil } from '../db/pollUntil.js';
import type { Sql } from '../db/queryable.js';
import { CUT_PREFIX } from '../replication/listener.js';
import type { StoreTables } from '../store/tables.js';

/**
 * The lag cut of listener and "both" types (DESIGN.md, verification under a lagging
 * listener). Legacy writes committed before a page's snapshot S may not have their events
 * yet: the listener appends them later. After S, a marker is committed into the WAL in a
 * transaction of its own; every transaction S sees committed earlier, so its commit record
 * is below the marker's LSN, and once the listener's durable checkpoint reaches that LSN
 * all their events are in the store. The wait is bounded: not reaching the cut in time
 * makes the run incomplete, never clean.
 */

/** Commits a `hindsight.cut` marker (outside any snapshot transaction) and returns its LSN. */
export async function commitCut(sql: Sql, runId: string): Promise<string> {
  const [row] = await sql.query<{ lsn: string }>(`SELECT pg_logical_emit_message(true, $1::text, $2::text)::text AS lsn`, [CUT_PREFIX, runId]);
  return row!.lsn;
}

/** Waits until the slot's listener checkpoint is at or past `lsn`; false on timeout (or with no listener state at all). */
export function waitForCut(sql: Sql, tables: StoreTables, slot: string, lsn: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  return pollUntil(async () => {
    const [row] = await sql.query<{ reached: boolean | null }>(
      `SELECT (SELECT checkpoint_lsn >= $2::pg_lsn FROM ${tables.replicationState} WHERE slot_name = $1::text) AS reached`,
      [slot, lsn],
    );
    return row?.reached === true;
  }, timeoutMs, signal);
}

import type { Sql } from '../db/queryable.js';
import { DatabaseError } from '../errors.js';
import type { StoreTables } from '../store/tables.js';

/**
 * Read-your-writes for capture "both": staged events reach the stream after the
 * listener's lag. Resolves once every one of `eventIds` is in the event log; rejects after
 * `timeoutMs` (default 5 s) naming how many are still missing. Polls, starting at 10 ms.
 */
export async function waitForAppended(sql: Sql, tables: StoreTables, eventIds: readonly string[], options: { timeoutMs?: number } = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const until = Date.now() + timeoutMs;
  let pause = 10;
  for (;;) {
    const [row] = await sql.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${tables.events} WHERE event_id = ANY($1::uuid[])`, [[...eventIds]]);
    const missing = eventIds.length - Number(row!.n);
    if (missing <= 0) return;
    if (Date.now() >= until) {
      throw new DatabaseError(`${missing} of ${eventIds.length} staged events were not appended within ${timeoutMs} ms: is the listener running? (see hindsight replication status)`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(pause, Math.max(0, until - Date.now()))));
    pause = Math.min(pause * 2, 100);
  }
}

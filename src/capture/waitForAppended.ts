import { pollUntil } from '../db/pollUntil.js';
import type { Sql } from '../db/queryable.js';
import { DatabaseError } from '../errors.js';
import type { StoreTables } from '../store/tables.js';

/**
 * Read-your-writes for capture "both": staged events reach the stream after the
 * listener's lag. Resolves once every one of `eventIds` is in the event log; rejects after
 * `timeoutMs` (default 5 s) naming how many are still missing.
 */
export async function waitForAppended(sql: Sql, tables: StoreTables, eventIds: readonly string[], options: { timeoutMs?: number } = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 5000;
  let missing = eventIds.length;
  const appended = await pollUntil(async () => {
    const [row] = await sql.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${tables.events} WHERE event_id = ANY($1::uuid[])`, [[...eventIds]]);
    missing = eventIds.length - Number(row!.n);
    return missing <= 0;
  }, timeoutMs);
  if (!appended) {
    throw new DatabaseError(`${missing} of ${eventIds.length} staged events were not appended within ${timeoutMs} ms: is the listener running? (see hindsight replication status)`);
  }
}

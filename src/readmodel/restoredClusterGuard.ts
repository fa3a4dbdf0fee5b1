import type { Sql } from '../db/queryable.js';
import { RestoredClusterError } from '../errors.js';
import type { StoreTables } from '../store/tables.js';

/**
 * After a restore into a new cluster (pg_dump/restore, a new primary built from a dump),
 * transaction ids start lower than the ones stored in events and checkpoints. The
 * gap-safe read orders by transaction id, so every new event would sort before the
 * checkpoints and never be read. Refuse loudly instead of skipping silently.
 */
export async function checkTransactionIds(sql: Sql, tables: StoreTables): Promise<void> {
  const [row] = await sql.query<{ max_event: string | null; max_checkpoint: string | null; next: string }>(
    `SELECT (SELECT max(transaction_id)::text FROM ${tables.events}) AS max_event,
            (SELECT max(transaction_id)::text FROM ${tables.checkpoints}) AS max_checkpoint,
            pg_snapshot_xmax(pg_current_snapshot())::text AS next`,
  );
  const next = BigInt(row!.next);
  const highest = [row!.max_event, row!.max_checkpoint].filter((v): v is string => v !== null).map(BigInt);
  const above = highest.reduce<bigint | undefined>((max, xid) => (xid >= next && (max === undefined || xid > max) ? xid : max), undefined);
  if (above === undefined) return;
  const target = rebasedNextXid(above);
  throw new RestoredClusterError(
    `stored transaction ids (up to ${above}) are above this server's next transaction id (${next}): the database was ` +
      'restored into another cluster, and new events would never be read. Re-base the transaction ids before running ' +
      `the updater: stop the server and run pg_resetwal -e ${target >> 32n} -x ${target & 0xffffffffn} -D <data directory> ` +
      '(see "Restoring into a new cluster" in the README)',
  );
}

/**
 * A next transaction id past `highest`, on a 2^20 boundary: a new commit-log segment
 * starts there, so the server creates it instead of looking for one that does not exist.
 */
export function rebasedNextXid(highest: bigint): bigint {
  const segment = 1n << 20n;
  return ((highest + segment) / segment) * segment;
}

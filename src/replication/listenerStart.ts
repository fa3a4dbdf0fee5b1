import { DatabaseError } from '../errors.js';
import type { Sql } from '../db/queryable.js';
import type { StoreTables } from '../store/tables.js';
import { parseLsn } from './pgoutput.js';

/** What the listener waits for and looks up before it streams. */

/**
 * The checkpoint to resume from, once the slot exists and no baseline of it is pending
 * (until then the stream is held, never consumed: see backfill.ts).
 */
export async function readyCheckpoint(sql: Sql, tables: StoreTables, slot: string, signal: AbortSignal | undefined, log: (line: string) => void, onHold: () => void): Promise<bigint> {
  let said = false;
  for (;;) {
    // One query: this slot's checkpoint (none before its first backfill commits) and its pending baselines.
    const [state] = await sql.query<{ checkpoint_lsn: string | null; pending: string }>(
      `SELECT (SELECT checkpoint_lsn::text FROM ${tables.replicationState} WHERE slot_name = $1::text) AS checkpoint_lsn,
              (SELECT count(*) FROM ${tables.baselines} WHERE slot_name = $1::text AND status = 'pending')::text AS pending`,
      [slot],
    );
    if (state!.pending === '0') {
      if (state!.checkpoint_lsn !== null) return parseLsn(state!.checkpoint_lsn);
      throw new DatabaseError(`the slot ${slot} has not been created by a backfill yet: run "hindsight replication setup", then "hindsight backfill"`);
    }
    if (!said) {
      log('a baseline backfill is in progress: holding the stream until it commits');
      onHold();
    }
    said = true;
    if (signal?.aborted) return 0n;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** The staging table's oid, once its insert-only publication is in place (replication setup makes it). */
export async function stagingTableOid(sql: Sql, tables: StoreTables, publication: string): Promise<number> {
  const [row] = await sql.query<{ insert_only: boolean; oid: string }>(
    `SELECT p.pubinsert AND NOT p.pubupdate AND NOT p.pubdelete AS insert_only, to_regclass($2::text)::oid::text AS oid
     FROM pg_publication p WHERE p.pubname = $1::text`,
    [publication, tables.stagedEvents],
  );
  if (!row?.insert_only) {
    throw new DatabaseError(`capture "both" needs the insert-only publication ${publication} of the staging table: run "hindsight replication setup"`);
  }
  return Number(row.oid);
}


import type { AggregateType } from '../config/resolve.js';
import type { TableName } from '../db/identifiers.js';
import { Params } from '../db/params.js';
import type { Sql } from '../db/queryable.js';
import { snapshotRows, type SnapshotToWrite } from '../projection/snapshots.js';
import { checkpointMoveCtes, type CheckpointMove } from '../store/checkpoints.js';
import type { StoreTables } from '../store/tables.js';
import type { ReadModel } from './declaration.js';
import { deleteRows, tombstoneRows, upsertRows, type RowChange } from './writeRows.js';

/**
 * The updater's commit of a batch as one statement, which PostgreSQL runs as one
 * transaction: one round trip instead of five (BEGIN, the lease check, the rows, the
 * checkpoint, COMMIT). On a busy two-core machine each round trip wakes a process on
 * each side, and those wake-ups, not the work, were most of what the updater took from
 * the app's own transactions (docs/benchmarks.md). Inside it, in this order:
 *
 * 1. the lease row, locked, if this owner holds it unexpired; otherwise nothing is written.
 *    SKIP LOCKED rather than a wait: the statement already holds its tables' locks, and a
 *    rebuild's swap locks the lease row first and those tables next, so waiting here could
 *    deadlock with it. A row locked for a moment (a swap, a renewal, a standby's attempt to
 *    take the lease) reads as not held, and the caller tells that from a lost lease;
 * 2. the checkpoint, moved from exactly `from` to `to` (created when at the start of the
 *    log), which is the compare and set that makes a batch prepared before a rebuild's
 *    swap write nothing;
 * 3. only when both held: the rows, tombstones and snapshots.
 *
 * The commit does not wait for the WAL flush (a transaction-local setting, as the
 * transaction path's SET LOCAL): a read model is derived, and a batch lost in a crash,
 * rows and checkpoint together, is simply applied again.
 */

export type CommitOutcome = 'committed' | 'moved' | 'not-held';

export interface BatchToCommit extends CheckpointMove {
  lease: { name: string; owner: string };
  changes: readonly RowChange[];
  snapshots: readonly SnapshotToWrite[];
}

export async function commitBatch(sql: Sql, tables: StoreTables, aggregate: AggregateType, model: ReadModel, table: TableName, batch: BatchToCommit): Promise<CommitOutcome> {
  const p = new Params();
  const lease = `SELECT set_config('synchronous_commit', 'off', true) FROM ${tables.leases} l
       WHERE l.name = ${p.add(batch.lease.name, 'text')} AND l.owner = ${p.add(batch.lease.owner, 'text')} AND l.expires_at > clock_timestamp()
       FOR UPDATE SKIP LOCKED`;
  const checkpoint = checkpointMoveCtes(tables, p, batch, 'EXISTS (SELECT 1 FROM lease)');
  const advanced = 'EXISTS (SELECT 1 FROM advanced)';
  const removing = model.onDelete === 'remove';
  const removed = batch.changes.filter((c) => c.deleted && removing);
  const kept = batch.changes.filter((c) => !(c.deleted && removing));
  const writes: string[] = [];
  if (kept.length > 0) writes.push(upsertRows(model, table, kept, p, advanced));
  if (removed.length > 0) writes.push(deleteRows(table, removed, p, advanced), tombstoneRows(tables, table, removed, p, advanced));
  if (batch.snapshots.length > 0) writes.push(snapshotRows(tables, aggregate, batch.snapshots, p, advanced));
  const [row] = await sql.query<{ held: boolean; advanced: boolean }>(
    `WITH lease AS (${lease}), ${checkpoint}
     ${writes.map((write, i) => `, write${i} AS (${write} RETURNING 1)`).join('\n     ')}
     SELECT EXISTS (SELECT 1 FROM lease) AS held, ${advanced} AS advanced`,
    p.values,
  );
  if (!row?.held) return 'not-held';
  return row.advanced ? 'committed' : 'moved';
}

import type pg from 'pg';
import type { AggregateType } from '../config/resolve.js';
import { byCanonicalId } from '../db/canonicalKey.js';
import type { TableName } from '../db/identifiers.js';
import { toSql } from '../db/queryable.js';
import { sqlStateOf } from '../db/sqlState.js';
import { foldEvents, type Folded } from '../projection/fold.js';
import { foldedAt } from '../projection/project.js';
import { writeSnapshots, type SnapshotToWrite } from '../projection/snapshots.js';
import { aggregateKey, inAggregateOrder } from '../store/aggregateOrder.js';
import { saveCheckpoint } from '../store/checkpoints.js';
import type { GlobalCheckpoint } from '../store/readAll.js';
import { readAggregateForFold, readPageForFold } from '../store/readForFold.js';
import type { StoreTables } from '../store/tables.js';
import type { ReadModel } from './declaration.js';
import { appliedSequences, writeRows, type RowChange } from './writeRows.js';

/**
 * One step of a read model's subscription: read a page of the gap-safe global read,
 * apply each aggregate's events strictly by sequence (folding from the store when the
 * page skips ahead), and write the changed rows, any due snapshots and the new
 * checkpoint in one transaction, after checking the caller still may (its lease). A crash
 * at any point leaves either all of it or none of it.
 */

export interface BatchTarget {
  /** The table written: the live one, or a rebuild's shadow. */
  table: TableName;
  /** The checkpoint written with it. */
  subscriber: string;
  /** Runs first in the write transaction; false means another process owns the work now: nothing is written. */
  mayCommit(client: pg.ClientBase): Promise<boolean>;
}

export interface BatchContext {
  pool: pg.Pool;
  /**
   * Run inside this open transaction instead (a rebuild's final catch-up, which holds the
   * locks itself): reads and writes go through it, and nothing is committed here.
   */
  client?: pg.ClientBase;
  tables: StoreTables;
  aggregate: AggregateType;
  model: ReadModel;
  target: BatchTarget;
  /** Folded states by aggregate id, kept between batches so a busy aggregate is not refolded. */
  cache: StateCache;
  batchSize: number;
}

export interface BatchResult {
  /** Events scanned (any type); fewer than the batch size means caught up for now. */
  scanned: number;
  /** Events folded into rows. */
  applied: number;
  rows: number;
  checkpoint: GlobalCheckpoint;
}

/** A projector handler threw: which event, which read model, why. */
export class ProjectionFailure extends Error {
  constructor(readonly details: { readModel: string; aggregateType: string; aggregateId: string; sequence: number; eventId: string; eventType: string; message: string }) {
    super(
      `read model ${details.readModel} stopped: ${details.aggregateType} ${details.aggregateId} event ${details.sequence} ` +
        `(${details.eventType}, ${details.eventId}) failed: ${details.message}`,
    );
  }
}

/** Another process holds the read model now; nothing of this batch was written. */
export class LeaseLost extends Error {}

/**
 * The checkpoint moved while this batch was being prepared (a rebuild swapped in a new
 * table and its checkpoint): the batch was computed from a state that is gone, so nothing
 * of it is written and the next batch starts from the new checkpoint.
 */
export class StaleBatch extends Error {}

/** A row could not be written (a value the column refuses, a constraint added by hand): the read model stops as on a handler error. */
export class WriteFailure extends Error {
  constructor(readonly details: { readModel: string; sqlState: string; message: string }) {
    super(`read model ${details.readModel} stopped: a row could not be written: ${details.message} [SQLSTATE ${details.sqlState}]`);
  }
}

/** A bounded map of folded states (least recently used dropped first). */
export class StateCache {
  private readonly entries = new Map<string, Folded>();
  constructor(private readonly capacity = 100_000) {}

  /** The cached state if it is exactly at `version`; removed either way, since the caller will fold on from it. */
  take(aggregateId: string, version: number): Folded | undefined {
    const entry = this.entries.get(aggregateId);
    this.entries.delete(aggregateId);
    return entry && entry.version === version ? entry : undefined;
  }

  set(aggregateId: string, folded: Folded): void {
    this.entries.delete(aggregateId);
    this.entries.set(aggregateId, folded);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
  }

  clear(): void {
    this.entries.clear();
  }
}

export async function processBatch(ctx: BatchContext, after: GlobalCheckpoint): Promise<BatchResult> {
  const { pool, tables, aggregate, model, target } = ctx;
  const sql = toSql(ctx.client ?? pool);
  const page = await readPageForFold(sql, tables, after, ctx.batchSize, [aggregate.type]);
  if (page.scanned === 0) return { scanned: 0, applied: 0, rows: 0, checkpoint: after };

  const runs = await inAggregateOrder(
    page.events,
    async (keys) => {
      const applied = await appliedSequences(sql, tables, target.table, keys.map((k) => k.aggregateId));
      return new Map([...applied].map(([aggregateId, sequence]) => [aggregateKey({ aggregateType: aggregate.type, aggregateId }), sequence]));
    },
    (key, from, to) => readAggregateForFold(sql, tables, aggregate, byCanonicalId(key.aggregateId), from, to),
  );

  const changes: RowChange[] = [];
  const folds: Array<[string, Folded]> = [];
  const snapshots: SnapshotToWrite[] = [];
  let applied = 0;
  for (const run of runs) {
    let folded =
      ctx.cache.take(run.aggregateId, run.from) ??
      (await foldedAt(toSql(ctx.client ?? pool), tables, aggregate, byCanonicalId(run.aggregateId), run.from));
    for (const event of run.events) {
      try {
        folded = foldEvents(aggregate, [event], folded);
      } catch (error) {
        throw new ProjectionFailure({
          readModel: model.name,
          aggregateType: aggregate.type,
          aggregateId: run.aggregateId,
          sequence: event.sequence,
          eventId: event.eventId,
          eventType: event.type,
          message: error instanceof Error ? error.message : String(error),
        });
      }
    }
    applied += run.events.length;
    changes.push({ aggregateId: run.aggregateId, sequence: folded.version, state: folded.state, deleted: folded.deleted });
    folds.push([run.aggregateId, folded]);
    const every = aggregate.snapshotEvery;
    if (every && Math.floor(folded.version / every) > Math.floor(run.from / every)) snapshots.push({ aggregateId: run.aggregateId, folded });
  }

  const write = async (client: pg.ClientBase) => {
    const tx = toSql(client);
    // Compare and set: the batch is written only if the checkpoint is still the one it was
    // read from. Every writer of the checkpoint holds the lease row's lock, so this cannot race.
    const [current] = await tx.query<{ transaction_id: string; global_position: string }>(
      `SELECT transaction_id::text AS transaction_id, global_position::text AS global_position FROM ${tables.checkpoints} WHERE subscriber = $1::text`,
      [target.subscriber],
    );
    const at = current ? { transactionId: current.transaction_id, globalPosition: Number(current.global_position) } : { transactionId: '0', globalPosition: 0 };
    if (at.transactionId !== after.transactionId || at.globalPosition !== after.globalPosition) {
      throw new StaleBatch(`the checkpoint of ${model.name} moved while a batch was prepared`);
    }
    try {
      await writeRows(tx, client, tables, model, target.table, changes);
    } catch (error) {
      const sqlState = sqlStateOf(error);
      // Class 22 (data exception) and 23 (integrity constraint): the same batch would fail again on every retry.
      if (sqlState && (sqlState.startsWith('22') || sqlState.startsWith('23'))) {
        throw new WriteFailure({ readModel: model.name, sqlState, message: error instanceof Error ? error.message : String(error) });
      }
      throw error;
    }
    await writeSnapshots(tx, tables, aggregate, snapshots);
    await saveCheckpoint(tx, tables, target.subscriber, page.checkpoint, applied);
  };
  if (ctx.client) {
    await write(ctx.client);
  } else {
    const client = await pool.connect();
    try {
      // A read model is derived data: its commit need not wait for the WAL flush. A crash
      // may lose the last batches, rows and checkpoint together (one transaction), and they
      // are simply applied again; meanwhile the app's own commits do not queue behind ours.
      // (One round trip for both: the updater's statements per batch are what it costs the app's CPU.)
      await client.query('BEGIN; SET LOCAL synchronous_commit = off');
      if (!(await target.mayCommit(client))) {
        await client.query('ROLLBACK');
        throw new LeaseLost(`the lease on ${model.name} was lost`);
      }
      await write(client);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      ctx.cache.clear();
      throw error;
    } finally {
      client.release();
    }
  }
  for (const [id, folded] of folds) ctx.cache.set(id, folded);
  return { scanned: page.scanned, applied, rows: changes.length, checkpoint: page.checkpoint };
}

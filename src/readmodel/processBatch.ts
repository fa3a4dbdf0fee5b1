import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { AggregateType } from '../config/resolve.js';
import { byCanonicalId } from '../db/canonicalKey.js';
import type { TableName } from '../db/identifiers.js';
import { toSql } from '../db/queryable.js';
import { sqlStateOf } from '../db/sqlState.js';
import { foldInto, type Folded } from '../projection/fold.js';
import { foldedAtMany, type FoldTarget } from '../projection/foldedAtMany.js';
import { writeSnapshots, type SnapshotToWrite } from '../projection/snapshots.js';
import { aggregateKey, inAggregateOrder } from '../store/aggregateOrder.js';
import { advanceCheckpoint } from '../store/checkpoints.js';
import type { GlobalCheckpoint } from '../store/readAll.js';
import { readAggregateForFold, readPageForFold } from '../store/readForFold.js';
import type { StoreTables } from '../store/tables.js';
import { commitBatch, type BatchToCommit } from './commitBatch.js';
import { SEQUENCE_COLUMN, type ReadModel } from './declaration.js';
import { leaseHeld } from './leases.js';
import { writeRows, type RowChange } from './writeRows.js';
import { checkout } from '../db/checkout.js';

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
  /**
   * The lease this target is written under, for the one-statement commit (see commitBatch),
   * which checks it itself; without it (or for a read model with its own write function)
   * batches go through a transaction and mayCommit.
   */
  lease?: { name: string; owner: string };
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

/** The lease is still ours but its row stayed locked through the retries (a rebuild's swap, most likely); nothing was written: read the batch again later. */
export class LeaseBusy extends Error {}

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

/** Class 22 (data exception) and 23 (integrity constraint): the same batch would fail again on every retry. */
function asWriteFailure(model: ReadModel, error: unknown): unknown {
  const sqlState = sqlStateOf(error);
  if (sqlState && (sqlState.startsWith('22') || sqlState.startsWith('23'))) {
    return new WriteFailure({ readModel: model.name, sqlState, message: error instanceof Error ? error.message : String(error) });
  }
  return error;
}

/**
 * commitBatch, tried again while the lease row is only locked for a moment (a renewal, a
 * standby's attempt to take it, a rebuild's swap): nothing was written, the checkpoint's
 * compare and set still guards the retry, and the prepared batch is kept. Past about a
 * second the batch is given up as LeaseBusy and read again later.
 */
async function commitWithLease(ctx: BatchContext, lease: { name: string; owner: string }, batch: BatchToCommit): Promise<void> {
  const { tables, aggregate, model, target } = ctx;
  const sql = toSql(ctx.pool);
  for (let wait = 10; ; wait *= 2) {
    const outcome = await commitBatch(sql, tables, aggregate, model, target.table, batch).catch((error: unknown) => {
      throw asWriteFailure(model, error);
    });
    if (outcome === 'committed') return;
    if (outcome === 'moved') throw new StaleBatch(`the checkpoint of ${model.name} moved while a batch was prepared`);
    // Not held: lost, or only locked, which a plain read tells apart.
    if (!(await leaseHeld(sql, tables, lease.name, lease.owner))) throw new LeaseLost(`the lease on ${model.name} was lost`);
    if (wait > 1000) throw new LeaseBusy(`the lease row of ${model.name} stayed locked`);
    await sleep(wait);
  }
}

export async function processBatch(ctx: BatchContext, after: GlobalCheckpoint): Promise<BatchResult> {
  const { pool, tables, aggregate, model, target } = ctx;
  const sql = toSql(ctx.client ?? pool);
  // The page and what the table already reflects of its aggregates, in one statement.
  const page = await readPageForFold(sql, tables, after, ctx.batchSize, [aggregate.type], { table: target.table, sequenceColumn: SEQUENCE_COLUMN });
  if (page.scanned === 0) return { scanned: 0, applied: 0, rows: 0, checkpoint: after };

  const runs = await inAggregateOrder(
    page.events,
    async (keys) => new Map(keys.map((key) => [aggregateKey(key), page.applied!.get(aggregateKey(key)) ?? 0])),
    (key, from, to) => readAggregateForFold(sql, tables, aggregate, byCanonicalId(key.aggregateId), from, to),
  );

  // States from the cache where it holds them at the right version; the rest folded from
  // the store together (see foldedAtMany), not two queries per aggregate.
  const starts = new Map<string, Folded>();
  const misses: FoldTarget[] = [];
  for (const run of runs) {
    const cached = ctx.cache.take(run.aggregateId, run.from);
    if (cached) starts.set(run.aggregateId, cached);
    else misses.push({ aggregateId: run.aggregateId, sequence: run.from });
  }
  for (const [id, folded] of await foldedAtMany(sql, tables, aggregate, misses)) starts.set(id, folded);

  const changes: RowChange[] = [];
  const folds: Array<[string, Folded]> = [];
  const snapshots: SnapshotToWrite[] = [];
  let applied = 0;
  for (const run of runs) {
    // Folded in place: the start is this batch's own (taken out of the cache, or just read).
    const folded = starts.get(run.aggregateId)!;
    for (const event of run.events) {
      try {
        foldInto(aggregate, folded, event);
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

  // Snapshots in id order: read models of one aggregate type write the same snapshot keys,
  // and two commits inserting them in different orders could deadlock.
  snapshots.sort((a, b) => (a.aggregateId < b.aggregateId ? -1 : a.aggregateId > b.aggregateId ? 1 : 0));
  const move = { subscriber: target.subscriber, from: after, to: page.checkpoint, applied };
  const write = async (client: pg.ClientBase) => {
    const tx = toSql(client);
    // Compare and set first: the batch counts only if the checkpoint is still the one it
    // was read from, and nothing (a write function's side effects included) runs otherwise.
    if (!(await advanceCheckpoint(tx, tables, move))) {
      throw new StaleBatch(`the checkpoint of ${model.name} moved while a batch was prepared`);
    }
    await writeRows(tx, client, tables, model, target.table, changes).catch((error: unknown) => {
      throw asWriteFailure(model, error);
    });
    await writeSnapshots(tx, tables, aggregate, snapshots);
  };
  if (ctx.client) {
    await write(ctx.client);
  } else if (target.lease && !model.write) {
    // Everything a declarative read model writes fits one statement (see commitBatch).
    await commitWithLease(ctx, target.lease, { ...move, lease: target.lease, changes, snapshots }).catch((error: unknown) => {
      if (!(error instanceof LeaseBusy)) ctx.cache.clear(); // busy wrote nothing and read nothing stale
      throw error;
    });
  } else {
    const client = await checkout(pool);
    try {
      // A read model is derived data: its commit need not wait for the WAL flush. A crash
      // may lose the last batches, rows and checkpoint together (one transaction), and they
      // are simply applied again; meanwhile the app's own commits do not queue behind ours.
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

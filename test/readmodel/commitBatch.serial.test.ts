import pg from 'pg';
import { beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { toSql } from '../../src/db/queryable.js';
import type { Hindsight } from '../../src/hindsight.js';
import { commitBatch, type BatchToCommit } from '../../src/readmodel/commitBatch.js';
import { tryAcquireLease } from '../../src/readmodel/leases.js';
import { LeaseBusy, processBatch, StateCache, type BatchContext } from '../../src/readmodel/processBatch.js';
import { createUpdater } from '../../src/readmodel/updater.js';
import { loadCheckpoint } from '../../src/store/checkpoints.js';
import type { GlobalCheckpoint } from '../../src/store/readAll.js';
import { storeTables } from '../../src/store/tables.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, readModelConfig } from '../helpers/fixtures.js';

// Serial: one test holds a lease row locked in an open transaction.
// The updater commits a batch as one statement (commitBatch): the lease, the checkpoint's
// compare and set, then the rows. Each guard must leave everything as it was.

const db = useTestDatabase(import.meta.url);
const config = resolveConfig(readModelConfig());
const tables = storeTables(config.quotedSchema);
const model = config.readModels.get('account_balances')!;
const aggregate = config.aggregates.get('account')!;
const OWNER = 'commit-test';
let hs: Hindsight;

beforeAll(async () => {
  hs = await prepareStore(db, readModelConfig());
  await hs.migrate(db.url);
  for (let id = 1; id <= 3; id++) await hs.append(db.pool, { aggregateType: 'account', aggregateId: id, events: [{ type: 'account.credited', payload: { amount: id } }] });
  await createUpdater(config, { connectionString: db.url }).runOnce();
});

beforeEach(async () => {
  await db.pool.query(`DELETE FROM hindsight.leases WHERE name = $1`, [model.subscriber]);
  expect(await tryAcquireLease(toSql(db.pool), tables, model.subscriber, OWNER, 60_000)).toBe(true);
});

const rowOf = async (id: number) =>
  (await db.pool.query(`SELECT balance::int AS b, hindsight_sequence::int AS s FROM read_models.account_balances WHERE aggregate_id = $1`, [String(id)])).rows[0];
const checkpoint = async () => (await loadCheckpoint(toSql(db.pool), tables, model.subscriber))!;
const tombstoneOf = async (id: number) =>
  (await db.pool.query(`SELECT sequence::int AS s FROM hindsight.read_model_tombstones WHERE table_oid = 'read_models.account_balances'::regclass::oid AND aggregate_id = $1`, [String(id)]))
    .rows[0];

function batch(from: GlobalCheckpoint, overrides: Partial<BatchToCommit> = {}): BatchToCommit {
  return {
    lease: { name: model.subscriber, owner: OWNER },
    subscriber: model.subscriber,
    from,
    to: { transactionId: from.transactionId, globalPosition: from.globalPosition + 1 },
    applied: 2,
    changes: [
      { aggregateId: '1', sequence: 5, state: { balance: 500 }, deleted: false },
      { aggregateId: '2', sequence: 2, state: { balance: 0 }, deleted: true },
    ],
    snapshots: [{ aggregateId: '1', folded: { state: { balance: 500 }, version: 5, deleted: false } }],
    ...overrides,
  };
}

async function commitOn(client: Parameters<typeof toSql>[0], toCommit: BatchToCommit) {
  return commitBatch(toSql(client), tables, aggregate, model, model.table, toCommit);
}

describe('the one-statement commit of a batch', () => {
  test('a stale checkpoint, a lease of another owner, an expired lease: nothing is written', async () => {
    const before = await checkpoint();
    const stale = { transactionId: before.position.transactionId, globalPosition: before.position.globalPosition - 1 };
    expect(await commitOn(db.pool, batch(stale))).toBe('moved');
    await db.pool.query(`UPDATE hindsight.leases SET owner = 'someone else' WHERE name = $1`, [model.subscriber]);
    expect(await commitOn(db.pool, batch(before.position))).toBe('not-held');
    await db.pool.query(`UPDATE hindsight.leases SET owner = $2, expires_at = clock_timestamp() - interval '1 second' WHERE name = $1`, [model.subscriber, OWNER]);
    expect(await commitOn(db.pool, batch(before.position))).toBe('not-held');
    expect(await rowOf(1)).toEqual({ b: 1, s: 1 });
    expect(await rowOf(2)).toEqual({ b: 2, s: 1 });
    expect(await tombstoneOf(2)).toBeUndefined();
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM hindsight.snapshots WHERE aggregate_id = '1' AND sequence = 5`)).rows[0].n).toBe(0);
    expect(await checkpoint()).toMatchObject({ position: before.position, eventsApplied: before.eventsApplied });
  });

  test("a lease row locked by another transaction: the commit does not wait and writes nothing; the batch retries, and gives up as busy (not a lost lease) only if it stays locked", async () => {
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 3, events: [{ type: 'account.credited', payload: { amount: 10 } }] });
    const holder = new pg.Client(db.url);
    await holder.connect();
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    const lockLease = async () => {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM hindsight.leases WHERE name = $1 FOR UPDATE`, [model.subscriber]);
    };
    const waiter = new pg.Client(db.url);
    await waiter.connect();
    try {
      await lockLease();
      // On a session with a lock timeout: a commit that waited for the row (held until later
      // in this test) would fail with 55P03 instead of answering.
      await waiter.query("SET lock_timeout = '5s'");
      expect(await commitOn(waiter, batch((await checkpoint()).position))).toBe('not-held');
      const context: BatchContext = {
        pool,
        tables,
        aggregate,
        model,
        cache: new StateCache(),
        batchSize: 100,
        target: { table: model.table, subscriber: model.subscriber, mayCommit: async () => true, lease: { name: model.subscriber, owner: OWNER } },
      };
      const at = (await checkpoint()).position;
      // locked throughout: about a second of retries, then busy, with nothing written
      await expect(processBatch(context, at)).rejects.toBeInstanceOf(LeaseBusy);
      expect(await rowOf(3)).toEqual({ b: 3, s: 1 });
      // locked until the first attempt found it so: a retry commits the same batch. The holder
      // lets go when that attempt has answered, not after a guessed time.
      const attempts: string[] = [];
      const query = pool.query.bind(pool) as (config: { text: string }) => Promise<{ rows: Array<{ held: boolean }> }>;
      (pool as unknown as { query: typeof query }).query = async (config) => {
        const result = await query(config);
        if (config.text.includes('SKIP LOCKED')) {
          attempts.push(result.rows[0]?.held ? 'held' : 'not held');
          if (attempts.length === 1) await holder.query('ROLLBACK');
        }
        return result;
      };
      const done = await processBatch(context, at);
      expect(attempts).toEqual(['not held', 'held']);
      expect(done.applied).toBe(1);
      expect(await rowOf(3)).toEqual({ b: 13, s: 2 });
    } finally {
      await waiter.end();
      await holder.end();
      await pool.end();
    }
  });

  test("committed: rows, tombstones, snapshots and the checkpoint together, and the session's synchronous_commit unchanged", async () => {
    const before = await checkpoint();
    const client = new pg.Client(db.url);
    await client.connect();
    try {
      expect(await commitOn(client, batch(before.position))).toBe('committed');
      expect((await client.query('SHOW synchronous_commit')).rows[0].synchronous_commit).toBe('on');
    } finally {
      await client.end();
    }
    expect(await rowOf(1)).toEqual({ b: 500, s: 5 });
    expect(await rowOf(2)).toBeUndefined();
    expect(await tombstoneOf(2)).toEqual({ s: 2 });
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM hindsight.snapshots WHERE aggregate_id = '1' AND sequence = 5`)).rows[0].n).toBe(1);
    expect(await checkpoint()).toMatchObject({
      position: { transactionId: before.position.transactionId, globalPosition: before.position.globalPosition + 1 },
      eventsApplied: before.eventsApplied + 2,
    });
  });
});

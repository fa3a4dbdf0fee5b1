import pg from 'pg';
import { beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import type { Hindsight } from '../../src/hindsight.js';
import { defineProjector } from '../../src/projection/defineProjector.js';
import { processBatch, StaleBatch, StateCache, type BatchContext } from '../../src/readmodel/processBatch.js';
import { rebuildReadModel } from '../../src/readmodel/rebuild.js';
import { createUpdater } from '../../src/readmodel/updater.js';
import { loadCheckpoint } from '../../src/store/checkpoints.js';
import { toSql } from '../../src/db/queryable.js';
import { storeTables } from '../../src/store/tables.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, readModelConfig } from '../helpers/fixtures.js';

// Serial: updaters, rebuilds and gap-safe reads.

const db = useTestDatabase(import.meta.url);
const config = resolveConfig(readModelConfig());
const tables = storeTables(config.quotedSchema);
let hs: Hindsight;

beforeAll(async () => {
  hs = await prepareStore(db, readModelConfig());
  await hs.migrate(db.url);
  for (let id = 1; id <= 5; id++) await hs.append(db.pool, { aggregateType: 'account', aggregateId: id, events: [{ type: 'account.credited', payload: { amount: id } }] });
  await createUpdater(config, { connectionString: db.url }).runOnce();
});

const balanceOf = async (id: number) =>
  (await db.pool.query(`SELECT balance::int AS b, hindsight_sequence::int AS s FROM read_models.account_balances WHERE aggregate_id = $1`, [String(id)])).rows[0];

describe('a batch never lands on a checkpoint that moved', () => {
  test('a batch prepared before a rebuild swap (the checkpoint moved under it) writes nothing', async () => {
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 1, events: [{ type: 'account.credited', payload: { amount: 100 } }] });
    const model = config.readModels.get('account_balances')!;
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    try {
      const checkpoint = (await loadCheckpoint(toSql(pool), tables, model.subscriber))!.position;
      const context: BatchContext = {
        pool,
        tables,
        aggregate: config.aggregates.get('account')!,
        model,
        cache: new StateCache(),
        batchSize: 100,
        target: {
          table: model.table,
          subscriber: model.subscriber,
          // between the batch's read and its commit, something (a swap) moves the checkpoint
          mayCommit: async (client) => {
            await client.query(`UPDATE hindsight.checkpoints SET global_position = global_position + 1000 WHERE subscriber = $1`, [model.subscriber]);
            return true;
          },
        },
      };
      const error = await processBatch(context, checkpoint).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StaleBatch);
      expect(await balanceOf(1)).toEqual({ b: 1, s: 1 }); // the credit of 100 was not written
    } finally {
      await pool.end();
    }
    await db.pool.query(`DELETE FROM hindsight.checkpoints WHERE subscriber = 'read-model:account_balances'`);
    await createUpdater(config, { connectionString: db.url }).runOnce();
    expect(await balanceOf(1)).toEqual({ b: 101, s: 2 });
  });
});

describe('failures that are not handler errors', () => {
  test('a value the column refuses stops the read model with the SQLSTATE, instead of retrying forever', async () => {
    const base = readModelConfig();
    const tiny = resolveConfig({
      ...base,
      aggregates: base.aggregates!.map((a) =>
        a.type === 'account' ? { ...a, readModels: [{ name: 'tiny_balances', table: 'read_models.tiny_balances', columns: { balance: { type: 'smallint' } } }] } : a,
      ),
    });
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 6, events: [{ type: 'account.credited', payload: { amount: 100_000 } }] });
    const [run] = await createUpdater(tiny, { connectionString: db.url, readModels: ['tiny_balances'] }).runOnce();
    expect(run).toMatchObject({ state: 'failed' });
    expect(run!.failure).toMatch(/a row could not be written: .*out of range.*SQLSTATE 22003/);
  });
});

describe('rebuild guards', () => {
  test('an unfinished rebuild of an older projector is started over, not resumed', async () => {
    const stop = new AbortController();
    stop.abort();
    expect((await rebuildReadModel(config, 'account_balances', { connectionString: db.url, signal: stop.signal })).outcome).toBe('interrupted');
    const base = readModelConfig();
    const v2 = resolveConfig({
      ...base,
      aggregates: base.aggregates!.map((a) =>
        a.type === 'account'
          ? {
              ...a,
              projector: defineProjector<{ balance: number }>({
                aggregateType: 'account',
                version: 2,
                initial: { balance: 0 },
                handlers: { 'account.credited': (s, e) => ({ balance: s.balance + 2 * e.payload.amount }) },
              }),
            }
          : a,
      ),
    });
    const result = await rebuildReadModel(v2, 'account_balances', { connectionString: db.url });
    expect(result).toMatchObject({ outcome: 'swapped', resumed: false });
    expect(await balanceOf(1)).toMatchObject({ b: 202 });
    await rebuildReadModel(config, 'account_balances', { connectionString: db.url });
    expect(await balanceOf(1)).toMatchObject({ b: 101 });
  });

  test('views on views are recreated in dependency order, with their options (security_invoker)', async () => {
    await db.pool.query(`CREATE VIEW read_models.outer_view AS SELECT 1 AS one`);
    await db.pool.query(`CREATE VIEW read_models.inner_view WITH (security_invoker = true) AS SELECT aggregate_id, balance FROM read_models.account_balances`);
    await db.pool.query(`CREATE OR REPLACE VIEW read_models.outer_view AS SELECT count(*)::int AS one FROM read_models.inner_view`);
    const result = await rebuildReadModel(config, 'account_balances', { connectionString: db.url });
    expect(result.outcome).toBe('swapped');
    const { rows } = await db.pool.query(`SELECT one FROM read_models.outer_view`);
    expect(rows[0].one).toBeGreaterThan(0);
    const { rows: options } = await db.pool.query(`SELECT reloptions FROM pg_class WHERE relname = 'inner_view'`);
    expect(options[0].reloptions).toEqual(['security_invoker=true']);
    await db.pool.query(`DROP VIEW read_models.outer_view, read_models.inner_view`);
  });

  test('row-level security on the live table is refused, not silently dropped', async () => {
    await db.pool.query(`ALTER TABLE read_models.account_balances ENABLE ROW LEVEL SECURITY`);
    try {
      await expect(rebuildReadModel(config, 'account_balances', { connectionString: db.url })).rejects.toThrow(
        /has row-level security, which a rebuild's table swap cannot carry over/,
      );
      const { rows } = await db.pool.query(`SELECT relrowsecurity FROM pg_class WHERE oid = 'read_models.account_balances'::regclass`);
      expect(rows[0].relrowsecurity).toBe(true); // the live table is untouched
    } finally {
      await db.pool.query(`ALTER TABLE read_models.account_balances DISABLE ROW LEVEL SECURITY`);
    }
  });
});

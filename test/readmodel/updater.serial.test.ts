import { beforeAll, describe, expect, test } from 'vitest';
import type { Hindsight } from '../../src/hindsight.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { pollUntil } from '../../src/db/pollUntil.js';
import { createUpdater } from '../../src/readmodel/updater.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, readModelConfig } from '../helpers/fixtures.js';

// Serial: the updater's gap-safe read waits for every open transaction in the cluster.

const db = useTestDatabase(import.meta.url);
let hs: Hindsight;
const config = resolveConfig(readModelConfig());

beforeAll(async () => {
  hs = await prepareStore(db, readModelConfig());
  await hs.migrate(db.url);
});

const credit = (id: number, amount: number) =>
  hs.append(db.pool, { aggregateType: 'account', aggregateId: id, events: [{ type: 'account.credited', payload: { amount } }] });

async function rows(table = 'read_models.account_balances') {
  const { rows } = await db.pool.query(`SELECT * FROM ${table} ORDER BY aggregate_id`);
  return rows as Array<Record<string, unknown>>;
}

describe('the updater', () => {
  test('migrate creates the read-model tables with their declared indexes', async () => {
    const { rows: indexes } = await db.pool.query(`SELECT indexname FROM pg_indexes WHERE schemaname = 'read_models' ORDER BY 1`);
    expect(indexes.map((r) => r.indexname)).toEqual(['account_balances_balance_idx', 'account_balances_pkey', 'customer_names_pkey']);
  });

  test('--once drains every read model: each row equals the projection and records its sequence', async () => {
    for (let i = 1; i <= 12; i++) await credit(1 + (i % 3), i);
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 1, events: [{ type: 'accounts.updated', payload: { before: {}, after: { owner: 'Ada' } } }] });
    const runs = await createUpdater(config, { connectionString: db.url }).runOnce();
    expect(runs.map((r) => [r.readModel, r.state])).toEqual([
      ['account_balances', 'stopped'],
      ['customer_names', 'stopped'],
    ]);
    const got = await rows();
    expect(got.map((r) => r.aggregate_id)).toEqual(['1', '2', '3']);
    for (const row of got) {
      const projected = await hs.project(db.pool, 'account', String(row.aggregate_id), { snapshots: false });
      if (!projected.found) throw new Error('expected a projection');
      expect(row).toMatchObject({ balance: String(projected.state.balance), hindsight_sequence: String(projected.version) });
    }
    expect(got[0]).toMatchObject({ owner: 'Ada' });
    // nothing new: a second run applies nothing
    const again = await createUpdater(config, { connectionString: db.url }).runOnce();
    expect(again[0]!.applied).toBe(0);
  });

  test('snapshots are written every N events of an aggregate', async () => {
    const { rows: snaps } = await db.pool.query(`SELECT aggregate_id, sequence FROM hindsight.snapshots WHERE aggregate_type = 'account' ORDER BY 1, 2`);
    expect(snaps.length).toBeGreaterThan(0);
    for (const snap of snaps) {
      const at = await hs.project(db.pool, 'account', snap.aggregate_id, { atSequence: Number(snap.sequence) });
      expect(at).toMatchObject({ fromSnapshot: Number(snap.sequence) });
    }
  });

  test('a deleted aggregate\'s row is removed or marked, as declared, and a late older event never brings it back', async () => {
    const customer = 'c0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';
    await hs.append(db.pool, { aggregateType: 'customer', aggregateId: customer, events: [{ type: 'customers.inserted', payload: { after: { name: 'Grace' } } }] });
    await credit(9, 5);
    await createUpdater(config, { connectionString: db.url }).runOnce();
    expect((await rows('read_models.customer_names')).map((r) => [r.name, r.hindsight_deleted])).toEqual([['Grace', false]]);
    await hs.append(db.pool, { aggregateType: 'customer', aggregateId: customer, events: [{ type: 'customers.deleted', payload: {} }] });
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 9, events: [{ type: 'accounts.deleted', payload: {} }] });
    await createUpdater(config, { connectionString: db.url }).runOnce();
    expect((await rows('read_models.customer_names')).map((r) => [r.name, r.hindsight_deleted])).toEqual([['Grace', true]]);
    expect((await rows()).map((r) => r.aggregate_id)).not.toContain('9');
    const { rows: tombstones } = await db.pool.query(`SELECT aggregate_id, sequence FROM hindsight.read_model_tombstones`);
    expect(tombstones).toEqual([{ aggregate_id: '9', sequence: '2' }]);
  });

  test('regression: --once renews its lease while draining a backlog longer than the lease lives', async () => {
    for (let i = 0; i < 30; i++) {
      await hs.append(db.pool, { aggregateType: 'account', aggregateId: 500 + i, events: Array.from({ length: 50 }, () => ({ type: 'account.credited', payload: { amount: 1 } })) });
    }
    const ttl = 1000;
    const logs: string[] = [];
    const updater = createUpdater(config, { connectionString: db.url, readModels: ['account_balances'], leaseTtlMs: ttl, batchSize: 10, onLog: (line) => logs.push(line) });
    // The backlog outlives the lease by construction, not by the machine's speed: the read
    // model's table is locked before the run, so its first page read waits (the updater's
    // startup takes no lock on an existing table) until the lease as first granted has
    // expired on the database's clock. Every batch then commits after that expiry, which
    // only a renewed lease allows.
    const holder = await db.pool.connect();
    let draining: Promise<Awaited<ReturnType<typeof updater.runOnce>>> | undefined;
    try {
      await holder.query('BEGIN; LOCK TABLE read_models.account_balances IN ACCESS EXCLUSIVE MODE');
      draining = updater.runOnce();
      const outlived = await pollUntil(async () => {
        const { rows: lease } = await db.pool.query(
          `SELECT 1 FROM hindsight.leases WHERE name = 'read-model:account_balances' AND owner = $1::text
             AND clock_timestamp() > acquired_at + $2::int * interval '1 millisecond'`,
          [updater.owner, ttl],
        );
        return lease.length === 1;
      }, 30_000);
      expect(outlived).toBe(true);
      const { rows: lease } = await db.pool.query(`SELECT expires_at > clock_timestamp() AS held FROM hindsight.leases WHERE name = 'read-model:account_balances'`);
      expect(lease).toEqual([{ held: true }]); // renewed while the drain waited
      // Through the lock's own transaction: nothing of the backlog was written before the expiry.
      const { rows: early } = await holder.query(`SELECT count(*)::int AS n FROM read_models.account_balances WHERE aggregate_id::int >= 500`);
      expect(early[0].n).toBe(0);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    const [run] = await draining!;
    expect(logs.filter((line) => /lease (lost|expired)/.test(line))).toEqual([]);
    expect(run).toMatchObject({ state: 'stopped' });
    const { rows: drained } = await db.pool.query(`SELECT count(*)::int AS n FROM read_models.account_balances WHERE aggregate_id::int >= 500 AND hindsight_sequence = 50`);
    expect(drained[0].n).toBe(30);
  });

  test('a running updater picks up each new event on its own, a lone event without the gathering pause, and stops cleanly', async () => {
    // A gathering pause far longer than any wait below: were it taken after a lone event (a
    // batch of fewer than 5), the next event would not be read before the wait gave up. How
    // soon a lone event is read is a latency, measured by the benchmarks (updater lag of a
    // lone event, scripts/bench/updaterLag.ts), not by a test.
    await createUpdater(config, { connectionString: db.url }).runOnce(); // from the end of the log: every batch below is one event
    const updater = createUpdater(config, { connectionString: db.url, gatherMs: 600_000 });
    const running = updater.run();
    await credit(20, 1); // wait for the first pass
    await waitFor(async () => (await rows()).some((r) => r.aggregate_id === '20'));
    for (let i = 0; i < 10; i++) {
      await credit(21, 1);
      await waitFor(async () => Number((await db.pool.query(`SELECT hindsight_sequence FROM read_models.account_balances WHERE aggregate_id = '21'`)).rows[0]?.hindsight_sequence) === i + 1);
    }
    await updater.stop();
    const runs = await running;
    expect(runs.every((r) => r.state === 'stopped')).toBe(true);
    const { rows: leases } = await db.pool.query(`SELECT * FROM hindsight.leases`);
    expect(leases).toEqual([]); // released on stop
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

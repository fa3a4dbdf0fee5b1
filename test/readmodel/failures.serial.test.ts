import pg from 'pg';
import { beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { isRestoredClusterError } from '../../src/errors.js';
import type { Hindsight } from '../../src/hindsight.js';
import { defineProjector } from '../../src/projection/defineProjector.js';
import { createUpdater } from '../../src/readmodel/updater.js';
import { migrate } from '../../src/store/migrate.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, readModelConfig } from '../helpers/fixtures.js';
import { runCli, scratchDir, writeTestConfig } from '../helpers/cli.js';
import { backendPid, waitUntilBlockedBy } from '../helpers/locks.js';

// Serial: gap-safe reads, open transactions, and a look at every session of the cluster.

const db = useTestDatabase(import.meta.url);
let hs: Hindsight;

/** The read-model config with an account projector that throws on a poison amount. */
function poisoned(poison: number | null) {
  const base = readModelConfig();
  return resolveConfig({
    ...base,
    aggregates: base.aggregates!.map((a) =>
      a.type === 'account'
        ? {
            ...a,
            projector: defineProjector<{ balance: number }>({
              aggregateType: 'account',
              initial: { balance: 0 },
              handlers: {
                'account.credited': (s, e) => {
                  if (e.payload.amount === poison) throw new Error(`cannot credit ${poison}`);
                  return { balance: s.balance + e.payload.amount };
                },
              },
            }),
          }
        : a,
    ),
  });
}

beforeAll(async () => {
  hs = await prepareStore(db, readModelConfig());
  await hs.migrate(db.url);
});

describe('failures', () => {
  test('a throwing handler stops only its read model, names the event, keeps the position; after the fix it resumes', async () => {
    const customer = 'd0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 1, events: [{ type: 'account.credited', payload: { amount: 5 } }] });
    const poison = await hs.append(db.pool, { aggregateType: 'account', aggregateId: 1, events: [{ type: 'account.credited', payload: { amount: 13 } }] });
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 2, events: [{ type: 'account.credited', payload: { amount: 7 } }] });
    await hs.append(db.pool, { aggregateType: 'customer', aggregateId: customer, events: [{ type: 'customers.inserted', payload: { after: { name: 'Grace' } } }] });

    const runs = await createUpdater(poisoned(13), { connectionString: db.url }).runOnce();
    const balances = runs.find((r) => r.readModel === 'account_balances')!;
    expect(balances.state).toBe('failed');
    expect(balances.failure).toContain('read model account_balances stopped: account 1 event 2');
    expect(balances.failure).toContain(poison.eventIds[0]);
    expect(balances.failure).toContain('cannot credit 13');
    expect(runs.find((r) => r.readModel === 'customer_names')!.state).toBe('stopped');
    const { rows: names } = await db.pool.query(`SELECT name FROM read_models.customer_names`);
    expect(names).toEqual([{ name: 'Grace' }]);
    // nothing of the failed batch was written, and the checkpoint did not move past it
    const { rows: balanceRows } = await db.pool.query(`SELECT * FROM read_models.account_balances`);
    expect(balanceRows).toEqual([]);
    const status = await hs.projectStatus(db.pool);
    expect(status.readModels.find((m) => m.readModel === 'account_balances')).toMatchObject({ state: 'failed', lag: { events: 3 } });

    // still failed on the next start, until told to retry
    expect((await createUpdater(poisoned(13), { connectionString: db.url }).runOnce())[0]).toMatchObject({ state: 'failed', applied: 0 });
    const fixed = await createUpdater(poisoned(null), { connectionString: db.url, retryFailed: true }).runOnce();
    expect(fixed[0]).toMatchObject({ state: 'stopped', applied: 3 });
    const { rows: after } = await db.pool.query(`SELECT aggregate_id, balance FROM read_models.account_balances ORDER BY 1`);
    expect(after).toEqual([
      { aggregate_id: '1', balance: '18' },
      { aggregate_id: '2', balance: '7' },
    ]);
  });

  test('the lease is re-checked at every checkpoint: a holder that lost it writes nothing', async () => {
    const config = resolveConfig(readModelConfig());
    const logs: string[] = [];
    const updater = createUpdater(config, { connectionString: db.url, readModels: ['account_balances'], leaseTtlMs: 60_000, onLog: (l) => logs.push(l) });
    const running = updater.run();
    await waitFor(async () => (await db.pool.query(`SELECT 1 FROM hindsight.leases WHERE owner = $1`, [updater.owner])).rows.length === 1);
    // another process takes the lease over (as after this one paused past its expiry)
    await db.pool.query(`UPDATE hindsight.leases SET owner = 'someone-else', expires_at = now() + interval '1 hour'`);
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 3, events: [{ type: 'account.credited', payload: { amount: 1 } }] });
    await waitFor(async () => logs.some((l) => l.includes('lease lost') || l.includes('lease expired')));
    // Standing by, it tries to take the lease back now and then: with the row held FOR SHARE
    // such an attempt waits, and once one does, the updater is past the lost batch.
    const row = await db.pool.connect();
    try {
      await row.query('BEGIN');
      await row.query(`SELECT 1 FROM hindsight.leases FOR SHARE`);
      await waitUntilBlockedBy(db.pool, await backendPid(row), 'the updater trying to take the lease back');
      expect((await db.pool.query(`SELECT 1 FROM read_models.account_balances WHERE aggregate_id = '3'`)).rows).toEqual([]);
    } finally {
      await row.query('ROLLBACK');
      row.release();
    }
    // the other process goes away: this one takes over and catches up
    await db.pool.query(`DELETE FROM hindsight.leases`);
    await waitFor(async () => (await db.pool.query(`SELECT 1 FROM read_models.account_balances WHERE aggregate_id = '3'`)).rows.length === 1);
    await updater.stop();
    await running;
  });

  test('status names the pid and database of a write transaction held open in another database', async () => {
    const other = `${db.name}_other`;
    await db.pool.query(`CREATE DATABASE ${other}`);
    const holder = new pg.Client(db.urlFor(other));
    await holder.connect();
    try {
      await holder.query('BEGIN');
      const { rows } = await holder.query<{ pid: number; xid: string }>(`SELECT pg_backend_pid() AS pid, pg_current_xact_id()::text AS xid`);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const status = await hs.projectStatus(db.pool);
      expect(status.horizon).toMatchObject({ pid: rows[0]!.pid, database: other });
      expect(status.horizon!.ageSeconds).toBeGreaterThan(1);
      // and the CLI says so
      const cwd = await scratchDir('status');
      await writeTestConfig(cwd, 'readModelConfig');
      const cli = await runCli(['project', '--status', '--database-url', db.url], { cwd });
      expect(cli.stdout).toContain(`pid ${rows[0]!.pid}`);
      expect(cli.stdout).toContain(`in database ${other}`);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
      await db.pool.query(`DROP DATABASE ${other}`);
    }
  });

  test('stored transaction ids above the server\'s (a restore into a new cluster) make the updater refuse', async () => {
    const restored = `${db.name}_restored`;
    await db.pool.query(`CREATE DATABASE ${restored}`);
    const url = db.urlFor(restored);
    try {
      await migrate({ connectionString: url });
      const client = new pg.Client(url);
      await client.connect();
      await client.query(`CREATE TABLE accounts (id bigint PRIMARY KEY)`);
      // an event as a dump from a busier cluster would carry it
      await client.query(`
        INSERT INTO hindsight.events (aggregate_type, aggregate_id, sequence, event_type, payload, transaction_id, hash)
        VALUES ('account', '1', 1, 'account.credited', '{"amount": 1}', (pg_snapshot_xmax(pg_current_snapshot())::text::bigint + 5000000)::text::xid8, sha256('x'))`);
      await client.end();
      const error = await createUpdater(resolveConfig(readModelConfig()), { connectionString: url }).runOnce().catch((e: unknown) => e);
      expect(isRestoredClusterError(error)).toBe(true);
      expect((error as Error).message).toMatch(/restored into another cluster.*pg_resetwal -e 0 -x \d+/);
    } finally {
      await db.pool.query(`DROP DATABASE ${restored} WITH (FORCE)`);
    }
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

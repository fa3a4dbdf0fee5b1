import { spawn } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import type { Hindsight } from '../../src/hindsight.js';
import { cancelRebuild, rebuildReadModel } from '../../src/readmodel/rebuild.js';
import { createUpdater } from '../../src/readmodel/updater.js';
import { pollUntil } from '../../src/db/pollUntil.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, readModelConfig } from '../helpers/fixtures.js';
import { scratchDir, writeTestConfig } from '../helpers/cli.js';
import { backendPid, waitUntilBlockedBy, waitUntilWaiting } from '../helpers/locks.js';

// Serial: an updater, writers and readers run through a table swap.

const db = useTestDatabase(import.meta.url);
const config = resolveConfig(readModelConfig());
let hs: Hindsight;
const reader = `hs_reader_${Math.random().toString(36).slice(2, 8)}`;

beforeAll(async () => {
  hs = await prepareStore(db, readModelConfig());
  await hs.migrate(db.url);
  for (let id = 1; id <= 40; id++) {
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: id, events: Array.from({ length: 5 }, (_, i) => ({ type: 'account.credited', payload: { amount: i + 1 } })) });
  }
  await createUpdater(config, { connectionString: db.url }).runOnce();
  await db.pool.query(`CREATE ROLE ${reader} LOGIN PASSWORD 'reader-pw'`);
  await db.pool.query(`GRANT USAGE ON SCHEMA read_models TO ${reader}`);
  await db.pool.query(`GRANT SELECT ON read_models.account_balances TO ${reader}`);
  await db.pool.query(`CREATE VIEW read_models.rich_accounts AS SELECT aggregate_id, balance FROM read_models.account_balances WHERE balance > 10`);
  await db.pool.query(`CREATE VIEW read_models.rich_count AS SELECT count(*) AS n FROM read_models.rich_accounts`);
  await db.pool.query(`GRANT SELECT ON read_models.rich_accounts, read_models.rich_count TO ${reader}`);
});
afterAll(async () => {
  await db.pool.query(`DROP OWNED BY ${reader}`).catch(() => undefined);
  await db.pool.query(`DROP ROLE IF EXISTS ${reader}`).catch(() => undefined);
});

/** Every aggregate's row equals its fresh projection; a deleted aggregate has no row. */
async function expectRowsEqualFreshProjections(): Promise<void> {
  const { rows } = await db.pool.query(`SELECT aggregate_id, balance::int AS balance, hindsight_sequence::int AS sequence FROM read_models.account_balances`);
  const byId = new Map(rows.map((r) => [r.aggregate_id as string, r]));
  const { rows: heads } = await db.pool.query(`SELECT aggregate_id FROM hindsight.heads WHERE aggregate_type = 'account'`);
  for (const { aggregate_id: id } of heads) {
    const fresh = await hs.project(db.pool, 'account', id, { snapshots: false });
    if (!fresh.found) throw new Error('expected a projection');
    const row = byId.get(id);
    if (fresh.deleted) {
      expect({ id, row }).toEqual({ id, row: undefined });
    } else {
      expect([id, row?.balance, row?.sequence]).toEqual([id, fresh.state.balance, fresh.version]);
    }
  }
}

/**
 * Lets a rebuild's flushes commit one at a time. Each flush first locks the rebuild's lease
 * row FOR UPDATE. Two sessions of the test take turns holding that row, one FOR KEY SHARE and
 * one FOR UPDATE (which conflict), and at each step the next holder queues behind the flush
 * that waits before the current holder lets go: while the turnstile is shut no flush
 * commits, and a step lets at most one through. FOR KEY SHARE, taken before the rebuild
 * starts, lets it take over the (expired) lease, an update of other columns, but not flush.
 */
async function flushTurnstile(lease: string): Promise<{ step(): Promise<void>; close(): Promise<void> }> {
  const sessions = [new pg.Client(db.url), new pg.Client(db.url)] as const;
  for (const session of sessions) await session.connect();
  const pids = [await backendPid(sessions[0]), await backendPid(sessions[1])];
  const modes = ['FOR KEY SHARE', 'FOR UPDATE'];
  const lock = (i: number) => sessions[i]!.query(`SELECT 1 FROM hindsight.leases WHERE name = $1 ${modes[i]}`, [lease]);
  let holder = 0;
  await sessions[holder]!.query('BEGIN');
  await lock(holder);
  return {
    async step() {
      await waitUntilBlockedBy(db.pool, pids[holder]!, 'a flush of the rebuild');
      const next = 1 - holder;
      await sessions[next]!.query('BEGIN');
      const taken = lock(next);
      await waitUntilWaiting(db.pool, pids[next]!, 'the next holder of the lease row');
      await sessions[holder]!.query('COMMIT');
      await taken;
      holder = next;
    },
    async close() {
      for (const session of sessions) {
        await session.query('ROLLBACK').catch(() => undefined);
        await session.end();
      }
    },
  };
}

describe('rebuild without downtime', () => {
  test('while writes continue through the swap: readers never see an empty or half-built table; grants, views and indexes survive', async () => {
    const updater = createUpdater(config, { connectionString: db.url, readModels: ['account_balances'] });
    const updating = updater.run();
    let writing = true;
    let swapped = false;
    // Credits, and now and then a delete and a re-insert, so stale work could resurrect or remove rows.
    let deletes = 0;
    let writesAfterSwap = 0;
    const writes = (async () => {
      let n = 0;
      while (writing) {
        const after = swapped;
        const id = 1 + (n++ % 60);
        const type = n % 17 === 0 ? 'accounts.deleted' : n % 17 === 1 && n > 17 ? 'accounts.inserted' : 'account.credited';
        if (type === 'accounts.deleted') deletes += 1;
        const payload = type === 'accounts.deleted' ? {} : type === 'accounts.inserted' ? { after: { owner: 'again' } } : { amount: 1 };
        await hs.append(db.pool, { aggregateType: 'account', aggregateId: id, events: [{ type, payload }] });
        if (after) writesAfterSwap += 1;
      }
    })();
    const url = new URL(db.url);
    url.username = reader;
    url.password = 'reader-pw';
    const readerClient = new pg.Client(url.toString());
    await readerClient.connect();
    let reading = true;
    const seen: number[] = [];
    const errors: unknown[] = [];
    let readsAfterSwap = 0;
    const reads = (async () => {
      while (reading) {
        const after = swapped;
        try {
          // One relation per query, as applications read (a query locking the table and then a
          // view on it, in the opposite order to the swap, can deadlock with it: see the README).
          const { rows } = await readerClient.query(`SELECT count(*)::int AS n FROM read_models.account_balances`);
          await readerClient.query(`SELECT n FROM read_models.rich_count`);
          seen.push(rows[0].n);
          if (after) readsAfterSwap += 1;
        } catch (error) {
          errors.push(error);
        }
      }
    })();

    const result = await rebuildReadModel(config, 'account_balances', { connectionString: db.url, batchSize: 40 });
    swapped = true;
    expect(result).toMatchObject({ outcome: 'swapped', resumed: false });
    expect(result.events).toBeGreaterThanOrEqual(200);
    // Readers and writers go on against the swapped-in table, and the writes include a
    // delete, whatever the speed of this machine: until then, not for a fixed time.
    expect(await pollUntil(async () => readsAfterSwap >= 10 && writesAfterSwap >= 20 && deletes > 0, 60_000)).toBe(true);
    reading = false;
    await reads;
    writing = false;
    await writes;
    await readerClient.end();
    await updater.stop();
    await updating;
    await createUpdater(config, { connectionString: db.url }).runOnce();

    expect(errors).toEqual([]);
    // never empty or half-built: never fewer rows than before, less what was deleted meanwhile
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(40 - deletes);
    expect(deletes).toBeGreaterThan(0);
    await expectRowsEqualFreshProjections();
    const { rows: indexes } = await db.pool.query(`SELECT indexname FROM pg_indexes WHERE tablename = 'account_balances' ORDER BY 1`);
    expect(indexes.map((r) => r.indexname)).toEqual(['account_balances_balance_idx', 'account_balances_pkey']);
    const { rows: views } = await db.pool.query(`SELECT viewname FROM pg_views WHERE schemaname = 'read_models' ORDER BY 1`);
    expect(views.map((r) => r.viewname)).toEqual(['rich_accounts', 'rich_count']);
    const { rows: grants } = await db.pool.query(
      `SELECT table_name FROM information_schema.role_table_grants WHERE grantee = $1 AND privilege_type = 'SELECT' ORDER BY 1`,
      [reader],
    );
    expect(grants.map((r) => r.table_name)).toEqual(['account_balances', 'rich_accounts', 'rich_count']);
    const { rows: leftovers } = await db.pool.query(`SELECT subscriber FROM hindsight.checkpoints WHERE subscriber LIKE 'rebuild:%'`);
    expect(leftovers).toEqual([]);
  });

  test('killed mid-build, it resumes from its own checkpoint, not from the start', async () => {
    const cwd = await scratchDir('rebuild');
    await writeTestConfig(cwd, 'readModelConfig');
    const applied = async () => Number((await db.pool.query(`SELECT events_applied FROM hindsight.checkpoints WHERE subscriber = 'rebuild:account_balances'`)).rows[0]?.events_applied ?? 0);
    // Killed while at least 60 events are built and many more are not, by construction: its
    // flushes pass a turnstile one at a time, and it is killed while the turnstile is shut.
    await db.pool.query(
      `INSERT INTO hindsight.leases (name, owner, expires_at) VALUES ('rebuild:account_balances', 'nobody', now() - interval '1 minute')
       ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at`,
    );
    const turnstile = await flushTurnstile('rebuild:account_balances');
    try {
      const child = spawn(process.execPath, [path.resolve(import.meta.dirname, '../../bin/hindsight.js'), 'rebuild', 'account_balances', '--batch-size', '5', '--checkpoint-every', '0', '--database-url', db.url], { cwd, stdio: 'ignore' });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      while ((await applied()) < 60) await turnstile.step();
      child.kill('SIGKILL');
      await exited;
    } finally {
      await turnstile.close();
    }
    const before = await applied();
    expect(before).toBeGreaterThanOrEqual(60);
    const { rows: [log] } = await db.pool.query(`SELECT count(*)::int AS n FROM hindsight.events WHERE aggregate_type = 'account'`);
    expect(before).toBeLessThan(log.n); // killed mid-build, with chunks still to read
    await db.pool.query(`DELETE FROM hindsight.leases WHERE name = 'rebuild:account_balances'`); // its lease would expire on its own after 30 s
    const resumed = await rebuildReadModel(config, 'account_balances', { connectionString: db.url, batchSize: 5 });
    expect(resumed).toMatchObject({ outcome: 'swapped', resumed: true });
    expect(resumed.eventsThisRun).toBe(resumed.events - before);
    expect(resumed.eventsThisRun).toBeLessThan(resumed.events);
    await expectRowsEqualFreshProjections();
  });

  test('stopped by a signal it is left resumable; --cancel drops it', async () => {
    const stop = new AbortController();
    stop.abort();
    const interrupted = await rebuildReadModel(config, 'account_balances', { connectionString: db.url, signal: stop.signal });
    expect(interrupted.outcome).toBe('interrupted');
    expect((await db.pool.query(`SELECT to_regclass('read_models.account_balances__rebuild') IS NOT NULL AS shadow`)).rows[0].shadow).toBe(true);
    expect(await cancelRebuild(config, 'account_balances', db.url)).toBe(true);
    expect((await db.pool.query(`SELECT to_regclass('read_models.account_balances__rebuild') IS NOT NULL AS shadow`)).rows[0].shadow).toBe(false);
    await expectRowsEqualFreshProjections();
  });
});

import type pg from 'pg';
import { beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import type { Hindsight } from '../../src/hindsight.js';
import { createUpdater } from '../../src/readmodel/updater.js';
import type { ReadModelWriteInput } from '../../src/readmodel/declaration.js';
import { START_OF_LOG, type GlobalCheckpoint } from '../../src/store/readAll.js';
import type { StoredEvent } from '../../src/types.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, readModelConfig } from '../helpers/fixtures.js';
import { runCli, scratchDir, writeTestConfig } from '../helpers/cli.js';

// Serial: gap-safe global reads.

const db = useTestDatabase(import.meta.url);
let hs: Hindsight;
const customer = 'e0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';

beforeAll(async () => {
  hs = await prepareStore(db, readModelConfig());
  await hs.migrate(db.url);
  await hs.append(db.pool, { aggregateType: 'account', aggregateId: 1, events: [{ type: 'account.credited', payload: { amount: 1 }, occurredAt: '2026-02-01T10:00:00Z' }] });
  await hs.append(db.pool, { aggregateType: 'customer', aggregateId: customer, events: [{ type: 'customers.inserted', payload: { after: { name: 'A' } }, occurredAt: '2026-02-02T10:00:00Z' }] });
  await hs.append(db.pool, { aggregateType: 'account', aggregateId: 2, events: [{ type: 'account.debited', payload: { amount: 1 }, occurredAt: '2026-02-03T10:00:00Z' }] });
  await hs.append(db.pool, { aggregateType: 'account', aggregateId: 1, events: [{ type: 'account.credited', payload: { amount: 2 }, occurredAt: '2026-02-04T10:00:00Z' }] });
});

async function readEverything(options: Parameters<Hindsight['readAll']>[1] = {}): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  let after: GlobalCheckpoint = START_OF_LOG;
  for (;;) {
    const page = await hs.readAll(db.pool, { ...options, after, limit: 1 });
    events.push(...page.events);
    after = page.checkpoint;
    if (page.scanned === 0) return events;
  }
}

describe('global reads for subscribers', () => {
  test('by aggregate type, by event type and by time range; the checkpoint moves past what does not match', async () => {
    expect((await readEverything({ aggregateTypes: ['customer'] })).map((e) => e.type)).toEqual(['customers.inserted']);
    expect((await readEverything({ eventTypes: ['account.credited'] })).map((e) => e.payload)).toEqual([{ amount: 1 }, { amount: 2 }]);
    expect((await readEverything({ from: '2026-02-02T00:00:00Z', to: new Date('2026-02-04T00:00:00Z') })).map((e) => e.type)).toEqual([
      'customers.inserted',
      'account.debited',
    ]);
    const page = await hs.readAll(db.pool, { eventTypes: ['account.debited'], limit: 10 });
    expect(page.scanned).toBe(4);
    expect(page.events).toHaveLength(1);
    expect(page.checkpoint.globalPosition).toBe(4); // past the last scanned event, not the last match
  });

  test('checkpoints are stored per subscriber and never move back', async () => {
    expect(await hs.checkpoint(db.pool, 'mailer')).toBeUndefined();
    const page = await hs.readAll(db.pool, { limit: 3 });
    await hs.saveCheckpoint(db.pool, 'mailer', page.checkpoint);
    expect((await hs.checkpoint(db.pool, 'mailer'))!.position).toEqual(page.checkpoint);
    await hs.saveCheckpoint(db.pool, 'mailer', START_OF_LOG);
    expect((await hs.checkpoint(db.pool, 'mailer'))!.position).toEqual(page.checkpoint);
  });

  test('the order helper gives each aggregate its contiguous events after what was applied, from the store where the page skips ahead', async () => {
    const page = (await hs.readAll(db.pool, { aggregateTypes: ['account'] })).events;
    const lastOfAccount1 = page.filter((e) => e.aggregateId === '1').slice(-1); // only sequence 2 of account 1
    const runs = await hs.inAggregateOrder(db.pool, [...lastOfAccount1, ...page.filter((e) => e.aggregateId === '2')], async () => new Map());
    expect(runs.map((r) => [r.aggregateId, r.from, r.events.map((e) => e.sequence)])).toEqual([
      ['1', 0, [1, 2]],
      ['2', 0, [1]],
    ]);
    const skipped = await hs.inAggregateOrder(db.pool, lastOfAccount1, async () => new Map([['account\u00001', 2]]));
    expect(skipped).toEqual([]);
  });
});

describe('read models', () => {
  test('a custom write function runs in the updater\'s transaction, after the row', async () => {
    const base = readModelConfig();
    const config = resolveConfig({
      ...base,
      aggregates: base.aggregates!.map((a) =>
        a.type === 'account'
          ? {
              ...a,
              readModels: [
                {
                  name: 'account_audit',
                  table: 'read_models.account_audit',
                  write: async ({ db: tx, table, aggregateId, state, sequence }: ReadModelWriteInput) => {
                    await (tx as pg.ClientBase).query(`CREATE TABLE IF NOT EXISTS read_models.balance_history (aggregate_id text, sequence bigint, balance bigint)`);
                    await (tx as pg.ClientBase).query(`INSERT INTO read_models.balance_history VALUES ($1, $2, $3)`, [aggregateId, sequence, (state as { balance: number }).balance]);
                    await (tx as pg.ClientBase).query(`SELECT 1 FROM ${table} WHERE aggregate_id = $1`, [aggregateId]);
                  },
                },
              ],
            }
          : a,
      ),
    });
    await createUpdater(config, { connectionString: db.url, readModels: ['account_audit'] }).runOnce();
    const { rows } = await db.pool.query(`SELECT aggregate_id, sequence::int, balance::int FROM read_models.balance_history ORDER BY 1`);
    expect(rows).toEqual([
      { aggregate_id: '1', sequence: 2, balance: 3 },
      { aggregate_id: '2', sequence: 1, balance: -1 },
    ]);
    const { rows: base_ } = await db.pool.query(`SELECT aggregate_id, hindsight_sequence::int AS s FROM read_models.account_audit ORDER BY 1`);
    expect(base_).toEqual([
      { aggregate_id: '1', s: 2 },
      { aggregate_id: '2', s: 1 },
    ]);
  });

  test('the CLI drains with --once, reports --status, and rebuilds --all with a --json summary', async () => {
    const cwd = await scratchDir('project');
    await writeTestConfig(cwd, 'readModelConfig');
    const run = (...args: string[]) => runCli([...args, '--database-url', db.url], { cwd });
    const before = await run('project', '--status', '--json');
    expect(JSON.parse(before.stdout).readModels.map((m: { state: string }) => m.state)).toEqual(['never-run', 'never-run']);
    expect((await run('project', '--once')).code).toBe(0);
    const after = await run('project', '--status');
    expect(after.code).toBe(0);
    expect(after.stdout).toContain('account_balances (account -> "read_models"."account_balances"): caught-up');
    const rebuilt = await run('rebuild', '--all', '--json');
    expect(rebuilt.code).toBe(0);
    expect(JSON.parse(rebuilt.stdout).rebuilds.map((r: { readModel: string; outcome: string }) => [r.readModel, r.outcome])).toEqual([
      ['account_balances', 'swapped'],
      ['customer_names', 'swapped'],
    ]);
    expect((await run('rebuild')).code).toBe(2);
  });
});

import { beforeAll, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { toSql } from '../../src/db/queryable.js';
import { createHindsight } from '../../src/hindsight.js';
import { createUpdater } from '../../src/readmodel/updater.js';
import { projectStatus } from '../../src/readmodel/status.js';
import { storeTables } from '../../src/store/tables.js';
import { capturingSql, planNodes } from '../helpers/capturingSql.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, readModelConfig } from '../helpers/fixtures.js';

/**
 * Read-model status is polled by metrics, health and the console, so it must cost what the
 * lag costs, not what the log costs. It once looked for the newest event of a type by
 * walking the log backwards through every later event of other types: 2.6 s on a log of
 * 10,000,000 events (issue 12's scale bench, auto_explain: 9,036,689 rows removed by
 * filter). At this test's size the planner reads that query through the type's index
 * instead, so the bound below guards against a scan of the log; the head's meaning (the
 * newest event not yet applied, found in the lag's own range) is what the old query fails.
 */

const db = useTestDatabase(import.meta.url);
const config = resolveConfig(readModelConfig());
const tables = storeTables(config.quotedSchema);
const OTHER_EVENTS = 100_000;

beforeAll(async () => {
  const hs = await prepareStore(db, readModelConfig());
  for (let id = 1; id <= 3; id++) await hs.append(db.pool, { aggregateType: 'account', aggregateId: id, events: [{ type: 'account.credited', payload: { amount: 5 } }] });
  // Then a long run of another type's events (a plain bulk insert: only the shape matters
  // here), which the updater passes: its checkpoint ends up after them all.
  await db.pool.query(
    `INSERT INTO hindsight.events (aggregate_type, aggregate_id, sequence, event_type, payload, hash)
     SELECT 'customer', g::text, 1, 'customer.renamed', '{"name":"x"}', sha256(g::text::bytea) FROM generate_series(1, $1::int) g`,
    [OTHER_EVENTS],
  );
  await db.pool.query('ANALYZE hindsight.events');
  await createUpdater(config, { connectionString: db.url, readModels: ['account_balances'] }).runOnce();
});

/** Every statement projectStatus sends, with the rows its plan read from the events table (returned plus filtered out). */
async function eventsRowsRead(): Promise<number[]> {
  const { sql, captured } = capturingSql(db.pool);
  await projectStatus(sql, tables, config, ['account_balances']);
  const read: number[] = [];
  for (const { text, values } of captured) {
    if (!text.includes(tables.events)) continue;
    const onEvents = (await planNodes(db.pool, text, values, { analyze: true })).filter((node) => node['Relation Name'] === 'events');
    read.push(onEvents.reduce((sum, node) => sum + Number(node['Actual Rows'] ?? 0) + Number(node['Rows Removed by Filter'] ?? 0), 0));
  }
  return read;
}

test(`status of a caught-up read model reads a bounded number of events, whatever follows its type's last event (${OTHER_EVENTS.toLocaleString('en-US')} of another type here)`, async () => {
  const read = await eventsRowsRead();
  expect(read.length).toBeGreaterThan(0);
  // Nothing follows the checkpoint: no statement may read the log before it.
  for (const rows of read) expect(rows).toBeLessThanOrEqual(10);
  const status = (await projectStatus(toSql(db.pool), tables, config, ['account_balances'])).readModels[0]!;
  expect(status).toMatchObject({ state: 'caught-up', lag: { events: 0 }, head: null });
});

test('status reports the newest pending event of its type as the head, and none once applied', async () => {
  const hs = createHindsight(readModelConfig());
  await hs.append(db.pool, { aggregateType: 'account', aggregateId: 2, events: [{ type: 'account.credited', payload: { amount: 1 } }, { type: 'account.credited', payload: { amount: 2 } }] });
  const [newest] = (await db.pool.query<{ p: string }>(`SELECT max(global_position)::text AS p FROM hindsight.events WHERE aggregate_type = 'account'`)).rows;
  const behind = (await projectStatus(toSql(db.pool), tables, config, ['account_balances'])).readModels[0]!;
  expect(behind.lag.events).toBe(2);
  expect(behind.head?.globalPosition).toBe(Number(newest!.p));
  expect(Date.parse(behind.head!.recordedAt)).toBeGreaterThan(Date.now() - 60_000);
  await createUpdater(config, { connectionString: db.url, readModels: ['account_balances'] }).runOnce();
  expect((await projectStatus(toSql(db.pool), tables, config, ['account_balances'])).readModels[0]).toMatchObject({ state: 'caught-up', head: null });
});

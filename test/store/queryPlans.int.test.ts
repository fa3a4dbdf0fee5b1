import { beforeAll, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { byKey } from '../../src/db/canonicalKey.js';
import type { Sql } from '../../src/db/queryable.js';
import { appendEvents } from '../../src/store/appendEvents.js';
import { prepareRows } from '../../src/store/append.js';
import { readAggregate, readHead, sequenceAsOf } from '../../src/store/readAggregate.js';
import { readAll } from '../../src/store/readAll.js';
import { storeTables } from '../../src/store/tables.js';
import { capturingSql, planNodes } from '../helpers/capturingSql.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, testConfig } from '../helpers/fixtures.js';

const db = useTestDatabase(import.meta.url);
const config = resolveConfig(testConfig());
const account = config.aggregates.get('account')!;
const tables = storeTables(config.quotedSchema);

beforeAll(async () => {
  await prepareStore(db);
  // 200,000 events: 2,000 accounts of 100 events, one a minute (the hashes are not a chain: only plans matter here)
  await db.pool.query(`
    INSERT INTO hindsight.events (aggregate_type, aggregate_id, sequence, event_type, payload, occurred_at, hash)
    SELECT 'account', (g / 100)::text, g % 100 + 1, 'account.credited', jsonb_build_object('amount', 1),
           timestamptz '2026-01-01 00:00Z' + g * interval '1 minute', sha256(g::text::bytea)
    FROM generate_series(0, 199999) g`);
  await db.pool.query(`
    INSERT INTO hindsight.heads SELECT 'account', g::text, 100, sha256(g::text::bytea) FROM generate_series(0, 1999) g`);
  await db.pool.query('ANALYZE hindsight.events; ANALYZE hindsight.heads');
});

/** The scan node types on hindsight's events and heads tables in the plan of `text`. */
async function scansOf(text: string, values: readonly unknown[]): Promise<string[]> {
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN'); // EXPLAIN of a data-modifying statement plans it without running it; roll back anyway
    const nodes = await planNodes(client, text, values);
    return nodes.filter((node) => node['Relation Name'] === 'events' || node['Relation Name'] === 'heads').map((node) => String(node['Node Type']));
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

const key = ['1234'];
const ref = byKey(account.key, key);

const cases: Array<readonly [string, (sql: Sql) => Promise<unknown>]> = [
  ['the per-aggregate read', (sql: Sql) => readAggregate(sql, tables, account, ref)],
  ['the per-aggregate read from a sequence', (sql: Sql) => readAggregate(sql, tables, account, ref, { fromSequence: 50 })],
  ['the per-aggregate time-range read', (sql: Sql) => readAggregate(sql, tables, account, ref, { from: '2026-01-01T20:00:00Z', to: '2026-01-01T21:00:00Z' })],
  ['the as-of query', (sql: Sql) => sequenceAsOf(sql, tables, account, ref, '2026-01-01T20:45:00Z')],
  ['the head lookup', (sql: Sql) => readHead(sql, tables, account, ref)],
  ['the gap-safe global read', (sql: Sql) => readAll(sql, tables, { after: { transactionId: '1', globalPosition: 100_000 }, limit: 100 })],
  ...(['any', 'exists', 102, 'none'] as const).map((expected, i) => [
    `the append of one event (expected version ${String(expected)})`,
    (sql: Sql) =>
      appendEvents(sql, tables, account, [String(1234 + (expected === 'none' ? 9000 : 0))], '1234', prepareRows(account, [{ type: 'account.credited', payload: { amount: i + 1 } }], {}), expected),
  ] as const),
  [
    'the append of a batch',
    (sql: Sql) =>
      appendEvents(sql, tables, account, ['1500'], '1500', prepareRows(account, [1, 2, 3].map((amount) => ({ type: 'account.credited', payload: { amount } })), {}), 'exists'),
  ],
];

test.each(cases)('on 200,000 events, %s scans neither the events nor the heads table sequentially', async (_name, run) => {
  const { sql, captured } = capturingSql(db.pool);
  await run(sql);
  expect(captured.length).toBeGreaterThan(0);
  for (const { text, values } of captured) {
    const scans = await scansOf(text, values);
    expect(scans).not.toContain('Seq Scan');
  }
});

test('control: the plan walker does see a sequential scan where there is one', async () => {
  expect(await scansOf(`SELECT * FROM hindsight.events WHERE payload->>'amount' = $1`, ['2'])).toContain('Seq Scan');
  expect(await scansOf(`SELECT * FROM hindsight.heads WHERE version = $1`, ['3'])).toContain('Seq Scan');
});

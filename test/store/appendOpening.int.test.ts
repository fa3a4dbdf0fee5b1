import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { toSql } from '../../src/db/queryable.js';
import { inTransaction } from '../../src/db/transaction.js';
import { appendMany, type ManyRow } from '../../src/store/appendMany.js';
import { appendOpening } from '../../src/store/appendOpening.js';
import { audit } from '../../src/store/audit.js';
import { migrate } from '../../src/store/migrate.js';
import { storeTables } from '../../src/store/tables.js';
import { useTestDatabase } from '../helpers/database.js';

// The baseline import's own statement: opening events without appendMany's chain walk. Its
// events must be exactly what appendMany would store for a first event (the audit recomputes
// every hash), and an aggregate that already has events must be refused with nothing written.

const db = useTestDatabase(import.meta.url);
const tables = storeTables('hindsight');
const config = resolveConfig({
  aggregates: [
    {
      type: 'line',
      table: 'lines',
      key: [
        { column: 'region', type: 'text' },
        { column: 'line', type: 'integer' },
      ],
    },
  ],
});
const type = config.aggregates.get('line')!;

function opening(region: string, line: string): ManyRow {
  return {
    key: [region, line],
    eventId: randomUUID(),
    type: 'lines.imported',
    schemaVersion: 1,
    payload: JSON.stringify({ after: { region, line, note: 'a "quoted" \\ value' } }),
    metadata: JSON.stringify({ reason: 'baseline import' }),
    occurredAt: '2026-12-07T10:00:00.123456Z',
    source: 'import',
    sourceCommitLsn: null,
    sourceOrdinal: null,
    sourceXid: null,
  };
}

async function count(): Promise<{ events: number; heads: number }> {
  const { rows } = await db.pool.query(
    `SELECT (SELECT count(*) FROM hindsight.events)::int AS events, (SELECT count(*) FROM hindsight.heads)::int AS heads`,
  );
  return rows[0];
}

beforeAll(async () => {
  await migrate({ connectionString: db.url });
});

describe('appendOpening', () => {
  test('opening events of new aggregates: sequence 1, heads at 1, and every hash proven by the audit', async () => {
    const rows = [opening('eu', '1'), opening('eu west', '2'), opening('Über', '10')];
    const result = await inTransaction(db.pool, (client) => appendOpening(toSql(client), tables, type, rows));
    expect(result).toEqual({});
    const { rows: events } = await db.pool.query(`SELECT aggregate_id, sequence::int, event_id::text FROM hindsight.events ORDER BY global_position`);
    expect(events).toEqual([
      { aggregate_id: '["eu", "1"]', sequence: 1, event_id: rows[0]!.eventId },
      { aggregate_id: '["eu west", "2"]', sequence: 1, event_id: rows[1]!.eventId },
      { aggregate_id: '["Über", "10"]', sequence: 1, event_id: rows[2]!.eventId },
    ]);
    const { rows: heads } = await db.pool.query(`SELECT aggregate_id, version::int, last_hash = (SELECT hash FROM hindsight.events e WHERE e.aggregate_id = h.aggregate_id) AS chained FROM hindsight.heads h ORDER BY aggregate_id`);
    expect(heads.every((h) => h.version === 1 && h.chained)).toBe(true);
    // A second event through the general path chains from the opening one.
    await inTransaction(db.pool, (client) => appendMany(toSql(client), tables, [{ ...opening('eu', '1'), type: 'lines.updated', aggregate: type }]));
    const report = await audit(toSql(db.pool), tables);
    expect(report).toMatchObject({ aggregates: 3, events: 4, problems: [] });
  });

  test('an aggregate that already has events: named, and after the rollback nothing of the batch is written', async () => {
    const before = await count();
    const rows = [opening('us', '5'), opening('eu', '1'), opening('us', '6')];
    const refusal = await inTransaction(db.pool, async (client) => {
      const result = await appendOpening(toSql(client), tables, type, rows);
      if (result.existing !== undefined) throw new Error(`refused: ${result.existing}`);
      return result;
    }).catch((error: Error) => error.message);
    expect(refusal).toBe('refused: ["eu", "1"]');
    expect(await count()).toEqual(before);
  });

  test('regression: the same aggregate twice in one batch (a key that is not unique) is refused, never committed as heads without events', async () => {
    const before = await count();
    const result = await inTransaction(db.pool, async (client) => {
      const outcome = await appendOpening(toSql(client), tables, type, [opening('ap', '7'), opening('ap', '7')]);
      await client.query('ROLLBACK');
      return outcome;
    }).catch((error: Error) => ({ existing: `threw ${error.message}` }));
    expect(result.existing).toBe('["ap", "7"]');
    expect(await count()).toEqual(before);
  });
});

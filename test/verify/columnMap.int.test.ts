import { beforeAll, describe, expect, test } from 'vitest';
import { createHindsight, type Hindsight } from '../../src/hindsight.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { migrate } from '../../src/store/migrate.js';
import { verify } from '../../src/verify/run.js';
import { useTestDatabase } from '../helpers/database.js';

// A type folded by its column map alone (no projector): verify reads only what that fold
// needs (type, version, payload) and reads an aggregate's events again, in the same
// snapshot, only to explain a mismatch; identical texts match without a query, any other
// pair is still compared by PostgreSQL as the column's type (issue 12, item 4).

const db = useTestDatabase(import.meta.url);
const input: ConfigInput = {
  aggregates: [
    {
      type: 'ledger',
      table: 'ledgers',
      key: { column: 'id', type: 'bigint' },
      columns: { owner: 'owner', balance: 'balance' },
      verify: { updatedAt: 'updated_at' },
    },
  ],
};
let hs: Hindsight;

async function importRow(id: number, owner: string, balanceText: string): Promise<void> {
  await db.pool.query(`INSERT INTO ledgers (id, owner, balance, updated_at) VALUES ($1, $2, $3, '2026-02-01T00:00:00Z')`, [id, owner, balanceText]);
  await hs.append(db.pool, { aggregateType: 'ledger', aggregateId: id, events: [{ type: 'ledgers.imported', payload: { after: { id: String(id), owner, balance: balanceText } } }], expectedVersion: 'none' });
}

beforeAll(async () => {
  await migrate({ connectionString: db.url });
  await db.pool.query(`CREATE TABLE ledgers (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL, updated_at timestamptz NOT NULL)`);
  hs = createHindsight(input);
});

describe('verify of a column-map type', () => {
  test('matches, drift with the last event\'s write time, a delete that left the row, and numeric texts compared as numbers', async () => {
    await importRow(1, 'ann', '10.00'); // identical texts
    await importRow(2, 'bea', '20.00');
    await db.pool.query(`UPDATE ledgers SET owner = 'bob', updated_at = now() WHERE id = 2`); // a write that recorded no event
    await importRow(3, 'cy', '30.00');
    await hs.append(db.pool, { aggregateType: 'ledger', aggregateId: 3, events: [{ type: 'ledgers.deleted', payload: {} }], expectedVersion: 1 }); // the row stays
    await importRow(4, 'dee', '1.50');
    await hs.append(db.pool, { aggregateType: 'ledger', aggregateId: 4, events: [{ type: 'ledgers.updated', payload: { before: { balance: '1.50' }, after: { balance: '1.5' } } }], expectedVersion: 1 }); // '1.5' = 1.50
    await importRow(5, 'eve', '5.00');
    await hs.append(db.pool, { aggregateType: 'ledger', aggregateId: 5, events: [{ type: 'ledgers.updated', payload: { before: { balance: '5.00' }, after: { balance: '5.01' } } }], expectedVersion: 1 });

    const report = await verify(hs.config, { connectionString: db.url, record: false, pageSize: 2 });
    const type = report.types[0]!;
    expect(type.counts).toMatchObject({ rows: 5, compared: 5, matched: 2, mismatched: 3 });
    const byId = new Map(type.mismatches.map((m) => [m.aggregateId, m]));
    expect([...byId.keys()].sort()).toEqual(['2', '3', '5']);

    // The explanation needs the last event's write time, read again in full for this aggregate only.
    const { rows } = await db.pool.query<{ at: string }>(
      `SELECT to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at FROM hindsight.events WHERE aggregate_id = '2'`,
    );
    const drift = byId.get('2')!;
    expect(drift).toMatchObject({ class: 'legacy drift', fields: [{ field: 'owner', legacy: 'bob', projected: 'bea' }] });
    expect(drift.explanation.join(' ')).toContain(`is later than the last event's write, ${rows[0]!.at}`);

    const deleted = byId.get('3')!;
    expect(deleted.fields).toEqual([{ field: '(row)', column: '(row)', legacy: 'present', projected: 'deleted' }]);
    expect(deleted.explanation[0]).toMatch(/the events end with a delete \(event 2, ledgers\.deleted, \d{4}-\d\d-\d\dT/);

    expect(byId.get('5')!.fields).toEqual([{ field: 'balance', column: 'balance', legacy: '5.00', projected: '5.01' }]);
  });
});

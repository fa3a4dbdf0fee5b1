import { beforeAll, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { migrate } from '../../src/store/migrate.js';
import { verify } from '../../src/verify/run.js';
import { exitCodeOf } from '../../src/verify/report.js';
import { useTestDatabase } from '../helpers/database.js';

// A database restored into another cluster: stored transaction ids are above the server's,
// so "visible in the snapshot" means nothing for them. Every type is incomplete, never clean.

const db = useTestDatabase(import.meta.url);

beforeAll(async () => {
  await migrate({ connectionString: db.url });
  await db.pool.query(`CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL)`);
  await db.pool.query(`INSERT INTO accounts VALUES (1, 1)`);
  // an event as a dump from a busier cluster would carry it
  await db.pool.query(`
    INSERT INTO hindsight.events (aggregate_type, aggregate_id, sequence, event_type, payload, transaction_id, hash)
    VALUES ('account', '1', 1, 'accounts.imported', '{"after": {"id": "1", "balance": "1"}}',
            (pg_snapshot_xmax(pg_current_snapshot())::text::bigint + 5000000)::text::xid8, sha256('x'))`);
  await db.pool.query(`INSERT INTO hindsight.heads VALUES ('account', '1', 1, sha256('x'))`);
});

test('stored transaction ids above the server\'s make every type incomplete', async () => {
  const config = resolveConfig({ aggregates: [{ type: 'account', table: 'accounts', key: { column: 'id', type: 'bigint' }, columns: { balance: 'balance' } }] });
  const report = await verify(config, { connectionString: db.url });
  expect(report.outcome).toBe('incomplete');
  expect(exitCodeOf(report.outcome)).toBe(2);
  expect(report.types[0]!.reason).toMatch(/restored into another cluster/);
  expect(report.types[0]!.counts.compared).toBe(0);
});

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig, type ResolvedConfig } from '../../src/config/resolve.js';
import { toSql } from '../../src/db/queryable.js';
import { backfill } from '../../src/replication/backfill.js';
import { runListener } from '../../src/replication/listener.js';
import { parseLsn } from '../../src/replication/pgoutput.js';
import { setupReplication } from '../../src/replication/setup.js';
import { audit } from '../../src/store/audit.js';
import { migrate } from '../../src/store/migrate.js';
import { storeTables } from '../../src/store/tables.js';
import { useTestDatabase } from '../helpers/database.js';
import { teardownEventually } from '../helpers/replication.js';

// Serial: replication slots are cluster-wide. The listener appends a group of source
// transactions that touch several captured tables in one statement (issue 12, item 3b):
// here three types, two with the same canonical ids ('1', '2') and one with a composite
// key, so a statement that mixed up types would number, chain or order events wrongly.

const db = useTestDatabase(import.meta.url);
const slot = `hs_test_${Math.random().toString(36).slice(2, 8)}`;
let config: ResolvedConfig;

interface Row {
  aggregate_type: string;
  aggregate_id: string;
  sequence: number;
  event_type: string;
  payload: Record<string, unknown>;
  source_commit_lsn: string;
  source_ordinal: number;
  global_position: string;
}

async function replicated(): Promise<Row[]> {
  const { rows } = await db.pool.query<Row>(
    `SELECT aggregate_type, aggregate_id, sequence::int, event_type, payload, source_commit_lsn::text, source_ordinal, global_position::text
     FROM hindsight.events e WHERE source = 'replication' ORDER BY e.global_position`,
  );
  return rows;
}

beforeAll(async () => {
  await db.pool.query(`CREATE TABLE branches (id int PRIMARY KEY, balance bigint NOT NULL)`);
  await db.pool.query(`CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL)`);
  await db.pool.query(`CREATE TABLE tellers (region text, id int, balance bigint NOT NULL, PRIMARY KEY (region, id))`);
  await db.pool.query(`INSERT INTO branches VALUES (1, 0), (2, 0)`);
  await db.pool.query(`INSERT INTO accounts VALUES (1, 0), (2, 0)`);
  await db.pool.query(`INSERT INTO tellers VALUES ('eu', 1, 0), ('us', 1, 0)`);
  config = resolveConfig({
    replication: { slot, publication: 'hs_test_mixed' },
    aggregates: [
      { type: 'branch', table: 'branches', key: { column: 'id', type: 'integer' }, capture: 'listener' },
      { type: 'account', table: 'accounts', key: { column: 'id', type: 'bigint' }, capture: 'listener' },
      { type: 'teller', table: 'tellers', key: [{ column: 'region', type: 'text' }, { column: 'id', type: 'integer' }], capture: 'listener' },
    ],
  });
  await migrate({ connectionString: db.url });
  await setupReplication(config, { connectionString: db.url });
  await backfill(config, { connectionString: db.url });
});

afterAll(async () => {
  await teardownEventually(db.pool, config);
});

describe('listener: transactions across several captured tables', () => {
  test('events of interleaved types keep stream order in the log, each aggregate its own sequence, and the audit proves every hash', async () => {
    // Every update changes its row (an unchanged row makes no event). Written before the listener starts, so they arrive as one backlog and are grouped together.
    const transactions = 40;
    for (let i = 0; i < transactions; i++) {
      const client = await db.pool.connect();
      try {
        await client.query('BEGIN');
        const id = 1 + (i % 2);
        await client.query(`UPDATE accounts SET balance = balance + $1 WHERE id = $2`, [i + 1, id]);
        await client.query(`UPDATE tellers SET balance = balance + $1 WHERE region = $2 AND id = 1`, [i + 1, i % 2 ? 'us' : 'eu']);
        await client.query(`UPDATE branches SET balance = balance + $1 WHERE id = $2`, [i + 1, id]);
        await client.query(`UPDATE accounts SET balance = balance + 1 WHERE id = $1`, [id]); // the same aggregate twice in one transaction
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    }

    const controller = new AbortController();
    let groups = 0;
    let appended = 0;
    const running = runListener(config, {
      connectionString: db.url,
      signal: controller.signal,
      heartbeatMs: 0,
      onCommitted: (info) => {
        groups += 1;
        appended += info.events;
        if (appended >= transactions * 4) controller.abort();
      },
    });
    await running;
    // The backlog fits one group (5,000 changes): one write for all three types.
    expect(groups).toBe(1);

    const rows = await replicated();
    expect(rows).toHaveLength(transactions * 4);
    // Stream order: by source commit, then the change's place in its transaction, whatever the type.
    const lsn = (r: Row) => parseLsn(r.source_commit_lsn);
    const streamOrder = [...rows].sort((a, b) => (lsn(a) < lsn(b) ? -1 : lsn(a) > lsn(b) ? 1 : a.source_ordinal - b.source_ordinal));
    expect(rows.map((r) => r.global_position)).toEqual(streamOrder.map((r) => r.global_position));
    expect(new Set(rows.map((r) => r.source_commit_lsn)).size).toBe(transactions);
    expect(rows.slice(0, 4).map((r) => [r.aggregate_type, r.aggregate_id])).toEqual([
      ['account', '1'],
      ['teller', '["eu", "1"]'],
      ['branch', '1'],
      ['account', '1'],
    ]);
    // Each aggregate numbers its own events on from its opening event (1), with no gap, even
    // where another type has the same canonical id.
    const byAggregate = new Map<string, number[]>();
    for (const r of rows) {
      const key = `${r.aggregate_type}/${r.aggregate_id}`;
      byAggregate.set(key, [...(byAggregate.get(key) ?? []), r.sequence]);
    }
    expect([...byAggregate.keys()].sort()).toEqual(['account/1', 'account/2', 'branch/1', 'branch/2', 'teller/["eu", "1"]', 'teller/["us", "1"]']);
    for (const [key, sequences] of byAggregate) {
      const perTransaction = key.startsWith('account') ? 2 : 1;
      expect(sequences, key).toEqual(Array.from({ length: (transactions / 2) * perTransaction }, (_, k) => k + 2));
    }
    const { rows: heads } = await db.pool.query<{ aggregate_type: string; aggregate_id: string; version: number }>(
      `SELECT aggregate_type, aggregate_id, version::int FROM hindsight.heads ORDER BY 1, 2`,
    );
    expect(heads.find((h) => h.aggregate_type === 'account' && h.aggregate_id === '1')?.version).toBe(1 + transactions);
    expect(heads.find((h) => h.aggregate_type === 'branch' && h.aggregate_id === '1')?.version).toBe(1 + transactions / 2);
    // The last account event carries the row's final balance.
    const { rows: final } = await db.pool.query<{ balance: string }>(`SELECT balance::text FROM accounts WHERE id = 2`);
    const lastAccount2 = rows.filter((r) => r.aggregate_type === 'account' && r.aggregate_id === '2').at(-1)!;
    expect(String((lastAccount2.payload.after as Record<string, unknown>).balance)).toBe(final[0]!.balance);

    const report = await audit(toSql(db.pool), storeTables('"hindsight"'));
    expect(report.problems).toEqual([]);
    expect(report.events).toBe(6 + transactions * 4);
  });
});

import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { backfill } from '../../src/replication/backfill.js';
import { setupReplication } from '../../src/replication/setup.js';
import { migrate } from '../../src/store/migrate.js';
import { scratchDir } from '../helpers/cli.js';
import { useTestDatabase } from '../helpers/database.js';
import { teardownEventually } from '../helpers/replication.js';

// Serial: a slot, and a listener process limited to a 512 MB heap that must carry
// a 200,000-row INSERT and then a 200,000-row UPDATE, each one source transaction.

const db = useTestDatabase(import.meta.url);
const BIN = path.resolve(import.meta.dirname, '../../bin/hindsight.js');
const ROWS = 200_000;
const input = {
  replication: { slot: `hs_large_${Math.random().toString(36).slice(2, 8)}`, publication: 'hs_large_legacy' },
  aggregates: [{ type: 'row', table: 'big', key: { column: 'id', type: 'integer' }, capture: 'listener' }],
};
const config = resolveConfig(input as ConfigInput);

beforeAll(async () => {
  await migrate({ connectionString: db.url });
  await db.pool.query(`CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL)`);
  await setupReplication(config, { connectionString: db.url });
  await backfill(config, { connectionString: db.url });
});

afterAll(async () => {
  await teardownEventually(db.pool, config);
});

describe('a large source transaction', () => {
  test('200,000-row INSERT and UPDATE transactions are appended within a 512 MB heap', async () => {
    const dir = await scratchDir('large-transaction');
    const configFile = path.join(dir, 'hindsight.config.json');
    await fs.writeFile(configFile, JSON.stringify(input));
    await db.pool.query(`INSERT INTO big SELECT g, 0, repeat('x', 40) FROM generate_series(1, ${ROWS}) g`);
    await db.pool.query(`UPDATE big SET v = v + 1`);
    const child = spawn(process.execPath, ['--max-old-space-size=512', BIN, 'listen', '--config', configFile, '--database-url', db.url], {
      env: { PATH: process.env.PATH },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    let exit: { code: number | null; signal: string | null } | undefined;
    void exited.then((e) => (exit = e));
    try {
      const until = Date.now() + 150_000;
      for (;;) {
        const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM hindsight.events WHERE source = 'replication'`);
        if (rows[0].n >= 2 * ROWS) break;
        if (exit) throw new Error(`the listener exited (${JSON.stringify(exit)}) after ${rows[0].n} events: ${stderr}`);
        if (Date.now() > until) throw new Error(`only ${rows[0].n} of ${2 * ROWS} events after 150 s`);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      expect(exit).toBeUndefined();
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    const { rows } = await db.pool.query(`
      SELECT event_type, count(*)::int AS n, count(DISTINCT source_commit_lsn)::int AS transactions, min(source_ordinal) AS first, max(source_ordinal) AS last
      FROM hindsight.events WHERE source = 'replication' GROUP BY event_type ORDER BY event_type`);
    expect(rows).toEqual([
      { event_type: 'big.inserted', n: ROWS, transactions: 1, first: 0, last: ROWS - 1 },
      { event_type: 'big.updated', n: ROWS, transactions: 1, first: 0, last: ROWS - 1 },
    ]);
    const { rows: sample } = await db.pool.query(`SELECT payload FROM hindsight.events WHERE event_type = 'big.updated' AND aggregate_id = '777'`);
    expect(sample).toEqual([{ payload: { before: { v: '0' }, after: { v: '1' } } }]);
  });
});

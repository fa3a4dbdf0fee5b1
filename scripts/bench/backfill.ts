import pg from 'pg';
import { resolveConfig, type ResolvedConfig } from '../../src/config/resolve.js';
import { toSql } from '../../src/db/queryable.js';
import { backfill } from '../../src/replication/backfill.js';
import { setupReplication, teardownReplication } from '../../src/replication/setup.js';
import { migrate } from '../../src/store/migrate.js';
import { copyRate } from './copyRate.js';

/**
 * Issue 12, item 3c: the baseline backfill of a legacy table against a plain
 * `COPY (SELECT ...) TO STDOUT` of the same rows, at two sizes, so that both the ratio and
 * the growth with the row count show. Each size starts from an empty store.
 */

export interface BackfillResult {
  rows: number;
  copySeconds: number;
  backfillSeconds: number;
  eventsBytes: number;
}

function config(): ResolvedConfig {
  return resolveConfig({
    replication: { slot: 'bench_backfill', publication: 'bench_backfill' },
    aggregates: [{ type: 'account', table: 'bench_backfill_accounts', key: { column: 'id', type: 'integer' }, capture: 'listener' }],
  });
}

export async function benchBackfill(url: string, log: (line: string) => void, sizes: readonly number[] = [200_000, 1_000_000]): Promise<BackfillResult[]> {
  const results: BackfillResult[] = [];
  for (const rows of sizes) {
    const cfg = config();
    const client = new pg.Client(url);
    await client.connect();
    try {
      await teardownReplication(toSql(client), cfg).catch(() => undefined);
      await client.query('DROP SCHEMA IF EXISTS hindsight CASCADE; DROP TABLE IF EXISTS bench_backfill_accounts');
      await migrate({ connectionString: url });
      await client.query(`CREATE TABLE bench_backfill_accounts (id int PRIMARY KEY, balance bigint NOT NULL, owner text NOT NULL, opened date NOT NULL)`);
      await client.query(
        `INSERT INTO bench_backfill_accounts SELECT g, g * 7 % 100000, 'owner ' || g, date '2020-01-01' + g % 1500 FROM generate_series(1, $1::int) g`,
        [rows],
      );
      await client.query('VACUUM ANALYZE bench_backfill_accounts');
      await client.query('CHECKPOINT');
      const copy = await copyRate(client, 'SELECT * FROM bench_backfill_accounts ORDER BY id');
      log(`  backfill, ${rows} rows: plain COPY ${copy.seconds.toFixed(2)} s`);
      await setupReplication(cfg, { connectionString: url });
      const started = performance.now();
      await backfill(cfg, { connectionString: url });
      const backfillSeconds = (performance.now() - started) / 1000;
      const { rows: size } = await client.query<{ bytes: string }>(`SELECT pg_total_relation_size('hindsight.events')::text AS bytes`);
      log(`  backfill, ${rows} rows: backfill ${backfillSeconds.toFixed(2)} s`);
      results.push({ rows, copySeconds: copy.seconds, backfillSeconds, eventsBytes: Number(size[0]!.bytes) });
      await teardownReplication(toSql(client), cfg);
    } finally {
      await client.end();
    }
  }
  return results;
}

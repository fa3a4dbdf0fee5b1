import pg from 'pg';
import { resolveConfig, type ResolvedConfig } from '../../src/config/resolve.js';
import { migrate } from '../../src/store/migrate.js';
import { verify } from '../../src/verify/run.js';
import { fmt } from './harness.js';

/**
 * How fast `verify` compares, beside the floor of the same work: reading the same legacy
 * rows and the same events through node-postgres without comparing anything. One opening
 * event per row (an imported row image, folded by the column map), 100,000 rows.
 */

export interface VerifyBench {
  rows: number;
  verify: { rowsPerSecond: number; seconds: number };
  read: { rowsPerSecond: number; seconds: number };
}

export async function benchVerify(url: string, log: (line: string) => void, rows = 100_000): Promise<VerifyBench> {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  try {
    const config = await seed(url, pool, rows);
    const raw = { getTypeParser: () => (v: string) => v };
    const readStarted = performance.now();
    let read = 0;
    let after = '0'; // (ORDER BY a bare `id` would sort by the text output column of the same name)
    for (;;) {
      const page = await pool.query<string[]>({ text: `SELECT v.id::text, v.owner, v.balance::text, v.opened_at::text FROM verify_accounts v WHERE v.id > $1::bigint ORDER BY v.id LIMIT 1000`, values: [after], rowMode: 'array', types: raw } as never);
      if (page.rows.length === 0) break;
      const ids = page.rows.map((r) => r[0]!);
      const events = await pool.query<string[]>({ text: `SELECT aggregate_id, sequence::text, payload::text FROM hindsight.events WHERE aggregate_type = 'vaccount' AND aggregate_id = ANY($1::text[]) ORDER BY aggregate_id, sequence`, values: [ids], rowMode: 'array', types: raw } as never);
      for (const event of events.rows) JSON.parse(event[2]!);
      read += page.rows.length;
      after = ids[ids.length - 1]!;
    }
    const readSeconds = (performance.now() - readStarted) / 1000;
    if (read !== rows) throw new Error(`bench: the plain read saw ${read} of ${rows} rows`);
    log(`  read ${fmt(read)} legacy rows and their events without comparing: ${readSeconds.toFixed(1)} s`);

    const started = performance.now();
    const report = await verify(config, { connectionString: url, record: false });
    const seconds = (performance.now() - started) / 1000;
    const type = report.types[0]!;
    if (type.outcome !== 'clean' || type.counts.matched !== rows) throw new Error(`bench: verify was ${type.outcome} (${JSON.stringify(type.counts)})`);
    log(`  verify ${fmt(rows)} aggregates: ${seconds.toFixed(1)} s, clean`);
    return { rows, verify: { rowsPerSecond: rows / seconds, seconds }, read: { rowsPerSecond: read / readSeconds, seconds: readSeconds } };
  } finally {
    await pool.end();
  }
}

/** The legacy table and its opening events (as the baseline import writes them), and the config that verifies them. */
async function seed(url: string, pool: pg.Pool, rows: number): Promise<ResolvedConfig> {
  await migrate({ connectionString: url });
  await pool.query(`DROP TABLE IF EXISTS verify_accounts`);
  await pool.query(`CREATE TABLE verify_accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL, opened_at timestamptz NOT NULL)`);
  await pool.query(
    `INSERT INTO verify_accounts SELECT g, 'owner ' || g, (g % 10000) / 100.0, timestamptz '2026-02-01' + g * interval '1 second' FROM generate_series(1, $1::int) g`,
    [rows],
  );
  // The opening events, as the baseline import would write them (hashes are not what is measured).
  await pool.query(
    `INSERT INTO hindsight.events (aggregate_type, aggregate_id, sequence, event_type, payload, hash, source)
     SELECT 'vaccount', a.id::text, 1, 'verify_accounts.imported',
            jsonb_build_object('after', jsonb_build_object('id', a.id::text, 'owner', a.owner, 'balance', a.balance::text, 'opened_at', a.opened_at::text)),
            sha256(a.id::text::bytea), 'import'
     FROM verify_accounts a`,
  );
  await pool.query(`INSERT INTO hindsight.heads SELECT 'vaccount', id::text, 1, sha256('x'::bytea) FROM verify_accounts`);
  await pool.query('VACUUM ANALYZE verify_accounts');
  await pool.query('VACUUM ANALYZE hindsight.events');

  return resolveConfig({
    aggregates: [
      {
        type: 'vaccount',
        table: 'verify_accounts',
        key: { column: 'id', type: 'bigint' },
        columns: { owner: 'owner', balance: 'balance', opened_at: { field: 'opened_at', compare: 'timestamp' } },
      },
    ],
  });
}

export interface WorkersBench {
  rows: number;
  single: number;
  workers: Array<{ workers: number; seconds: number }>;
}

/** A full verify of `rows` aggregates in one process, then shared by 1, 2 and 4 local workers (key-range chunks). */
export async function benchVerifyWorkers(url: string, log: (line: string) => void, rows = 200_000): Promise<WorkersBench> {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  try {
    const config = await seed(url, pool, rows);
    const timed = async (workers: number | undefined) => {
      const started = performance.now();
      const report = await verify(config, { connectionString: url, workers });
      const seconds = (performance.now() - started) / 1000;
      const type = report.types[0]!;
      if (type.outcome !== 'clean' || type.counts.matched !== rows) throw new Error(`bench: verify was ${type.outcome} (${JSON.stringify(type.counts)})`);
      log(`  verify ${fmt(rows)} aggregates, ${workers === undefined ? 'one process' : `${workers} worker(s)`}: ${seconds.toFixed(1)} s, clean`);
      return seconds;
    };
    const single = await timed(undefined);
    const workers: WorkersBench['workers'] = [];
    for (const n of [1, 2, 4]) workers.push({ workers: n, seconds: await timed(n) });
    return { rows, single, workers };
  } finally {
    await pool.end();
  }
}

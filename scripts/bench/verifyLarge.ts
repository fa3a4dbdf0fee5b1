import pg from 'pg';
import { resolveConfig, type ResolvedConfig } from '../../src/config/resolve.js';
import { migrate } from '../../src/store/migrate.js';
import { verify } from '../../src/verify/run.js';
import { fmt } from './harness.js';

/**
 * Verify at size (issue 12, item 4): a type of `rows` aggregates with `eventsEach` events
 * each (an opening row image, then updates of one column), written interleaved as a long
 * log would hold them (every aggregate's first event, then every aggregate's second, ...).
 * Beside it, the floor: the same legacy rows and the same events read page by page through
 * node-postgres, payloads parsed, nothing compared. Each measurement starts cold for the
 * server's buffers and, where the machine allows it (root), the OS page cache.
 */

export interface VerifyLargeBench {
  rows: number;
  events: number;
  read: number[];
  single: number[];
  workers: Array<{ workers: number; seconds: number }>;
  peakRssMiB: number;
}

const TYPE = 'vlarge';

export async function seed(pool: pg.Pool, rows: number, eventsEach: number, log: (line: string) => void): Promise<ResolvedConfig> {
  await pool.query(`DROP TABLE IF EXISTS verify_large`);
  await pool.query(`CREATE TABLE verify_large (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL, opened_at timestamptz NOT NULL)`);
  await pool.query(
    `INSERT INTO verify_large SELECT g, 'owner ' || g, (g % 10000) / 100.0, timestamptz '2026-02-01' + g * interval '1 second' FROM generate_series(1, $1::int) g`,
    [rows],
  );
  // Hashes are not what verify reads: a constant stands in (the audit is not run here).
  for (let s = 1; s <= eventsEach; s++) {
    const started = performance.now();
    const last = s === eventsEach;
    await pool.query(
      `INSERT INTO hindsight.events (aggregate_type, aggregate_id, sequence, event_type, payload, hash, source)
       SELECT $1::text, a.id::text, $2::int,
              CASE WHEN $2::int = 1 THEN 'verify_large.imported' ELSE 'verify_large.updated' END,
              CASE WHEN $2::int = 1
                   THEN jsonb_build_object('after', jsonb_build_object('id', a.id::text, 'owner', a.owner, 'balance', CASE WHEN $3::bool THEN a.balance::text ELSE '0.00' END, 'opened_at', a.opened_at::text))
                   ELSE jsonb_build_object('before', jsonb_build_object('balance', ($2::int - 2) || '.00'),
                                           'after', jsonb_build_object('balance', CASE WHEN $3::bool THEN a.balance::text ELSE ($2::int - 1) || '.00' END))
              END,
              sha256('x'::bytea), 'import'
       FROM verify_large a ORDER BY a.id`,
      [TYPE, s, last],
    );
    log(`  seeded event ${s} of ${eventsEach} for ${fmt(rows)} aggregates (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  }
  await pool.query(`INSERT INTO hindsight.heads SELECT $1::text, id::text, $2::int, sha256('x'::bytea) FROM verify_large`, [TYPE, eventsEach]);
  await pool.query('VACUUM ANALYZE verify_large');
  await pool.query('VACUUM ANALYZE hindsight.events');
  await pool.query('VACUUM ANALYZE hindsight.heads');
  return verifyLargeConfig();
}

/** The seeded type's declaration: a column map, no projector. */
export function verifyLargeConfig(): ResolvedConfig {
  return resolveConfig({
    aggregates: [
      {
        type: TYPE,
        table: 'verify_large',
        key: { column: 'id', type: 'bigint' },
        columns: { owner: 'owner', balance: 'balance', opened_at: { field: 'opened_at', compare: 'timestamp' } },
      },
    ],
  });
}

/** The floor: legacy rows in pages of 1,000 by keyset, each page's events by id, payloads parsed. */
async function plainRead(pool: pg.Pool): Promise<{ rows: number; events: number }> {
  const raw = { getTypeParser: () => (v: string) => v };
  let rows = 0;
  let events = 0;
  let after = '0';
  for (;;) {
    const page = await pool.query<string[]>({ text: `SELECT v.id::text, v.owner, v.balance::text, v.opened_at::text FROM verify_large v WHERE v.id > $1::bigint ORDER BY v.id LIMIT 1000`, values: [after], rowMode: 'array', types: raw } as never);
    if (page.rows.length === 0) break;
    const ids = page.rows.map((r) => r[0]!);
    const found = await pool.query<string[]>({ text: `SELECT aggregate_id, sequence::text, payload::text FROM hindsight.events WHERE aggregate_type = $2::text AND aggregate_id = ANY($1::text[]) ORDER BY aggregate_id, sequence`, values: [ids, TYPE], rowMode: 'array', types: raw } as never);
    for (const event of found.rows) JSON.parse(event[2]!);
    rows += page.rows.length;
    events += found.rows.length;
    after = ids[ids.length - 1]!;
  }
  return { rows, events };
}

/** Empties the server's buffers (a restart would; DISCARD does not) as far as SQL can, and the OS page cache if we may. */
async function coldStart(pool: pg.Pool): Promise<void> {
  await pool.query('CHECKPOINT');
  const fs = await import('node:fs/promises');
  await fs.writeFile('/proc/sys/vm/drop_caches', '3').catch(() => undefined);
}

export async function benchVerifyLarge(url: string, log: (line: string) => void, options: { rows?: number; eventsEach?: number; rounds?: number } = {}): Promise<VerifyLargeBench> {
  const rows = options.rows ?? 1_000_000;
  const eventsEach = options.eventsEach ?? 5;
  const rounds = options.rounds ?? 3;
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  try {
    await migrate({ connectionString: url });
    const config = await seed(pool, rows, eventsEach, log);
    const read: number[] = [];
    const single: number[] = [];
    for (let round = 0; round < rounds; round++) {
      // Interleaved, alternating which goes first.
      for (const which of round % 2 === 0 ? (['read', 'verify'] as const) : (['verify', 'read'] as const)) {
        await coldStart(pool);
        const started = performance.now();
        if (which === 'read') {
          const seen = await plainRead(pool);
          if (seen.rows !== rows || seen.events !== rows * eventsEach) throw new Error(`bench: the plain read saw ${seen.rows} rows and ${seen.events} events`);
          read.push((performance.now() - started) / 1000);
        } else {
          const report = await verify(config, { connectionString: url, record: false });
          const type = report.types[0]!;
          if (type.outcome !== 'clean' || type.counts.matched !== rows) throw new Error(`bench: verify was ${type.outcome} (${JSON.stringify(type.counts)})`);
          single.push((performance.now() - started) / 1000);
        }
        log(`  round ${round + 1}, ${which}: ${(((performance.now() - started) / 1000)).toFixed(1)} s`);
      }
    }
    if (rounds === 0) return { rows, events: rows * eventsEach, read, single, workers: [], peakRssMiB: 0 };
    const workers: VerifyLargeBench['workers'] = [];
    for (const n of [1, 2, 4]) {
      await coldStart(pool);
      const started = performance.now();
      const report = await verify(config, { connectionString: url, workers: n });
      const type = report.types[0]!;
      if (type.outcome !== 'clean' || type.counts.matched !== rows) throw new Error(`bench: verify with ${n} workers was ${type.outcome} (${JSON.stringify(type.counts)})`);
      workers.push({ workers: n, seconds: (performance.now() - started) / 1000 });
      log(`  --workers ${n}: ${workers.at(-1)!.seconds.toFixed(1)} s`);
    }
    // This process ran nothing but the seed, the reads and the verifies: its high-water mark is theirs.
    return { rows, events: rows * eventsEach, read, single, workers, peakRssMiB: process.resourceUsage().maxRSS / 1024 };
  } finally {
    await pool.end();
  }
}

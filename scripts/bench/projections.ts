import pg from 'pg';
import { z } from 'zod';
import { resolveConfig, type ResolvedConfig } from '../../src/config/resolve.js';
import { defineEvent } from '../../src/events/defineEvent.js';
import { createHindsight } from '../../src/hindsight.js';
import { defineProjector } from '../../src/projection/defineProjector.js';
import { rebuildReadModel } from '../../src/readmodel/rebuild.js';
import { migrate } from '../../src/store/migrate.js';
import { copyRate } from './copyRate.js';
import { fmt, stats, type Stats } from './harness.js';

/**
 * Projection at scale: rebuilding a read model from a large log beside the raw read rate
 * of the same events, and projecting one long aggregate cold and from a snapshot.
 */

export function benchConfig(): ResolvedConfig {
  return resolveConfig({
    aggregates: [
      {
        type: 'account',
        table: 'accounts',
        key: { column: 'id', type: 'bigint' },
        events: [
          defineEvent('account.credited', z.object({ amount: z.number().int() })),
          defineEvent('account.debited', z.object({ amount: z.number().int() })),
        ],
        projector: defineProjector<{ balance: number; credits: number }>({
          aggregateType: 'account',
          initial: { balance: 0, credits: 0 },
          handlers: {
            'account.credited': (s, e) => ({ balance: s.balance + e.payload.amount, credits: s.credits + 1 }),
            'account.debited': (s, e) => ({ balance: s.balance - e.payload.amount, credits: s.credits }),
          },
        }),
        readModels: [{ name: 'account_balances', table: 'read_models.account_balances', columns: { balance: { type: 'bigint' }, credits: { type: 'integer' } } }],
      },
    ],
  });
}

/**
 * Writes `events` events spread over `aggregates` accounts, interleaved as a busy log is
 * (each account's events far apart), straight into the tables in SQL: the benchmark is
 * about reading them back. Their hashes are not a chain; nothing here checks them.
 */
/** A fresh store holding `aggregates` accounts of `eventsPerAggregate` credits each, interleaved. */
export async function seed(url: string, aggregates: number, eventsPerAggregate: number, log: (line: string) => void): Promise<void> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    await client.query('DROP SCHEMA IF EXISTS hindsight CASCADE; DROP SCHEMA IF EXISTS read_models CASCADE; DROP TABLE IF EXISTS accounts');
    await migrate({ connectionString: url });
    await client.query('CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint)');
    const total = aggregates * eventsPerAggregate;
    const chunk = 200_000;
    for (let start = 0; start < total; start += chunk) {
      await client.query(
        `INSERT INTO hindsight.events (aggregate_type, aggregate_id, sequence, event_type, payload, metadata, hash)
         SELECT 'account', (g % $3::int + 1)::text, g / $3::int + 1, 'account.credited',
                jsonb_build_object('amount', g % 100 + 1), '{"actor": "bench", "reason": "seed"}'::jsonb, sha256(g::text::bytea)
         FROM generate_series($1::int, $2::int) g`,
        [start, Math.min(total, start + chunk) - 1, aggregates],
      );
      log(`  seeded ${fmt(Math.min(total, start + chunk))} events`);
    }
    await client.query(
      `INSERT INTO hindsight.heads SELECT 'account', g::text, $2::int, sha256(g::text::bytea) FROM generate_series(1, $1::int) g`,
      [aggregates, eventsPerAggregate],
    );
    await client.query('VACUUM ANALYZE hindsight.events');
    await client.query('VACUUM ANALYZE hindsight.heads');
  } finally {
    await client.end();
  }
}

export interface RebuildBench {
  events: number;
  aggregates: number;
  rounds: number;
  /** Medians over the rounds. */
  copy: { rowsPerSecond: number; seconds: number };
  rebuild: { eventsPerSecond: number; seconds: number };
  /** Rebuild rate over raw rate, per round (each pair measured back to back), lowest first. */
  ratios: number[];
}

/**
 * Rebuilds the read model from the whole log and reads the same events raw with COPY, in
 * alternating rounds: on a shared machine either rate can swing by half between minutes,
 * so each rebuild is compared with the raw read next to it and the median ratio reported.
 */
export async function benchRebuild(
  url: string,
  log: (line: string) => void,
  size = { aggregates: 100_000, eventsPerAggregate: 10 },
  rounds = 3,
): Promise<RebuildBench> {
  await seed(url, size.aggregates, size.eventsPerAggregate, log);
  const config = benchConfig();
  const client = new pg.Client(url);
  await client.connect();
  const order = `SELECT * FROM hindsight.events WHERE aggregate_type = 'account' ORDER BY transaction_id, global_position`;
  await copyRate(client, order); // warm the cache as the rebuild will find it
  const raws: Array<{ rows: number; seconds: number }> = [];
  const rebuilds: Array<{ eventsPerSecond: number; seconds: number }> = [];
  const ratios: number[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      const raw = await copyRate(client, order);
      const rebuilt = await rebuildReadModel(config, 'account_balances', {
        connectionString: url,
        onProgress: (p) => process.stderr.write(`\r  rebuild ${round}/${rounds}: ${fmt(p.events)} events`),
      });
      process.stderr.write('\n');
      raws.push(raw);
      rebuilds.push(rebuilt);
      ratios.push(rebuilt.eventsPerSecond / (raw.rows / raw.seconds));
      log(`  round ${round}: COPY ${fmt(raw.rows / raw.seconds)} rows/s, rebuild ${fmt(rebuilt.eventsPerSecond)} events/s (${(ratios.at(-1)! * 100).toFixed(1)}%)`);
    }
  } finally {
    await client.end();
  }
  const median = <T>(items: T[], by: (item: T) => number): T => [...items].sort((x, y) => by(x) - by(y))[Math.floor(items.length / 2)]!;
  const raw = median(raws, (r) => r.rows / r.seconds);
  const rebuilt = median(rebuilds, (r) => r.eventsPerSecond);
  return {
    events: size.aggregates * size.eventsPerAggregate,
    aggregates: size.aggregates,
    rounds,
    copy: { rowsPerSecond: raw.rows / raw.seconds, seconds: raw.seconds },
    rebuild: { eventsPerSecond: rebuilt.eventsPerSecond, seconds: rebuilt.seconds },
    ratios: ratios.sort((x, y) => x - y),
  };
}

export interface ProjectBench {
  events: number;
  cold: Stats;
  fromSnapshot: Stats;
}

/** One aggregate of `events` events, projected cold (every event folded) and from a snapshot at its last event. */
export async function benchProjectOne(url: string, log: (line: string) => void, events = 10_000): Promise<ProjectBench> {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const hs = createHindsight(benchConfig());
  const id = 9_000_000;
  try {
    await pool.query(
      `INSERT INTO hindsight.events (aggregate_type, aggregate_id, sequence, event_type, payload, metadata, hash)
       SELECT 'account', $1::text, g, 'account.credited', jsonb_build_object('amount', g % 100 + 1), '{"actor": "bench"}'::jsonb, sha256(g::text::bytea)
       FROM generate_series(1, $2::int) g`,
      [String(id), events],
    );
    await pool.query(`INSERT INTO hindsight.heads VALUES ('account', $1::text, $2::int, sha256('x'::bytea))`, [String(id), events]);
    const time = async (snapshots: boolean) => {
      const samples: number[] = [];
      for (let i = 0; i < 25; i++) {
        const started = performance.now();
        const result = await hs.project(pool, 'account', id, { snapshots });
        samples.push(performance.now() - started);
        if (!result.found || result.version !== events) throw new Error('bench: wrong projection');
      }
      return stats(samples.slice(5)); // the first runs warm the caches
    };
    const cold = await time(false);
    await hs.snapshot(pool, 'account', { aggregateId: id });
    const fromSnapshot = await time(true);
    log(`  project ${fmt(events)} events: cold ${cold.median.toFixed(1)} ms, from a snapshot ${fromSnapshot.median.toFixed(2)} ms`);
    return { events, cold, fromSnapshot };
  } finally {
    await pool.end();
  }
}

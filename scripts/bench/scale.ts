import pg from 'pg';
import { z } from 'zod';
import { byKey, keyParameters } from '../../src/db/canonicalKey.js';
import { toSql } from '../../src/db/queryable.js';
import { defineEvent } from '../../src/events/defineEvent.js';
import { createHindsight } from '../../src/hindsight.js';
import { defineProjector } from '../../src/projection/defineProjector.js';
import { history } from '../../src/projection/history.js';
import { project } from '../../src/projection/project.js';
import { migrate } from '../../src/store/migrate.js';
import { saveCheckpoint } from '../../src/store/checkpoints.js';
import { storeTables } from '../../src/store/tables.js';
import { createUpdater } from '../../src/readmodel/updater.js';
import { closedLoop, fmt } from './harness.js';
import { percentile } from './listener.js';
import { benchConfig } from './projections.js';
import { benchUpdaterLag } from './updaterLag.js';

/**
 * Costs as the log grows (issue 12, item 5): the same measurements with 1M, 10M (and, with
 * BENCH_SCALE_SIZES, 30M) events in the log. Aggregates have 10 events each, written
 * interleaved (every aggregate's first event, then every aggregate's second...) as a long
 * log holds them; the log grows by new aggregates, so the sampled aggregates (from the first
 * million events) read exactly the same events at every size.
 */

const EVENTS_EACH = 10;
const SAMPLE = 300;
const tables = storeTables('"hindsight"');

const Credited = defineEvent('sacct.credited', z.object({ amount: z.number().int() }));
const hs = createHindsight({
  aggregates: [
    {
      type: 'sacct',
      table: 'scale_accounts',
      key: { column: 'id', type: 'bigint' },
      events: [Credited],
      projector: defineProjector<{ balance: number }>({
        aggregateType: 'sacct',
        initial: () => ({ balance: 0 }),
        handlers: { 'sacct.credited': (s, e) => ({ balance: s.balance + (e.payload as { amount: number }).amount }) },
      }),
    },
  ],
});
const aggregate = hs.config.aggregates.get('sacct')!;

export interface ScaleRow {
  events: number;
  appendRate: { one: number; eight: number };
  /** Milliseconds, median / p99 over the sample. */
  read: [number, number];
  asOf: [number, number];
  history: [number, number];
  /** Updater lag at 500 appends/s for 20 s, p50 / p99 ms, and the updater process's peak RSS (MiB). */
  updater: { p50: number; p99: number; peakRssMiB: number | undefined };
  tableMiB: number;
  indexesMiB: number;
}

/**
 * The grown events are of a type no read model follows. A running updater would have moved
 * past them as they arrived (its reads skip other types' events and checkpoint past them);
 * the bulk growth happens with no updater running, so its checkpoint is moved to the end of
 * the log, where a keeping-up updater would be, and only its lag on new events is measured.
 */
async function caughtUpToEnd(pool: pg.Pool): Promise<void> {
  const sql = toSql(pool);
  const [end] = await sql.query<{ transaction_id: string; global_position: string }>(
    // Ordered by the columns, not by their text (an xid of 100000 sorts below 99999 as text):
    `SELECT e.transaction_id::text, e.global_position::text FROM ${tables.events} e ORDER BY e.transaction_id DESC, e.global_position DESC LIMIT 1`,
  );
  const subscriber = benchConfig().readModels.get('account_balances')!.subscriber;
  await saveCheckpoint(sql, tables, subscriber, { transactionId: end!.transaction_id, globalPosition: Number(end!.global_position) });
}

/**
 * Adds aggregates [from, to) with EVENTS_EACH events each, one event number at a time. Their
 * ids are time-ordered, as hindsight's own appends make them (src/store/eventId.ts), with the
 * server's uuidv7() where it has one (PostgreSQL 18); older servers get random ids, which
 * measure a log written before ids were time-ordered.
 */
async function grow(pool: pg.Pool, from: number, to: number, eventId: string, log: (line: string) => void): Promise<void> {
  const started = performance.now();
  for (let s = 1; s <= EVENTS_EACH; s++) {
    await pool.query(
      `INSERT INTO hindsight.events (event_id, aggregate_type, aggregate_id, sequence, event_type, payload, hash, source, occurred_at)
       SELECT ${eventId}, 'sacct', g::text, $3::int, 'sacct.credited', jsonb_build_object('amount', $3::int), sha256('x'::bytea), 'app',
              timestamptz '2026-01-01' + $3::int * interval '1 day' + (g % 86400) * interval '1 second'
       FROM generate_series($1::bigint, $2::bigint - 1) g`,
      [from, to, s],
    );
  }
  await pool.query(
    `INSERT INTO hindsight.heads (aggregate_type, aggregate_id, version, last_hash)
     SELECT 'sacct', g::text, $3::int, sha256('x'::bytea) FROM generate_series($1::bigint, $2::bigint - 1) g`,
    [from, to, EVENTS_EACH],
  );
  await pool.query('VACUUM ANALYZE hindsight.events, hindsight.heads');
  // The bulk load leaves gigabytes of dirty pages: flushed now, so the checkpointer's writes
  // do not land inside the next measurements (a log that grew over months has none pending).
  await pool.query('CHECKPOINT');
  log(`  log grown to ${fmt(to * EVENTS_EACH)} events (${((performance.now() - started) / 1000).toFixed(0)} s)`);
}

async function latencies(run: (id: number) => Promise<unknown>, ids: readonly number[]): Promise<[number, number]> {
  const times: number[] = [];
  for (const id of ids) {
    const started = performance.now();
    await run(id);
    times.push(performance.now() - started);
  }
  return [percentile(times, 0.5), percentile(times, 0.99)];
}

export async function benchScale(url: string, log: (line: string) => void, sizes = [1_000_000, 10_000_000]): Promise<ScaleRow[]> {
  await migrate({ connectionString: url });
  const pool = new pg.Pool({ connectionString: url, max: 8 });
  const sql = toSql(pool);
  const rows: ScaleRow[] = [];
  // Fresh aggregates for the append runs, far above the seeded ids.
  let nextAppendId = 1_000_000_000;
  try {
    let aggregates = 0;
    const sample = Array.from({ length: SAMPLE }, (_, i) => 1 + ((i * 7919) % (sizes[0]! / EVENTS_EACH)));
    // The read-model tables and the updater's checkpoint, before the log grows.
    await createUpdater(benchConfig(), { connectionString: url }).runOnce();
    const [{ version }] = (await pool.query<{ version: number }>(`SELECT current_setting('server_version_num')::int AS version`)).rows as [{ version: number }];
    const eventId = version >= 180000 ? 'uuidv7()' : 'gen_random_uuid()';
    log(`  seeded event ids: ${eventId}`);
    for (const size of sizes) {
      await grow(pool, aggregates + 1, size / EVENTS_EACH + 1, eventId, log);
      aggregates = size / EVENTS_EACH;
      // The same sampled aggregates at every size: read, as of the 5th day, and their history over days 3 to 7.
      const ref = (id: number) => byKey(aggregate.key, keyParameters('sacct', aggregate.key, id));
      const read = await latencies((id) => hs.readAggregate(pool, 'sacct', id), sample);
      const asOf = await latencies((id) => project(sql, tables, aggregate, ref(id), { asOf: '2026-01-06T00:00:00Z' }), sample);
      const ledger = await latencies((id) => history(sql, tables, aggregate, ref(id), { from: '2026-01-04T00:00:00Z', to: '2026-01-08T00:00:00Z' }), sample);
      const append = async () => {
        const id = nextAppendId++;
        await hs.append(pool, { aggregateType: 'sacct', aggregateId: id, expectedVersion: 0, events: [{ type: 'sacct.credited', payload: { amount: 1 } }] });
      };
      const one = await closedLoop(1, 5, append);
      const eight = await closedLoop(8, 5, append);
      await caughtUpToEnd(pool);
      const lag = await benchUpdaterLag(url, log, 500, 20);
      const [{ table, indexes }] = (await sql.query<{ table: string; indexes: string }>(
        `SELECT pg_table_size('hindsight.events')::text AS table, pg_indexes_size('hindsight.events')::text AS indexes`,
      )) as [{ table: string; indexes: string }];
      const row: ScaleRow = { events: size, appendRate: { one, eight }, read, asOf, history: ledger, updater: { p50: lag.p50, p99: lag.p99, peakRssMiB: lag.peakRssMiB }, tableMiB: Number(table) / 2 ** 20, indexesMiB: Number(indexes) / 2 ** 20 };
      rows.push(row);
      log(`  ${fmt(size)} events: append ${fmt(one)} / ${fmt(eight)} per s; read ${read[0].toFixed(2)} ms, as-of ${asOf[0].toFixed(2)} ms, history ${ledger[0].toFixed(2)} ms (medians); updater lag p99 ${lag.p99.toFixed(1)} ms; table ${fmt(row.tableMiB)} MiB, indexes ${fmt(row.indexesMiB)} MiB`);
    }
  } finally {
    await pool.end();
  }
  return rows;
}

import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import { resolveConfig, type ResolvedConfig } from '../../src/config/resolve.js';
import { backfill } from '../../src/replication/backfill.js';
import { runListener } from '../../src/replication/listener.js';
import { parseLsn } from '../../src/replication/pgoutput.js';
import { setupReplication, teardownReplication } from '../../src/replication/setup.js';
import { migrate } from '../../src/store/migrate.js';
import { toSql } from '../../src/db/queryable.js';
import { fmt, stats, type Stats } from './harness.js';
import type { LagBench } from './updaterLag.js';
import { migrateUnhashed, UNHASHED_SCHEMA } from './unhashed.js';

/**
 * The listener: draining a backlog of single-row update transactions beside a bare
 * pg-logical-replication consumer decoding the same backlog from a slot of its own
 * (created at the same point), end-to-end lag at a steady rate, and what REPLICA
 * IDENTITY FULL costs the legacy UPDATE.
 */

const ROWS = 10_000;

/** The drain benchmark's declaration, as a config file would hold it. */
export const listenerConfigInput = {
  replication: { slot: 'bench_listener', publication: 'bench_legacy' },
  aggregates: [{ type: 'account', table: 'bench_accounts', key: { column: 'id', type: 'integer' }, capture: 'listener' as const }],
};

/** With `unhashed`, the store is one whose chained hash costs nothing (unhashed.ts). */
function listenerConfig(unhashed = false): ResolvedConfig {
  return resolveConfig(unhashed ? { ...listenerConfigInput, schema: UNHASHED_SCHEMA } : listenerConfigInput);
}

/**
 * A clean start for a replication benchmark: the bench's slots, publication, store and
 * `tables` dropped, a fresh store, the legacy tables made by `create`, then replication
 * setup and the baseline import, as a user would.
 */
export async function freshReplicationBench(url: string, config: ResolvedConfig, tables: readonly string[], create: (client: pg.Client) => Promise<void>): Promise<ResolvedConfig> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    await teardownReplication(toSql(client), config).catch(() => undefined);
    await client.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'bench_%' AND NOT active`);
    await client.query(`DROP SCHEMA IF EXISTS hindsight CASCADE; DROP SCHEMA IF EXISTS ${UNHASHED_SCHEMA} CASCADE; DROP TABLE IF EXISTS ${tables.join(', ')}`);
    if (config.schema === UNHASHED_SCHEMA) await migrateUnhashed(url);
    else await migrate({ connectionString: url });
    await create(client);
  } finally {
    await client.end();
  }
  await setupReplication(config, { connectionString: url });
  await backfill(config, { connectionString: url });
  return config;
}

export function prepare(url: string, unhashed = false): Promise<ResolvedConfig> {
  return freshReplicationBench(url, listenerConfig(unhashed), ['bench_accounts'], async (client) => {
    await client.query(`CREATE TABLE bench_accounts (id int PRIMARY KEY, balance bigint NOT NULL, note text)`);
    await client.query(`INSERT INTO bench_accounts SELECT g, 0, 'account ' || g FROM generate_series(1, ${ROWS}) g`);
  });
}

/**
 * `count` UPDATE transactions of `width` rows each (single rows spread over the table, or
 * runs of adjacent ids), committed one by one inside the server (a procedure), asynchronously.
 */
export async function writeBacklog(url: string, count: number, width = 1): Promise<string> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    await client.query(`CREATE OR REPLACE PROCEDURE bench_backlog(n int, width int) LANGUAGE plpgsql AS $$
      BEGIN
        FOR i IN 1..n LOOP
          IF width = 1 THEN
            UPDATE bench_accounts SET balance = balance + 1 WHERE id = 1 + (i::bigint * 7919) % ${ROWS};
          ELSE
            UPDATE bench_accounts SET balance = balance + 1 WHERE id > ((i * width) % ${ROWS}) AND id <= ((i * width) % ${ROWS}) + width;
          END IF;
          COMMIT;
        END LOOP;
      END $$`);
    await client.query('SET synchronous_commit = off');
    await client.query('CALL bench_backlog($1, $2)', [count, width]);
    const { rows } = await client.query(`SELECT pg_current_wal_insert_lsn()::text AS lsn`);
    return rows[0].lsn as string;
  } finally {
    await client.end();
  }
}

/** A bare consumer: the package's own pgoutput parser, no acknowledgement until the end, counting `tag` messages (row updates, or commits) per second. */
export async function rawDecode(url: string, slot: string, publication: string, until: bigint, changes: number, tag = 'update'): Promise<number> {
  const service = new LogicalReplicationService({ connectionString: url }, { acknowledge: { auto: false, timeoutSeconds: 0 } });
  let seen = 0;
  const started = performance.now();
  const done = new Promise<void>((resolve) => {
    service.on('data', (lsn: string, message: { tag: string }) => {
      if (message.tag === tag) seen += 1;
      if (seen >= changes || parseLsn(lsn) >= until) resolve();
    });
  });
  void service.subscribe(new PgoutputPlugin({ protoVersion: 1, publicationNames: [publication] }), slot, '0/0').catch(() => undefined);
  await done;
  const seconds = (performance.now() - started) / 1000;
  await service.stop();
  return seen / seconds;
}

export interface DrainBench {
  transactions: number;
  /** Rows changed by each transaction. */
  width: number;
  rawChangesPerSecond: number;
  listenerChangesPerSecond: number;
}

export async function benchDrain(url: string, log: (line: string) => void, transactions = 200_000, width = 1, options: { unhashed?: boolean } = {}): Promise<DrainBench> {
  const config = await prepare(url, options.unhashed);
  const admin = new pg.Client(url);
  await admin.connect();
  // The bare consumer's slot starts where the listener's checkpoint is: both see the same backlog.
  await admin.query(`SELECT pg_create_logical_replication_slot('bench_raw', 'pgoutput')`);
  await admin.end();
  log(`  writing a backlog of ${fmt(transactions)} update transactions of ${width} row(s)`);
  const end = await writeBacklog(url, transactions, width);
  const changes = transactions * width;
  const raw = await rawDecode(url, 'bench_raw', config.replication.publication, parseLsn(end), changes);
  log(`  bare pg-logical-replication consumer: ${fmt(raw)} changes/s`);
  const controller = new AbortController();
  let appended = 0;
  const started = performance.now();
  let finished = 0;
  const running = runListener(config, {
    connectionString: url,
    signal: controller.signal,
    heartbeatMs: 0,
    onCommitted: (info) => {
      appended += info.events;
      if (appended >= changes && !finished) {
        finished = performance.now();
        controller.abort();
      }
    },
  });
  await running;
  const rate = appended / ((finished - started) / 1000);
  log(`  listener: ${fmt(rate)} changes/s (${(rate / raw * 100).toFixed(1)}% of the bare consumer)`);
  const cleanup = new pg.Client(url);
  await cleanup.connect();
  await cleanup.query(`SELECT pg_drop_replication_slot('bench_raw')`);
  await cleanup.end();
  return { transactions, width, rawChangesPerSecond: raw, listenerChangesPerSecond: rate };
}


/**
 * Commit of a legacy UPDATE (when COMMIT returned to the writer) to its event being
 * visible (when the listener's transaction holding it committed), at a steady rate.
 * An event already visible before the writer heard back counts as 0.
 */
export async function benchListenerLag(url: string, log: (line: string) => void, rate = 500, seconds = 20): Promise<LagBench> {
  const config = await prepare(url);
  const visible: Array<{ lsn: bigint; at: number }> = [];
  const controller = new AbortController();
  const running = runListener(config, {
    connectionString: url,
    signal: controller.signal,
    onCommitted: (info) => visible.push({ lsn: parseLsn(info.checkpointLsn), at: Date.now() }),
  });
  const pool = new pg.Pool({ connectionString: url, max: 8 });
  // Measure the steady state: start writing once the listener has checkpointed a cut marker.
  await pool.query(`SELECT pg_logical_emit_message(true, 'hindsight.cut', 'bench')`);
  while (visible.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  visible.length = 0;
  const started = performance.now();
  const writes: Promise<unknown>[] = [];
  // Each write updates its own row, so its event is found by id; its commit is when COMMIT returned to the writer.
  const committedAt = new Map<string, number>();
  for (let i = 0; i < Math.min(rate * seconds, ROWS); i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const id = 1 + i;
    writes.push(pool.query(`UPDATE bench_accounts SET balance = balance + 1 WHERE id = $1`, [id]).then(() => committedAt.set(String(id), Date.now())));
  }
  await Promise.all(writes);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  controller.abort();
  await running;
  const { rows } = await pool.query<{ lsn: string; id: string }>(
    `SELECT source_commit_lsn::text AS lsn, aggregate_id AS id FROM hindsight.events WHERE source = 'replication'`,
  );
  await pool.end();
  const lags: number[] = [];
  for (const row of rows) {
    const lsn = parseLsn(row.lsn);
    const group = visible.find((v) => v.lsn >= lsn);
    const committed = committedAt.get(row.id);
    if (group && committed !== undefined) lags.push(Math.max(0, group.at - committed));
  }
  const result = { rate, seconds, samples: lags.length, p50: percentile(lags, 0.5), p99: percentile(lags, 0.99), max: Math.max(...lags) };
  log(`  listener lag at ${rate} tx/s: p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms (${fmt(lags.length)} events of ${fmt(rate * seconds)} writes)`);
  return result;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

export interface IdentityBench {
  updates: number;
  walBytesPerUpdate: { default: number; full: number };
  updatesPerSecond: { default: Stats; full: Stats };
}

/** The legacy UPDATE with the table's default replica identity and with FULL, interleaved: WAL bytes and rate at one client. */
export async function benchReplicaIdentity(url: string, log: (line: string) => void, rounds = 3, updates = 3000): Promise<IdentityBench> {
  const client = new pg.Client(url);
  await client.connect();
  await client.query(`DROP TABLE IF EXISTS bench_identity`);
  await client.query(`CREATE TABLE bench_identity (id int PRIMARY KEY, balance bigint NOT NULL, owner text NOT NULL, address text NOT NULL)`);
  await client.query(`INSERT INTO bench_identity SELECT g, 0, 'owner ' || g, repeat('street ', 10) || g FROM generate_series(1, ${ROWS}) g`);
  const rates = { default: [] as number[], full: [] as number[] };
  const wal = { default: [] as number[], full: [] as number[] };
  // WAL is only written for FULL's old rows when a publication or slot could read it: wal_level=logical is enough.
  for (let round = 0; round < rounds; round++) {
    for (const identity of round % 2 === 0 ? (['default', 'full'] as const) : (['full', 'default'] as const)) {
      await client.query(`ALTER TABLE bench_identity REPLICA IDENTITY ${identity === 'full' ? 'FULL' : 'DEFAULT'}`);
      const before = (await client.query(`SELECT pg_current_wal_insert_lsn() AS lsn`)).rows[0].lsn as string;
      const started = performance.now();
      for (let i = 0; i < updates; i++) {
        await client.query(`UPDATE bench_identity SET balance = balance + 1 WHERE id = $1`, [1 + ((i * 7919) % ROWS)]);
      }
      const seconds = (performance.now() - started) / 1000;
      const bytes = (await client.query(`SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::bigint AS bytes`, [before])).rows[0].bytes as string;
      rates[identity].push(updates / seconds);
      wal[identity].push(Number(bytes) / updates);
    }
  }
  await client.query(`DROP TABLE bench_identity`);
  await client.end();
  const median = (values: number[]) => stats(values).median;
  log(`  replica identity: default ${fmt(median(rates.default))} updates/s, ${median(wal.default).toFixed(0)} WAL bytes each; full ${fmt(median(rates.full))}, ${median(wal.full).toFixed(0)}`);
  return {
    updates,
    walBytesPerUpdate: { default: median(wal.default), full: median(wal.full) },
    updatesPerSecond: { default: stats(rates.default), full: stats(rates.full) },
  };
}

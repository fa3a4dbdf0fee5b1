import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { z } from 'zod';
import { createHindsight } from '../../src/hindsight.js';
import { defineEvent } from '../../src/events/defineEvent.js';
import { migrate } from '../../src/store/migrate.js';
import { closedLoop, fmt, stats, stopChild, type BenchArgs, type Stats } from './harness.js';
import { startUpdaterProcess } from './updaterLag.js';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResolvedConfig } from '../../src/config/resolve.js';
import { toSql } from '../../src/db/queryable.js';
import { backfill } from '../../src/replication/backfill.js';
import { setupReplication, teardownReplication } from '../../src/replication/setup.js';
import { migrateUnhashed, UNHASHED_SCHEMA } from './unhashed.js';

/**
 * The cost of capture. Three variants of one service call, over 100,000 accounts:
 *   A  the bare legacy transaction: BEGIN; UPDATE accounts ...; COMMIT
 *   B  the same unchanged function through hindsight's wrapper, recording one event with
 *      the shipped append (head lock, expected version, hash chain) in the same transaction
 *   C  the floor: A plus a plain INSERT of a row of the same width (a copy of the events
 *      table with the same columns and indexes) with a client-supplied sequence
 * B/C is hindsight's own overhead over "one more row and one more round trip".
 * For app types a fourth variant, U, is B against a store whose chained hash costs nothing
 * (unhashed.ts): the most that sealing hashes after commit could give B.
 */

const ACCOUNTS = 100_000;
/** B alone and B with the updater: this many adjacent pairs of runs of this many seconds. */
export const UPDATER_PAIRS = 24;
const UPDATER_PAIR_SECONDS = 3;

interface Queryable {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

/** The legacy service function, identical in every variant. */
async function credit(db: Queryable, id: number, amount: number): Promise<number> {
  await db.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [amount, id]);
  return amount;
}

type Variant = 'a' | 'b' | 'c' | 'u';

export interface CaptureResult {
  clients: number;
  a: Stats;
  b: Stats;
  c: Stats;
  /** B without the hash's cost (app types only). */
  u?: Stats;
  walPerTx: Partial<Record<Variant, number>>;
  /** With `withUpdater`: B again while the read-model updater runs, in pairs with B alone. */
  updater?: { b: Stats; bWithUpdater: Stats; ratios: number[] };
}

async function walPosition(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ bytes: string }>(`SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::text AS bytes`);
  return Number(rows[0]!.bytes);
}

/**
 * With `both`, the account type has capture "both": B stages its event in the app's
 * transaction and a listener process (started here, after setup and backfill) appends it,
 * as production would run it. The accounts table is then published with REPLICA IDENTITY
 * FULL, which A and C pay as well.
 */
export async function benchCapture(url: string, args: BenchArgs, log: (line: string) => void, options: { withUpdater?: boolean; withService?: boolean; both?: boolean } = {}): Promise<CaptureResult[]> {
  const admin = new pg.Client(url);
  await admin.connect();
  await admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'bench_both' AND NOT active`);
  await admin.query('DROP PUBLICATION IF EXISTS bench_both_legacy, bench_both_legacy_staging');
  await admin.query('DROP TABLE IF EXISTS accounts, bench_reference_events');
  await admin.query('DROP SCHEMA IF EXISTS hindsight CASCADE');
  await admin.query(`DROP SCHEMA IF EXISTS ${UNHASHED_SCHEMA} CASCADE`);
  await admin.query('DROP SCHEMA IF EXISTS read_models CASCADE');
  await admin.query(`CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now())`);
  await admin.query(`INSERT INTO accounts (id) SELECT g FROM generate_series(1, ${ACCOUNTS}) g`);
  await migrate({ connectionString: url });
  const unhashedSchema = options.both ? undefined : await migrateUnhashed(url);
  await admin.query(`CREATE TABLE bench_reference_events (LIKE hindsight.events INCLUDING ALL)`);
  await admin.query('VACUUM ANALYZE accounts');
  await admin.end();

  const declaration = { type: 'account', table: 'accounts', key: { column: 'id', type: 'bigint' }, ...(options.both ? { capture: 'both' as const } : {}) };
  const replication = { slot: 'bench_both', publication: 'bench_both_legacy' };
  const aggregates = [{ ...declaration, events: [defineEvent('account.credited', z.object({ amount: z.number().int() }))] }];
  const hs = createHindsight({ ...(options.both ? { replication } : {}), aggregates });
  const unhashed = unhashedSchema ? createHindsight({ schema: unhashedSchema, aggregates }) : undefined;
  const listener = options.both ? await startListenerProcess(url, hs.config, { replication, aggregates: [declaration] }, log) : undefined;
  const creditEvent = {
    events: (_result: number, id: number, amount: number) => ({ aggregateType: 'account', aggregateId: id, events: [{ type: 'account.credited', payload: { amount } }] }),
  };
  const recordedCredit = hs.wrap(credit, creditEvent);
  const unhashedCredit = unhashed?.wrap(credit, creditEvent);
  const metadata = JSON.stringify({ actor: 'bench', reason: 'benchmark' });
  const hash = randomBytes(32);
  const account = () => 1 + Math.floor(Math.random() * ACCOUNTS);
  // C's client-supplied sequence: unique across the whole run, as a naive app's counter would be.
  let referenceSequence = 0;

  const variants = {
    a: async (pool: pg.Pool) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await credit(client, account(), 1);
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    },
    b: (pool: pg.Pool) => hs.withContext({ actor: 'bench', reason: 'benchmark' }, () => recordedCredit(pool, account(), 1)),
    u: (pool: pg.Pool) => unhashed!.withContext({ actor: 'bench', reason: 'benchmark' }, () => unhashedCredit!(pool, account(), 1)),
    c: async (pool: pg.Pool) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const id = account();
        await credit(client, id, 1);
        await client.query({
          name: 'bench_reference_insert',
          text: `INSERT INTO bench_reference_events (event_id, aggregate_type, aggregate_id, sequence, event_type, schema_version, payload, metadata, hash)
                 VALUES ($1, 'account', $2, $3, 'account.credited', 1, $4, $5, $6)`,
          values: [randomUUID(), String(id), ++referenceSequence, JSON.stringify({ amount: 1 }), metadata, hash],
        });
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    },
  };

  // Optionally, afterwards, B with the read-model updater running as production would (it
  // reads every event B appends and writes a read-model row for it), in adjacent pairs with
  // B alone: this machine's rate drifts by tens of percent between minutes, so the effect is
  // the median of the pairs' ratios, not a ratio of medians taken minutes apart. Outside
  // its runs the updater process is paused (SIGSTOP); before each it is resumed and let
  // catch up with the backlog, so that only its steady-state work is timed.
  const updater = options.withUpdater || options.withService ? await pausableUpdater(url, Boolean(options.withService)) : undefined;
  const label = options.both ? 'capture "both"' : 'capture';
  const results: CaptureResult[] = [];
  try {
  for (const clients of args.clients) {
    const names: Variant[] = unhashed ? ['a', 'b', 'c', 'u'] : ['a', 'b', 'c'];
    const samples: Record<Variant, number[]> = { a: [], b: [], c: [], u: [] };
    const wal: Record<Variant, number[]> = { a: [], b: [], c: [], u: [] };
    const pool = () => new pg.Pool({ connectionString: url, max: clients });
    const pools = Object.fromEntries(names.map((name) => [name, pool()])) as Record<Variant, pg.Pool>;
    let paired: CaptureResult['updater'];
    try {
      // warm every pool's connections and prepared statements
      for (const [name, pool] of Object.entries(pools)) {
        await closedLoop(clients, 1, () => variants[name as Variant](pool));
      }
      for (let round = 0; round < args.runs; round++) {
        // interleaved, rotating the order so no variant always runs first (or on a warmer cache)
        const order = names.map((_, k, all) => all[(k + round) % all.length]!);
        for (const name of order) {
          const walBefore = await walPosition(pools.a);
          const rate = await closedLoop(clients, args.seconds, () => variants[name](pools[name]));
          const walBytes = (await walPosition(pools.a)) - walBefore;
          samples[name].push(rate);
          wal[name].push(walBytes / (rate * args.seconds));
          log(`  ${label}, ${clients} client(s), run ${round + 1}, ${name.toUpperCase()}: ${fmt(rate)} tx/s, ${fmt(walBytes / (rate * args.seconds))} WAL bytes/tx`);
        }
      }
      if (updater) {
        const alone: number[] = [];
        const beside: number[] = [];
        const ratios: number[] = [];
        for (let pair = 0; pair < UPDATER_PAIRS; pair++) {
          let rateAlone = 0;
          let rateBeside = 0;
          for (const withIt of pair % 2 === 0 ? [false, true] : [true, false]) {
            if (withIt) await updater.resume();
            const rate = await closedLoop(clients, UPDATER_PAIR_SECONDS, () => variants.b(pools.b));
            if (withIt) updater.pause();
            if (withIt) rateBeside = rate;
            else rateAlone = rate;
          }
          alone.push(rateAlone);
          beside.push(rateBeside);
          ratios.push(rateBeside / rateAlone);
          log(`  ${label}, ${clients} client(s), pair ${pair + 1}: B ${fmt(rateAlone)} tx/s alone, ${fmt(rateBeside)} with the updater running`);
        }
        paired = { b: stats(alone), bWithUpdater: stats(beside), ratios: ratios.sort((x, y) => x - y) };
      }
    } finally {
      await Promise.all(Object.values(pools).map((p) => p.end()));
    }
    results.push({
      clients,
      a: stats(samples.a),
      b: stats(samples.b),
      c: stats(samples.c),
      ...(unhashed ? { u: stats(samples.u) } : {}),
      walPerTx: Object.fromEntries(names.map((name) => [name, stats(wal[name]).median])),
      ...(paired ? { updater: paired } : {}),
    });
  }
  } finally {
    await updater?.stop();
    await listener?.stop();
  }
  return results;
}

/** The bench's updater process, paused (SIGSTOP) until `resume`, which returns once it has caught up with the log. */
async function pausableUpdater(url: string, service: boolean): Promise<{ pause(): void; resume(): Promise<void>; stop(): Promise<void> }> {
  const process = startUpdaterProcess(url, { service });
  const status = new pg.Client(url);
  await status.connect();
  let exited: string | undefined;
  process.child.once('exit', (code, signal) => {
    exited = `the bench's updater process exited (code ${code}, signal ${signal})`;
  });
  const caughtUp = async () => {
    for (;;) {
      if (exited) throw new Error(exited);
      const { rows } = await status.query<{ behind: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM hindsight.events e
                        WHERE (e.transaction_id, e.global_position) >
                              coalesce((SELECT (c.transaction_id, c.global_position) FROM hindsight.checkpoints c
                                        WHERE c.subscriber = 'read-model:account_balances'), ('0'::xid8, 0::bigint))) AS behind`,
      );
      if (!rows[0]!.behind) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  await caughtUp();
  process.child.kill('SIGSTOP');
  return {
    pause: () => process.child.kill('SIGSTOP'),
    async resume() {
      process.child.kill('SIGCONT');
      await caughtUp();
    },
    async stop() {
      process.child.kill('SIGCONT');
      await process.stop();
      await status.end();
    },
  };
}

/** Setup, backfill, then `hindsight listen` in a child process (the listener's own CPU is not the benchmark's). */
async function startListenerProcess(url: string, config: ResolvedConfig, json: unknown, log: (line: string) => void): Promise<{ stop(): Promise<void> }> {
  log('  setting up replication and importing the accounts (capture "both")');
  await setupReplication(config, { connectionString: url });
  await backfill(config, { connectionString: url });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hindsight-bench-both-'));
  const file = path.join(dir, 'hindsight.config.json');
  await fs.writeFile(file, JSON.stringify(json));
  const bin = fileURLToPath(new URL('../../../bin/hindsight.js', import.meta.url)); // from dist/scripts/bench
  const child = spawn(process.execPath, [bin, 'listen', '--config', file, '--database-url', url], { stdio: ['ignore', 'ignore', 'inherit'] });
  return {
    async stop() {
      await stopChild(child);
      const client = new pg.Client(url);
      await client.connect();
      await teardownReplication(toSql(client), config, { force: true }).catch(() => undefined);
      await client.end();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

export function captureTable(results: CaptureResult[]): string {
  const cell = (s: Stats) => `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})`;
  const pct = (x: number, y: number) => `${((x / y) * 100).toFixed(1)}%`;
  const withU = results.some((r) => r.u);
  const lines = withU
    ? [
        '| clients | A bare legacy tx/s | B wrapped + append tx/s | C + plain insert (floor) tx/s | B/C (target ≥ 95%) | B/A | U: B with no hash cost tx/s | U/C | WAL bytes/tx A / B / C / U |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ]
    : [
        '| clients | A bare legacy tx/s | B wrapped + append tx/s | C + plain insert (floor) tx/s | B/C (target ≥ 95%) | B/A | WAL bytes/tx A / B / C |',
        '| --- | --- | --- | --- | --- | --- | --- |',
      ];
  for (const r of results) {
    const wal = (withU ? (['a', 'b', 'c', 'u'] as const) : (['a', 'b', 'c'] as const)).map((name) => fmt(r.walPerTx[name] ?? NaN)).join(' / ');
    const u = withU && r.u ? ` ${cell(r.u)} | ${pct(r.u.median, r.c.median)} |` : '';
    lines.push(`| ${r.clients} | ${cell(r.a)} | ${cell(r.b)} | ${cell(r.c)} | ${pct(r.b.median, r.c.median)} | ${pct(r.b.median, r.a.median)} |${u} ${wal} |`);
  }
  return lines.join('\n');
}

/** The updater's effect on B, from the pairs: B/A with it minus B/A without it, in points, taking A from the main rounds. */
export function updaterTable(results: CaptureResult[]): string {
  const lines = [
    '| clients | B alone tx/s | B with the updater tx/s | with / alone, median of pairs (all) | B/A without → with | change (target within 5 points) |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of results) {
    if (!r.updater) continue;
    const ratio = r.updater.ratios[Math.floor(r.updater.ratios.length / 2)]!;
    const without = (r.b.median / r.a.median) * 100;
    const withIt = without * ratio;
    const all = r.updater.ratios.map((x) => `${(x * 100).toFixed(0)}%`).join(', ');
    lines.push(
      `| ${r.clients} | ${fmt(r.updater.b.median)} | ${fmt(r.updater.bWithUpdater.median)} | ${(ratio * 100).toFixed(1)}% (${all}) | ${without.toFixed(1)}% → ${withIt.toFixed(1)}% | ${(withIt - without).toFixed(1)} points |`,
    );
  }
  return lines.join('\n');
}

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createHindsight } from '../../src/hindsight.js';
import { benchConfig } from './projections.js';
import { projectStatus } from '../../src/readmodel/status.js';
import { pollUntil } from '../../src/db/pollUntil.js';
import { toSql } from '../../src/db/queryable.js';
import { storeTables } from '../../src/store/tables.js';
import { closedLoop, fmt, stats, stopChild, type Stats } from './harness.js';
import { peakRssMiB } from './memory.js';

/** Starts the bench config's updater in a child process; stop() sends SIGTERM and waits. */
export function startUpdaterProcess(url: string, options: { service?: boolean } = {}): { child: ChildProcess; stop(): Promise<void> } {
  const script = fileURLToPath(new URL('./updaterProcess.js', import.meta.url));
  const child = spawn(process.execPath, [script, url, ...(options.service ? ['--service'] : [])], { stdio: ['ignore', 'ignore', 'inherit'] });
  return {
    child,
    stop: () => stopChild(child),
  };
}

export interface LagBench {
  rate: number;
  /** The updater process's peak resident memory (VmHWM), MiB; undefined off Linux. */
  peakRssMiB?: number;
  seconds: number;
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

export interface UpdaterLagBench extends LagBench {
  /** Lone events appended one at a time, each after the previous one's row was written. */
  lone: { samples: number; p50: number; max: number };
}

/** Lone events measured after the steady stream (the updater test once asserted their median, now measured here). */
const LONE_EVENTS = 20;

/**
 * Updater lag at a steady rate: writers append one event per transaction at `rate`
 * transactions per second while an updater process runs; a trigger on the read-model
 * table stamps each row write, and the lag of a row write is that stamp minus the time
 * its newest event was recorded (both from the server's clock). The commit of the read
 * model's batch follows the stamp by about a millisecond.
 */
export async function benchUpdaterLag(url: string, log: (line: string) => void, rate = 500, seconds = 20): Promise<UpdaterLagBench> {
  const admin = new pg.Client(url);
  await admin.connect();
  await admin.query(`DROP TABLE IF EXISTS bench_lag`);
  await admin.query(`CREATE TABLE bench_lag (aggregate_id text, sequence bigint, applied_at timestamptz)`);
  await admin.query(`
    CREATE OR REPLACE FUNCTION bench_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO bench_lag VALUES (NEW.aggregate_id, NEW.hindsight_sequence, clock_timestamp()); RETURN NEW; END $$`);
  await admin.query(`DROP TRIGGER IF EXISTS bench_stamp ON read_models.account_balances`);
  await admin.query(`CREATE TRIGGER bench_stamp AFTER INSERT OR UPDATE ON read_models.account_balances FOR EACH ROW EXECUTE FUNCTION bench_stamp()`);
  const updater = startUpdaterProcess(url);
  const hs = createHindsight(benchConfig());
  const pool = new pg.Pool({ connectionString: url, max: 8 });
  try {
    // Let the updater start and catch up with what earlier benchmarks appended.
    const caughtUp = async () => (await projectStatus(toSql(admin), storeTables('"hindsight"'), benchConfig())).readModels.every((m) => m.lag.events === 0);
    const deadline = Date.now() + 300_000;
    while (!(await caughtUp())) {
      if (Date.now() > deadline) throw new Error('bench: the updater did not catch up');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await admin.query('TRUNCATE bench_lag');
    const started = performance.now();
    let sent = 0;
    const total = rate * seconds;
    const inFlight = new Set<Promise<unknown>>();
    while (sent < total) {
      const due = started + (sent / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const append = hs.append(pool, { aggregateType: 'account', aggregateId: 20_000_000 + (sent % 1000), events: [{ type: 'account.credited', payload: { amount: 1 } }] });
      inFlight.add(append);
      void append.finally(() => inFlight.delete(append));
      sent += 1;
    }
    await Promise.all(inFlight);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const measured = async () => {
      const { rows } = await admin.query<{ ms: number }>(`
        SELECT extract(epoch FROM l.applied_at - e.recorded_at) * 1000 AS ms
        FROM bench_lag l JOIN hindsight.events e
          ON e.aggregate_type = 'account' AND e.aggregate_id = l.aggregate_id AND e.sequence = l.sequence`);
      return rows.map((r) => Number(r.ms)).sort((a, b) => a - b);
    };
    const at = (lags: number[], q: number) => lags[Math.min(lags.length - 1, Math.floor(q * lags.length))] ?? Number.NaN;
    const lags = await measured();
    if (lags.length === 0) throw new Error(`bench: the updater applied none of the ${total} events within a second of the last (is it scanning other types' events from an old checkpoint?)`);
    // Lone events: a batch of fewer than 5 is followed by the idle poll, not the gathering
    // pause, so each should be read within tens of milliseconds.
    await admin.query('TRUNCATE bench_lag');
    for (let i = 0; i < LONE_EVENTS; i++) {
      const id = 21_000_000 + i;
      await hs.append(pool, { aggregateType: 'account', aggregateId: id, events: [{ type: 'account.credited', payload: { amount: 1 } }] });
      const written = await pollUntil(async () => (await admin.query(`SELECT 1 FROM bench_lag WHERE aggregate_id = $1`, [String(id)])).rows.length > 0, 30_000);
      if (!written) throw new Error('bench: a lone event was not applied within 30 s');
    }
    const lone = await measured();
    const result = {
      rate,
      seconds,
      samples: lags.length,
      p50: at(lags, 0.5),
      p99: at(lags, 0.99),
      max: lags[lags.length - 1] ?? Number.NaN,
      lone: { samples: lone.length, p50: at(lone, 0.5), max: lone[lone.length - 1] ?? Number.NaN },
      peakRssMiB: peakRssMiB(updater.child.pid),
    };
    log(`  updater lag at ${rate} tx/s: p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms (${fmt(result.samples)} row writes)`);
    log(`  updater lag of a lone event: median ${result.lone.p50.toFixed(1)} ms, max ${result.lone.max.toFixed(1)} ms (${result.lone.samples} events in turn)`);
    return result;
  } finally {
    await updater.stop();
    await pool.end();
    await admin.query(`DROP TRIGGER IF EXISTS bench_stamp ON read_models.account_balances`);
    await admin.end();
  }
}

/** Appends of one event with an exact expected version, each client on aggregates of its own (no conflicts). */
export async function benchStandaloneAppends(url: string, log: (line: string) => void, clientCounts: number[], seconds: number): Promise<Array<{ clients: number; rate: Stats }>> {
  const hs = createHindsight(benchConfig());
  const results: Array<{ clients: number; rate: Stats }> = [];
  const versions = new Map<number, number>();
  for (const clients of clientCounts) {
    const pool = new pg.Pool({ connectionString: url, max: clients });
    const append = async (client: number, i: number) => {
      const id = 30_000_000 + client * 1000 + (i % 100);
      const version = versions.get(id) ?? 0;
      await hs.append(pool, { aggregateType: 'account', aggregateId: id, expectedVersion: version, events: [{ type: 'account.credited', payload: { amount: 1 } }] });
      versions.set(id, version + 1);
    };
    const samples: number[] = [];
    for (let run = 0; run < 3; run++) samples.push(await closedLoop(clients, seconds, append));
    await pool.end();
    results.push({ clients, rate: stats(samples) });
    log(`  standalone appends, ${clients} client(s): ${fmt(stats(samples).median)} appends/s`);
  }
  return results;
}

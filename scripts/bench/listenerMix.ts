import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { resolveConfig, type ResolvedConfig } from '../../src/config/resolve.js';
import { runListener } from '../../src/replication/listener.js';
import { parseLsn } from '../../src/replication/pgoutput.js';
import { fmt, stopChild } from './harness.js';
import { peakRssMiB } from './memory.js';
import { freshReplicationBench, rawDecode } from './listener.js';

/**
 * The listener under a TPC-B-like write mix (issue 12, item 3b): each transaction updates
 * one row in each of three captured tables and inserts one row into a fourth, uncaptured
 * one. The load is pgbench (a C client, so the writers cost the machine as little as they
 * can) at full rate. First with the listener (`hindsight listen`, a process of its own)
 * running beside the load: how far behind it falls and how long it needs once the load
 * stops. Then a backlog written with no listener running, decoded by a bare
 * pg-logical-replication consumer on a slot of its own created at the same point, and
 * drained by the listener.
 */

const BRANCHES = 100;
const TELLERS = 1_000;
const ACCOUNTS = 100_000;

const SCRIPT = `\\set aid random(1, ${ACCOUNTS})
\\set tid random(1, ${TELLERS})
\\set bid random(1, ${BRANCHES})
\\set delta random(-5000, 5000)
BEGIN;
UPDATE mix_accounts SET balance = balance + :delta WHERE id = :aid;
UPDATE mix_tellers SET balance = balance + :delta WHERE id = :tid;
UPDATE mix_branches SET balance = balance + :delta WHERE id = :bid;
INSERT INTO mix_history (account_id, teller_id, branch_id, delta, at) VALUES (:aid, :tid, :bid, :delta, now());
END;
`;

const declarations = [
  { type: 'branch', table: 'mix_branches', key: { column: 'id', type: 'integer' }, capture: 'listener' as const },
  { type: 'teller', table: 'mix_tellers', key: { column: 'id', type: 'integer' }, capture: 'listener' as const },
  { type: 'account', table: 'mix_accounts', key: { column: 'id', type: 'integer' }, capture: 'listener' as const },
];
const replication = { slot: 'bench_mix', publication: 'bench_mix_legacy' };

/** pgbench from PATH or a Debian PostgreSQL install; undefined if there is none. */
export function findPgbench(): string | undefined {
  const onPath = spawnSync('pgbench', ['--version'], { stdio: 'ignore' });
  if (onPath.status === 0) return 'pgbench';
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) {
    const candidate = path.join(root, version, 'bin', 'pgbench');
    if (fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}

export interface MixBench {
  clients: number;
  seconds: number;
  live: {
    loadTps: number;
    /** Source transactions the listener appended per second while the load ran. */
    listenerTps: number;
    /** The most the listener's checkpoint was behind the server's WAL, sampled every 250 ms: bytes and seconds. */
    maxLagBytes: number;
    maxLagSeconds: number;
    /** From the load stopping to the listener's checkpoint passing it. */
    drainSeconds: number;
    listenerPeakRssMiB: number | undefined;
  };
  /** The backlog's load rate (no listener running) and how fast each consumer drained it. */
  backlog: { transactions: number; loadTps: number; rawTps: number; listenerTps: number };
}

function prepare(url: string): Promise<ResolvedConfig> {
  const config = resolveConfig({ replication, aggregates: declarations });
  return freshReplicationBench(url, config, ['mix_branches', 'mix_tellers', 'mix_accounts', 'mix_history'], async (client) => {
    for (const [table, rows] of [['mix_branches', BRANCHES], ['mix_tellers', TELLERS], ['mix_accounts', ACCOUNTS]] as const) {
      await client.query(`CREATE TABLE ${table} (id int PRIMARY KEY, balance bigint NOT NULL DEFAULT 0, filler text NOT NULL)`);
      await client.query(`INSERT INTO ${table} SELECT g, 0, repeat('x', 40) FROM generate_series(1, ${rows}) g`);
    }
    await client.query(`CREATE TABLE mix_history (id bigserial PRIMARY KEY, account_id int, teller_id int, branch_id int, delta int, at timestamptz)`);
    await client.query('VACUUM ANALYZE mix_branches, mix_tellers, mix_accounts');
  });
}

/** Runs pgbench with the mix script: for `seconds`, or `transactions` per client. */
async function pgbench(bin: string, url: string, scriptFile: string, clients: number, run: { seconds: number } | { transactions: number }): Promise<number> {
  const limit = 'seconds' in run ? ['-T', String(run.seconds)] : ['-t', String(run.transactions)];
  const child = spawn(bin, ['-n', '-f', scriptFile, '-c', String(clients), '-j', String(Math.min(clients, 2)), ...limit, url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`pgbench exited with ${code}:\n${out}`);
  const tps = /tps = ([\d.]+)/.exec(out);
  if (!tps) throw new Error(`pgbench printed no tps:\n${out}`);
  return Number(tps[1]);
}

export async function checkpointLsn(client: pg.Client, slot = replication.slot): Promise<bigint> {
  const { rows } = await client.query<{ lsn: string }>(`SELECT checkpoint_lsn::text AS lsn FROM hindsight.replication_state WHERE slot_name = $1`, [slot]);
  return parseLsn(rows[0]!.lsn);
}

/** A cut marker after everything written so far: the listener checkpoints its commit at once. Returns its position. */
export async function cut(client: pg.Client): Promise<bigint> {
  const { rows } = await client.query<{ lsn: string }>(`SELECT pg_logical_emit_message(true, 'hindsight.cut', 'bench')::text AS lsn`);
  return parseLsn(rows[0]!.lsn);
}

export async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 50));
}

export async function benchListenerMix(url: string, log: (line: string) => void, options: { clients?: number; seconds?: number; backlogPerClient?: number } = {}): Promise<MixBench | undefined> {
  const bin = findPgbench();
  if (!bin) {
    log('  skipped: the listener-mix benchmark needs pgbench (Debian: apt-get install postgresql-client)');
    return undefined;
  }
  const clients = options.clients ?? 4;
  const seconds = options.seconds ?? 60;
  const backlogPerClient = options.backlogPerClient ?? 15_000;
  const config = await prepare(url);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hindsight-bench-mix-'));
  const scriptFile = path.join(dir, 'mix.sql');
  await fsp.writeFile(scriptFile, SCRIPT);
  const configFile = path.join(dir, 'hindsight.config.json');
  await fsp.writeFile(configFile, JSON.stringify({ replication, aggregates: declarations }));
  const admin = new pg.Client(url);
  await admin.connect();
  try {
    // 1. The listener beside the load.
    const cliBin = fileURLToPath(new URL('../../../bin/hindsight.js', import.meta.url)); // from dist/scripts/bench
    const listener = spawn(process.execPath, [cliBin, 'listen', '--config', configFile, '--database-url', url], { stdio: ['ignore', 'ignore', 'inherit'] });
    const ready = await cut(admin);
    await waitFor(async () => (await checkpointLsn(admin)) >= ready);
    const eventsBefore = await eventCount(admin);
    log(`  listener streaming; pgbench with ${clients} clients for ${seconds} s`);
    const walAt: Array<{ at: number; lsn: bigint }> = [];
    let maxLagBytes = 0;
    let maxLagSeconds = 0;
    let sampling = true;
    const sampler = (async () => {
      const sampleClient = new pg.Client(url);
      await sampleClient.connect();
      while (sampling) {
        const { rows } = await sampleClient.query<{ wal: string; checkpoint: string }>(
          `SELECT pg_current_wal_insert_lsn()::text AS wal, checkpoint_lsn::text AS checkpoint FROM hindsight.replication_state WHERE slot_name = $1`,
          [replication.slot],
        );
        const now = performance.now();
        const wal = parseLsn(rows[0]!.wal);
        const checkpoint = parseLsn(rows[0]!.checkpoint);
        walAt.push({ at: now, lsn: wal });
        maxLagBytes = Math.max(maxLagBytes, Number(wal - checkpoint));
        // How long ago the server's WAL was where the checkpoint is now (to the sampling's resolution).
        const reached = walAt.find((w) => w.lsn >= checkpoint);
        if (reached) maxLagSeconds = Math.max(maxLagSeconds, (now - reached.at) / 1000);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      await sampleClient.end();
    })();
    const loadStarted = performance.now();
    const loadTps = await pgbench(bin, url, scriptFile, clients, { seconds });
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    const stoppedAt = performance.now();
    const end = await cut(admin);
    const eventsAtStop = await eventCount(admin);
    await waitFor(async () => (await checkpointLsn(admin)) >= end);
    const drainSeconds = (performance.now() - stoppedAt) / 1000;
    sampling = false;
    await sampler;
    const listenerPeakRssMiB = peakRssMiB(listener.pid);
    await stopChild(listener);
    const listenerTps = (eventsAtStop - eventsBefore) / 3 / loadSeconds;
    log(`  load ${fmt(loadTps)} tx/s; listener ${fmt(listenerTps)} source tx/s during it; behind by at most ${fmt(maxLagBytes / 1024)} KiB / ${maxLagSeconds.toFixed(1)} s; drained ${drainSeconds.toFixed(1)} s after the load stopped`);

    // 2. A backlog, with no listener running: the bare consumer's slot starts where the listener's checkpoint is.
    await admin.query(`SELECT pg_create_logical_replication_slot('bench_mix_raw', 'pgoutput')`);
    log(`  writing a backlog of ${fmt(backlogPerClient * clients)} transactions (pgbench, ${clients} clients)`);
    const backlogLoadTps = await pgbench(bin, url, scriptFile, clients, { transactions: backlogPerClient });
    const backlogEnd = await cut(admin);
    const transactions = backlogPerClient * clients;
    const rawTps = await rawDecode(url, 'bench_mix_raw', replication.publication, backlogEnd, transactions, 'commit');
    log(`  bare pg-logical-replication consumer: ${fmt(rawTps)} tx/s`);
    const controller = new AbortController();
    const started = performance.now();
    let finished = 0;
    const running = runListener(config, {
      connectionString: url,
      signal: controller.signal,
      heartbeatMs: 0,
      onCommitted: (info) => {
        if (!finished && parseLsn(info.checkpointLsn) >= backlogEnd) {
          finished = performance.now();
          controller.abort();
        }
      },
    });
    await running;
    const backlogListenerTps = transactions / ((finished - started) / 1000);
    log(`  listener: ${fmt(backlogListenerTps)} tx/s (${((backlogListenerTps / rawTps) * 100).toFixed(1)}% of the bare consumer)`);
    await admin.query(`SELECT pg_drop_replication_slot('bench_mix_raw')`);
    return {
      clients,
      seconds,
      live: { loadTps, listenerTps, maxLagBytes, maxLagSeconds, drainSeconds, listenerPeakRssMiB },
      backlog: { transactions, loadTps: backlogLoadTps, rawTps, listenerTps: backlogListenerTps },
    };
  } finally {
    await admin.end();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

async function eventCount(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM hindsight.events WHERE source = 'replication'`);
  return Number(rows[0]!.n);
}

import { execFile, spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { migrate } from '../../src/store/migrate.js';
import { fmt, stopChild } from './harness.js';
import { listenerConfigInput, prepare as prepareListener, writeBacklog } from './listener.js';
import { checkpointLsn, cut, waitFor } from './listenerMix.js';
import { peakRssMiB } from './memory.js';
import { seed as seedAccounts } from './projections.js';
import { seed as seedVerifyLarge } from './verifyLarge.js';

/**
 * Memory that must not grow with the log (issue 12, item 6): the listener draining a
 * backlog, verify of a whole type and the rebuild of a read model, each in a process of
 * its own, at a size and at several times that size. Peak RSS is the process's high-water
 * mark (VmHWM), so a buffer that grew with the work and was freed later still shows.
 * The updater's is measured at each log size by the scale benchmark.
 */

export interface MemoryRow {
  what: string;
  /** The work at each size, as a phrase ("50,000 transactions"). */
  sizes: string[];
  peakRssMiB: number[];
}

const execFileAsync = promisify(execFile);
const probe = fileURLToPath(new URL('./memoryProbe.js', import.meta.url));
const cliBin = fileURLToPath(new URL('../../../bin/hindsight.js', import.meta.url)); // from dist/scripts/bench

async function inChild(task: 'verify' | 'rebuild', url: string): Promise<number> {
  const { stdout } = await execFileAsync(process.execPath, [probe, task, url], { maxBuffer: 1 << 20 });
  return (JSON.parse(stdout.trim().split('\n').pop()!) as { peakRssMiB: number }).peakRssMiB;
}

/** `hindsight listen` started after a backlog of `transactions` was written, until it checkpointed past all of it. */
async function listenerDrain(url: string, transactions: number, log: (line: string) => void): Promise<number> {
  await prepareListener(url);
  await writeBacklog(url, transactions);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hindsight-bench-memory-'));
  const configFile = path.join(dir, 'hindsight.config.json');
  await fsp.writeFile(configFile, JSON.stringify(listenerConfigInput));
  const admin = new pg.Client(url);
  await admin.connect();
  const listener = spawn(process.execPath, [cliBin, 'listen', '--config', configFile, '--database-url', url], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    const end = await cut(admin);
    const started = performance.now();
    await waitFor(async () => (await checkpointLsn(admin, listenerConfigInput.replication.slot)) >= end);
    const peak = peakRssMiB(listener.pid);
    if (peak === undefined) throw new Error('bench: no /proc: peak RSS cannot be read here');
    log(`  listener drained ${fmt(transactions)} transactions in ${((performance.now() - started) / 1000).toFixed(1)} s, peak RSS ${peak.toFixed(0)} MiB`);
    return peak;
  } finally {
    await stopChild(listener);
    await admin.end();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

export async function benchMemory(url: string, log: (line: string) => void, scale = Number(process.env.BENCH_MEMORY_SCALE ?? 1)): Promise<MemoryRow[]> {
  const rows: MemoryRow[] = [];
  const listener: MemoryRow = { what: '`hindsight listen` draining a backlog of single-row update transactions', sizes: [], peakRssMiB: [] };
  for (const transactions of [50_000, 500_000].map((n) => n * scale)) {
    listener.sizes.push(`${fmt(transactions)} transactions`);
    listener.peakRssMiB.push(await listenerDrain(url, transactions, log));
  }
  rows.push(listener);

  const verifying: MemoryRow = { what: '`verify` of one type (column map, 5 events per aggregate), one process', sizes: [], peakRssMiB: [] };
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  try {
    for (const aggregates of [100_000, 1_000_000].map((n) => n * scale)) {
      // A fresh store each time: the seed writes every event of the type anew.
      await pool.query('DROP SCHEMA IF EXISTS hindsight CASCADE');
      await migrate({ connectionString: url });
      await seedVerifyLarge(pool, aggregates, 5, () => undefined);
      const peak = await inChild('verify', url);
      log(`  verify of ${fmt(aggregates)} aggregates: peak RSS ${peak.toFixed(0)} MiB`);
      verifying.sizes.push(`${fmt(aggregates)} aggregates, ${fmt(aggregates * 5)} events`);
      verifying.peakRssMiB.push(peak);
    }
  } finally {
    await pool.end();
  }
  rows.push(verifying);

  const rebuilding: MemoryRow = { what: 'rebuild of a read model from the whole log (`project --rebuild`)', sizes: [], peakRssMiB: [] };
  for (const aggregates of [100_000, 500_000].map((n) => n * scale)) {
    await seedAccounts(url, aggregates, 10, () => undefined);
    const peak = await inChild('rebuild', url);
    log(`  rebuild over ${fmt(aggregates * 10)} events: peak RSS ${peak.toFixed(0)} MiB`);
    rebuilding.sizes.push(`${fmt(aggregates)} aggregates, ${fmt(aggregates * 10)} events`);
    rebuilding.peakRssMiB.push(peak);
  }
  rows.push(rebuilding);
  return rows;
}

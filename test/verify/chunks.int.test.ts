import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { migrate } from '../../src/store/migrate.js';
import { workOnChunks } from '../../src/verify/chunks/chunkWorkers.js';
import { verify } from '../../src/verify/run.js';
import { runCli, scratchDir } from '../helpers/cli.js';
import { useTestDatabase } from '../helpers/database.js';

// A verify run shared by several workers must store exactly what a single-process run of the
// same data stores, and a worker killed holding a chunk must not lose that chunk.

const db = useTestDatabase(import.meta.url);
const BIN = path.resolve(import.meta.dirname, '../../bin/hindsight.js');
const input = {
  aggregates: [
    { type: 'customer', table: 'customers', key: { column: 'id', type: 'bigint' }, columns: { name: 'name', tier: { field: 'tier' } } },
    {
      type: 'line',
      table: 'lines',
      key: [
        { column: 'region', type: 'text' },
        { column: 'line', type: 'integer' },
      ],
      columns: { amount: 'amount' },
    },
  ],
};
const config = resolveConfig(input as never);
let configFile: string;

beforeAll(async () => {
  await migrate({ connectionString: db.url });
  // Sparse bigint ids (legacy order 3, 6, ..., 9000 differs from the ids' text order) and a composite key.
  await db.pool.query(`CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, tier text NOT NULL)`);
  await db.pool.query(`INSERT INTO customers SELECT 3 * g, 'customer ' || g, CASE WHEN g % 2 = 0 THEN 'G' ELSE 'S' END FROM generate_series(1, 3000) g`);
  await db.pool.query(`CREATE TABLE lines (region text NOT NULL, line integer NOT NULL, amount numeric(12,2) NOT NULL, PRIMARY KEY (region, line))`);
  await db.pool.query(`INSERT INTO lines SELECT r, g, g * 1.5 FROM unnest(ARRAY['eu', 'eu west', 'us', 'Über']) r, generate_series(1, 150) g`);
  const dir = await scratchDir('verify-chunks');
  configFile = path.join(dir, 'hindsight.config.json');
  await fs.writeFile(configFile, JSON.stringify(input));
  for (const type of ['customer', 'line']) {
    const backfill = await runCli(['backfill', type, '--config', configFile, '--database-url', db.url], { cwd: dir });
    expect(backfill.stderr).toBe('');
  }
  // Planted: legacy writes with no event, rows no event mentions, rows deleted without an event.
  await db.pool.query(`UPDATE customers SET name = 'drifted' WHERE id % 97 = 0`);
  await db.pool.query(`INSERT INTO customers SELECT 3 * g + 1, 'unimported', 'G' FROM generate_series(1, 3000, 211) g`);
  await db.pool.query(`DELETE FROM customers WHERE id % 113 = 0`);
  await db.pool.query(`UPDATE lines SET amount = amount + 1 WHERE line % 41 = 0`);
  await db.pool.query(`DELETE FROM lines WHERE line = 77`);
  await db.pool.query(`INSERT INTO lines SELECT 'zz', g, 1 FROM generate_series(1, 3) g`);
});

/** The stored runs of `runId` per type, without what differs between any two runs (ids, times, snapshots). */
async function stored(runId: string): Promise<unknown> {
  const { rows: runs } = await db.pool.query(
    `SELECT id, aggregate_type, target, mode, projector_version, config_hash, counts, outcome, reason FROM hindsight.verify_runs WHERE run_id = $1 ORDER BY aggregate_type`,
    [runId],
  );
  const out: unknown[] = [];
  for (const { id, ...run } of runs) {
    const { rows: mismatches } = await db.pool.query(
      `SELECT aggregate_id, class, kind, fields, explanation FROM hindsight.verify_mismatches WHERE run_row = $1 ORDER BY aggregate_id`,
      [id],
    );
    out.push({ ...run, mismatches });
  }
  return out;
}

let single: { runId: string; stored: unknown };

describe('verify, shared by several workers', () => {
  test('a single-process run of the planted data finds every kind of difference', async () => {
    const report = await verify(config, { connectionString: db.url, pageSize: 100 });
    const customer = report.types.find((t) => t.aggregateType === 'customer')!;
    expect(customer.counts).toMatchObject({ rows: 3000 - 26 + 15, missingInEvents: 15, missingInLegacy: 26 });
    expect(customer.counts.mismatched).toBeGreaterThan(20);
    expect(report.types.find((t) => t.aggregateType === 'line')!.counts).toMatchObject({ missingInEvents: 3, missingInLegacy: 4 });
    single = { runId: report.runId, stored: await stored(report.runId) };
  });

  test.each([1, 2, 3])('chunked verify equal to a single-process run, with %i workers', async (workers) => {
    const report = await verify(config, { connectionString: db.url, pageSize: 100, workers, chunkRows: 450 });
    expect(report.outcome).toBe('mismatches');
    const { rows } = await db.pool.query(`SELECT aggregate_type, chunks FROM hindsight.verify_chunk_runs WHERE run_id = $1 ORDER BY 1`, [report.runId]);
    expect(rows).toEqual([
      { aggregate_type: 'customer', chunks: 7 },
      { aggregate_type: 'line', chunks: 2 },
    ]);
    expect(await stored(report.runId)).toEqual(single.stored);
  });

  test('a killed worker\'s chunk retried: the run stays unrecorded (never clean) until another worker takes it over', async () => {
    const child = spawn(process.execPath, [BIN, 'verify', '--workers', '1', '--chunk-rows', '450', '--chunk-lease', '1', '--config', configFile, '--database-url', db.url], {
      env: { PATH: process.env.PATH, HINDSIGHT_VERIFY_FAILPOINT: 'chunk-taken' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const signal = await new Promise<string | null>((resolve) => child.on('exit', (_code, s) => resolve(s)));
    expect(stderr).toContain('failpoint chunk-taken');
    expect(signal).toBe('SIGKILL');
    const { rows: chunks } = await db.pool.query(`SELECT run_id::text, aggregate_type, chunk, state, attempts FROM hindsight.verify_chunks WHERE state <> 'done'`);
    const runId = chunks[0]!.run_id as string;
    expect(chunks.filter((c) => c.state === 'taken')).toEqual([{ run_id: runId, aggregate_type: 'customer', chunk: 0, state: 'taken', attempts: 1 }]);
    expect(chunks).toHaveLength(9);
    // Incomplete: no chunk reported, so nothing of this run is in the history to call it clean.
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM hindsight.verify_runs WHERE run_id = $1`, [runId])).rows[0].n).toBe(0);

    // Another worker (as any hindsight run would) takes the pending chunks, then the dead one's once its lease runs out.
    const taken: Array<{ chunk: number; attempts: number }> = [];
    await workOnChunks(config, { connectionString: db.url, runId, workers: 2, onChunkTaken: (c) => void taken.push(c) });
    expect(taken).toContainEqual(expect.objectContaining({ chunk: 0, aggregateType: 'customer', attempts: 2 }));
    expect(await stored(runId)).toEqual(single.stored);
  });
});

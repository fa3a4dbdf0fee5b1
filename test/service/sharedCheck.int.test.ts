import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { migrate } from '../../src/store/migrate.js';
import { verify } from '../../src/verify/run.js';
import { runCli, scratchDir, startBin, type RunningBin } from '../helpers/cli.js';
import { useTestDatabase } from '../helpers/database.js';
import { pollFor } from '../helpers/poll.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhookReceiver.js';

// A scheduled full check is one verify run shared by every `hindsight run` instance: its
// key-range chunks are taken by whichever instance is free, a chunk held by an instance
// killed with -9 is retaken once its lease runs out, and the stored run is the one a
// single-process `verify` stores. The ticks are the job queue's real minute ticks, so this
// file takes two to three minutes of wall time.

const db = useTestDatabase(import.meta.url);
let hook: WebhookReceiver;
let cwd: string;
const running: RunningBin[] = [];

function input(webhook: string) {
  return {
    aggregates: [
      {
        type: 'customer',
        table: 'customers',
        key: { column: 'id', type: 'bigint' },
        columns: { name: 'name', tier: { field: 'tier' } },
        // 300 rows a chunk and a pause of 1 s after every page and chunk: about 10 chunks
        // that take a second or more each, so an instance that polls for chunks every 2 s
        // always finds some left.
        verify: { schedule: [{ name: 'customers-full', cron: '* * * * *', chunkRows: 300, pauseMs: 1000, chunkLease: 2 }] },
      },
    ],
    alerts: { webhooks: [{ url: webhook }], consoleUrl: 'http://console.test' },
  };
}

/** The stored runs of `runId`, without what differs between any two runs (ids, times, snapshots). */
async function stored(runId: string): Promise<unknown> {
  const { rows: runs } = await db.pool.query(`SELECT id, aggregate_type, target, mode, config_hash, counts, outcome, reason FROM hindsight.verify_runs WHERE run_id = $1`, [runId]);
  const out: unknown[] = [];
  for (const { id, ...run } of runs) {
    const { rows: mismatches } = await db.pool.query(`SELECT aggregate_id, class, kind, fields, explanation FROM hindsight.verify_mismatches WHERE run_row = $1 ORDER BY aggregate_id`, [id]);
    out.push({ ...run, mismatches });
  }
  return out;
}

/** Shared runs of the check, oldest first, with who reported each chunk and how often each was taken. */
async function sharedRuns(): Promise<Array<{ run_id: string; recorded: boolean; chunks: number; workers: string[]; retaken: number }>> {
  const { rows } = await db.pool.query(
    `SELECT r.run_id::text, r.recorded_run IS NOT NULL AS recorded, r.chunks,
            array_agg(DISTINCT split_part(c.worker, '/', 1)) FILTER (WHERE c.state = 'done') AS workers,
            count(*) FILTER (WHERE c.attempts > 1)::int AS retaken
     FROM hindsight.verify_chunk_runs r JOIN hindsight.verify_chunks c USING (run_id, aggregate_type)
     GROUP BY r.run_id, r.recorded_run, r.chunks, r.started_at ORDER BY r.started_at`,
  );
  return rows.map((r) => ({ ...r, workers: r.workers ?? [] }));
}

function startRun(name: string, env: Record<string, string> = {}): RunningBin {
  const bin = startBin(['run', '--config', path.join(cwd, 'hindsight.config.json'), '--database-url', db.url, '--only', 'verify', '--no-http', '--instance', name], { cwd, env });
  running.push(bin);
  return bin;
}

/** Waits until the process logs that it runs, and returns the instance name it logs. */
async function instanceOf(bin: RunningBin): Promise<string> {
  const match = await bin.waitForOutput(/running verify as ([A-Za-z0-9_.:@-]+)/);
  return match[1]!;
}

let single: unknown;

beforeAll(async () => {
  hook = await startWebhookReceiver();
  await migrate({ connectionString: db.url });
  await db.pool.query(`CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, tier text NOT NULL)`);
  await db.pool.query(`INSERT INTO customers SELECT 3 * g, 'customer ' || g, CASE WHEN g % 2 = 0 THEN 'G' ELSE 'S' END FROM generate_series(1, 3000) g`);
  cwd = await scratchDir('shared-check');
  await fs.writeFile(path.join(cwd, 'hindsight.config.json'), JSON.stringify(input(hook.url)));
  const backfill = await runCli(['backfill', 'customer', '--config', path.join(cwd, 'hindsight.config.json'), '--database-url', db.url], { cwd });
  expect(backfill.stderr).toBe('');
  // Planted behind hindsight's back: changed rows, rows no event mentions, rows deleted.
  await db.pool.query(`UPDATE customers SET name = 'drifted' WHERE id % 97 = 0`);
  await db.pool.query(`INSERT INTO customers SELECT 3 * g + 1, 'unimported', 'G' FROM generate_series(1, 3000, 211) g`);
  await db.pool.query(`DELETE FROM customers WHERE id % 113 = 0`);
  const report = await verify(resolveConfig(input(hook.url) as never), { connectionString: db.url });
  expect(report.outcome).toBe('mismatches');
  single = await stored(report.runId);
});

afterAll(async () => {
  for (const bin of running) bin.child.kill('SIGKILL');
  await Promise.all(running.map((bin) => bin.exited));
  await hook?.close();
});

describe('a scheduled full check shared by two instances', () => {
  test('both instances report chunks of one run, stored as a single-process run stores it, and its mismatches are alerted with a console link', async () => {
    const a = startRun('instance-a');
    const b = startRun('instance-b');
    const names = await Promise.all([instanceOf(a), instanceOf(b)]);
    const run = await pollFor('a recorded shared run', async () => (await sharedRuns()).find((r) => r.recorded), { timeoutMs: 150_000, everyMs: 250 });
    expect(run.chunks).toBeGreaterThanOrEqual(10);
    expect(run.workers.sort()).toEqual(names.sort());
    expect(await stored(run.run_id)).toEqual(single);

    const alert = await pollFor('the mismatch alert', async () => hook.received.find((r) => r.json.kind === 'verify.mismatches' && r.json.run?.runId === run.run_id), { timeoutMs: 30_000 });
    const [{ id: historyId }] = (await db.pool.query(`SELECT id::int FROM hindsight.verify_runs WHERE run_id = $1`, [run.run_id])).rows;
    expect(alert.json).toMatchObject({ type: 'customer', check: 'customers-full', link: `http://console.test/verify/run?id=${historyId}` });
    expect(alert.json.run.counts).toMatchObject({ missingInEvents: 15, missingInLegacy: 26 });
    expect(hook.received.filter((r) => r.json.kind === 'verify.mismatches' && r.json.run?.runId === run.run_id)).toHaveLength(1); // alerted by the instance that ran the check, once

    // SIGTERM: each stops with 0, handing back any chunk in hand (none stays taken by a stopped instance).
    b.child.kill('SIGTERM');
    expect(await b.exited).toBe(0);
    const held = await db.pool.query(`SELECT chunk FROM hindsight.verify_chunks WHERE state = 'taken' AND worker LIKE $1`, [`${names[1]}/%`]);
    expect(held.rows).toEqual([]);
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
  }, 240_000);

  test('an instance killed with -9 holding a chunk: the other retakes it after its lease, and the run is stored as a single-process run stores it', async () => {
    const before = new Set((await sharedRuns()).map((r) => r.run_id));
    const a = startRun('instance-a');
    await instanceOf(a);
    const doomed = startRun('instance-doomed', { HINDSIGHT_VERIFY_FAILPOINT: 'chunk-taken' });
    await instanceOf(doomed);
    // Whether it ran the check or helped with it, it dies right after taking its first chunk.
    expect(await doomed.exited).toBe('SIGKILL');
    expect(doomed.stderr()).toContain('failpoint chunk-taken');
    const run = await pollFor(
      'the run with the dead chunk to be recorded',
      async () => (await sharedRuns()).find((r) => !before.has(r.run_id) && r.retaken > 0 && r.recorded),
      { timeoutMs: 150_000, everyMs: 250 },
    );
    expect(await stored(run.run_id)).toEqual(single);
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
  }, 240_000);
});

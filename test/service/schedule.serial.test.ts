import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { backfill } from '../../src/replication/backfill.js';
import { setupReplication } from '../../src/replication/setup.js';
import { migrate } from '../../src/store/migrate.js';
import { useTestDatabase } from '../helpers/database.js';
import { scratchDir, startBin, type RunningBin } from '../helpers/cli.js';
import { pollFor } from '../helpers/poll.js';
import { teardownEventually } from '../helpers/replication.js';

// Serial: it creates a replication slot (cluster-wide) and runs two real `hindsight run`
// processes against the job queue's real minute ticks, so it takes two to four minutes of
// wall time: ticks come from the clock, never from a fake one.

const db = useTestDatabase(import.meta.url);
const slot = `hs_sched_${Math.random().toString(36).slice(2, 8)}`;
const input = {
  replication: { slot, publication: 'hs_sched_legacy' },
  aggregates: [
    {
      type: 'ledger',
      table: 'ledgers',
      key: { column: 'id', type: 'bigint' },
      verify: {
        schedule: [
          { name: 'ledgers-every-minute', cron: '* * * * *' },
          { name: 'ledgers-catch-up', cron: '* * * * *', onMissed: 'run-once' },
        ],
      },
    },
    // No listener runs in this test: each run of this check waits 75 s for the listener's
    // cut, longer than a minute, so the next tick finds it still going.
    { type: 'item', table: 'items', key: { column: 'id', type: 'integer' }, capture: 'listener', verify: { schedule: [{ name: 'items-slow', cron: '* * * * *', lagTimeout: 75 }] } },
  ],
};
const config = resolveConfig(input);
let cwd: string;
const running: RunningBin[] = [];

interface Entry {
  id: number;
  check_id: string;
  tick: string;
  event: string;
  run_id: string | null;
  outcome: string | null;
  detail: string | null;
  instance: string | null;
}

async function log(check?: string): Promise<Entry[]> {
  const { rows } = await db.pool.query(
    `SELECT id::int, check_id, to_char(tick AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI') AS tick, event, run_id::text, outcome, detail, instance
     FROM hindsight.schedule_log WHERE $1::text IS NULL OR check_id = $1 ORDER BY id`,
    [check ?? null],
  );
  return rows;
}

/** Waits for the schedule log to show something; on a timeout the error carries the whole log. */
function poll<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  return pollFor(what, probe, { timeoutMs, everyMs: 250, explain: async () => `the log:
${JSON.stringify(await log(), null, 1)}` });
}

function startRun(): RunningBin {
  const bin = startBin(['run', '--config', path.join(cwd, 'hindsight.config.json'), '--database-url', db.url, '--only', 'verify', '--http', '127.0.0.1:0'], { cwd });
  running.push(bin);
  return bin;
}

beforeAll(async () => {
  await db.pool.query(`CREATE TABLE ledgers (id bigint PRIMARY KEY, balance int NOT NULL); CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'only')`); // a row, so a run has a page whose cut it waits for
  await migrate({ connectionString: db.url });
  await setupReplication(config, { connectionString: db.url });
  await backfill(config, { connectionString: db.url });
  cwd = await scratchDir('schedule');
  await fs.writeFile(path.join(cwd, 'hindsight.config.json'), JSON.stringify(input));
});

afterAll(async () => {
  for (const bin of running) bin.child.kill('SIGKILL');
  await Promise.all(running.map((bin) => bin.exited));
  await teardownEventually(db.pool, config);
});

describe('scheduled checks across two instances', () => {
  test('each tick runs once across both; a tick that finds the previous run still going is skipped; ticks missed while none ran are logged (and run once where asked)', async () => {
    const a = startRun();
    const b = startRun();
    await Promise.all([a.waitForOutput(/running verify as/), b.waitForOutput(/running verify as/)]);

    await poll(
      'two ticks of the fast check and a skipped tick of the slow one',
      async () => {
        const entries = await log();
        const queued = entries.filter((e) => e.check_id === 'ledgers-every-minute' && e.event === 'queued');
        const skipped = entries.filter((e) => e.check_id === 'items-slow' && e.event === 'skipped');
        return queued.length >= 2 && skipped.length >= 1 ? true : undefined;
      },
      240_000,
    );

    const fast = await log('ledgers-every-minute');
    const ticks = fast.filter((e) => e.event === 'queued').map((e) => e.tick);
    expect(new Set(ticks).size).toBe(ticks.length); // exactly once per minute, whichever instance took it
    for (const tick of ticks) {
      expect(fast.filter((e) => e.tick === tick && e.event === 'started').length).toBeLessThanOrEqual(1);
    }
    const finished = fast.filter((e) => e.event === 'finished');
    expect(finished.length).toBeGreaterThan(0);
    for (const entry of finished) {
      expect(entry.outcome).toBe('empty');
      const { rows } = await db.pool.query(`SELECT mode, outcome FROM hindsight.verify_runs WHERE run_id = $1`, [entry.run_id]);
      expect(rows).toEqual([{ mode: 'full', outcome: 'empty' }]); // the same stored runs as `hindsight verify`
    }

    const slow = await log('items-slow');
    const skip = slow.find((e) => e.event === 'skipped')!;
    expect(skip.detail).toBe('the previous run of this check was still going');
    const before = slow.slice(0, slow.indexOf(skip));
    expect(before.filter((e) => e.event === 'started').length).toBe(before.filter((e) => e.event === 'finished').length + 1); // one run was open
    expect(new Set(slow.filter((e) => e.event === 'started').map((e) => e.tick)).size).toBe(slow.filter((e) => e.event === 'started').length);

    // Both stop cleanly, the slow run in hand cancelled (stored as incomplete), not lost.
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    expect(await Promise.all([a.exited, b.exited])).toEqual([0, 0]);

    // As if the last instance had stopped three minutes earlier than it did: the next tick
    // finds the minutes since then unevaluated.
    await db.pool.query(`UPDATE hindsight.schedule_state SET evaluated_to = evaluated_to - interval '3 minutes' WHERE check_id LIKE 'ledgers-%'`);
    const mark = Math.max(...(await log()).map((e) => e.id));
    const c = startRun();
    await c.waitForOutput(/running verify as/);
    const missed = await poll(
      'the missed ticks to be logged',
      async () => {
        const entries = (await log('ledgers-every-minute')).filter((e) => e.id > mark && e.event === 'missed');
        return entries.length >= 3 ? entries : undefined;
      },
      120_000,
    );
    expect(new Set(missed.map((e) => e.tick)).size).toBe(missed.length);
    const fastAfter = (await log('ledgers-every-minute')).filter((e) => e.id > mark);
    for (const entry of missed) expect(fastAfter.filter((e) => e.tick === entry.tick && e.event === 'queued')).toEqual([]); // recorded, not run
    const catchUp = await poll(
      'the run-once check to queue one run for its missed ticks',
      async () => (await log('ledgers-catch-up')).find((e) => e.id > mark && e.event === 'queued' && e.detail === 'run once for missed ticks'),
      30_000,
    );
    expect((await log('ledgers-catch-up')).filter((e) => e.detail === 'run once for missed ticks')).toHaveLength(1);
    expect(catchUp.tick).toBe(missed[missed.length - 1]!.tick);
    c.child.kill('SIGTERM');
    expect(await c.exited).toBe(0);
  }, 420_000);
});

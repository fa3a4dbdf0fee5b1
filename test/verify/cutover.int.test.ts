import type pg from 'pg';
import path from 'node:path';
import fs from 'node:fs/promises';
import { beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { toSql } from '../../src/db/queryable.js';
import type { Hindsight } from '../../src/hindsight.js';
import { createUpdater } from '../../src/readmodel/updater.js';
import { storeTables } from '../../src/store/tables.js';
import { cutoverStatus } from '../../src/verify/cutover.js';
import { verify } from '../../src/verify/run.js';
import { runCli, scratchDir } from '../helpers/cli.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, readModelConfig } from '../helpers/fixtures.js';

// The cut-over gate: a checklist built from the stored runs; switch refused while it is
// closed (unless forced with a reason, recorded); revert; the app asks where to read from
// and waits for its own write to reach the read model.

const db = useTestDatabase(import.meta.url);
const input: ConfigInput = (() => {
  const base = readModelConfig();
  return { ...base, aggregates: base.aggregates!.map((a) => (a.type === 'account' ? { ...a, columns: { balance: 'balance' } } : a)) };
})();
const config = resolveConfig(input);
const tables = storeTables('"hindsight"');
let hs: Hindsight;
let cli: (...args: string[]) => ReturnType<typeof runCli>;

async function credit(id: number, amount: number): Promise<number> {
  let version = 0;
  await hs.transaction(db.pool, async (tx) => {
    await (tx.db as pg.PoolClient).query(
      'INSERT INTO accounts (id, balance) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + $2',
      [id, amount],
    );
    version = (await tx.record('account', id, 'account.credited', { amount })).version!;
  });
  return version;
}

async function bothChecks(): Promise<void> {
  await createUpdater(config, { connectionString: db.url }).runOnce();
  for (const target of ['projection', 'read-model:account_balances']) {
    const report = await verify(config, { connectionString: db.url, types: target === 'projection' ? ['account'] : undefined, target });
    expect(report.types[0]!.outcome).toBe('clean');
  }
}

beforeAll(async () => {
  hs = await prepareStore(db, input);
  for (let id = 1; id <= 5; id++) await credit(id, id * 10);
  const dir = await scratchDir('cutover-cli');
  const file = path.join(dir, 'hindsight.config.ts');
  const fixtures = path.resolve(import.meta.dirname, '../helpers/fixtures.ts');
  await fs.writeFile(
    file,
    `import { readModelConfig } from ${JSON.stringify(fixtures)};\nconst base = readModelConfig();\n` +
      `export default { ...base, aggregates: base.aggregates.map((a) => (a.type === 'account' ? { ...a, columns: { balance: 'balance' } } : a)) };\n`,
  );
  cli = (...args) => runCli([...args, '--config', file, '--database-url', db.url], { cwd: dir });
});

describe('the cut-over gate', () => {
  test('closed without runs; three clean runs of both checks are not enough until they span the days asked', async () => {
    const none = await cli('cutover', 'status', 'account');
    expect(none.code).toBe(1);
    expect(none.stdout).toMatch(/cut-over gate to account_balances: CLOSED/);
    expect(none.stdout).toMatch(/\[ \] 3 consecutive clean, complete, full runs of projection spanning 7 days: no full run stored/);

    for (let i = 0; i < 3; i++) await bothChecks();
    // a sample run does not count, and does not break the streak
    await verify(config, { connectionString: db.url, types: ['account'], sample: 2 });
    const young = await cutoverStatus(toSql(db.pool), tables, config, 'account');
    expect(young.passed).toBe(false);
    expect(young.checklist[0]).toMatchObject({ ok: false, detail: expect.stringMatching(/^3 clean in a row, spanning 0\.0 days/) });
    expect((await cutoverStatus(toSql(db.pool), tables, config, 'account', { days: 0 })).passed).toBe(true);
    // the same through the app's hindsight object
    expect((await hs.cutoverStatus(db.pool, 'account', { days: 0 })).passed).toBe(true);
    expect((await hs.verifyRuns(db.pool, { types: ['account'], target: 'projection' })).map((r) => r.mode)).toEqual(['sample', 'full', 'full', 'full']);

    // the same runs, as if taken over the last eight days
    await db.pool.query(
      `UPDATE hindsight.verify_runs SET started_at = started_at - interval '8 days', finished_at = finished_at - interval '8 days'
       WHERE id IN (SELECT min(id) FROM hindsight.verify_runs GROUP BY target)`,
    );
    const status = await cli('cutover', 'status', 'account');
    expect(status.stdout).toMatch(/cut-over gate to account_balances: OPEN/);
    // the same streak is stale once its newest run is older than allowed
    const stale = await cutoverStatus(toSql(db.pool), tables, config, 'account', { maxAgeHours: 0 });
    expect(stale.passed).toBe(false);
    expect(stale.checklist[0]!.detail).toMatch(/the newest is \d+ hours old \(at most 0\)/);
    expect(status.stdout).toMatch(/\[x\] 3 consecutive clean, complete, full runs of read-model:account_balances spanning 7 days: 3 clean in a row, spanning 8\.0 days/);
    expect(status.stdout).toMatch(/\[x\] read model account_balances caught up/);
    expect(status.code).toBe(0);
  });

  test('a run with mismatches breaks the streak and closes the gate; switch is refused, exit 1', async () => {
    await db.pool.query(`UPDATE accounts SET balance = balance + 1 WHERE id = 2`);
    const run = await verify(config, { connectionString: db.url, types: ['account'] });
    expect(run.outcome).toBe('mismatches');
    const refused = await cli('cutover', 'switch', 'account');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/the cut-over gate of account is closed:\n  - 3 consecutive clean, complete, full runs of projection spanning 7 days: a full run \(.*\) found mismatches/);
    expect((await hs.readSource(db.pool, 'account')).source).toBe('legacy');
    await db.pool.query(`UPDATE accounts SET balance = balance - 1 WHERE id = 2`);
  });

  test('a forced switch needs a reason and is recorded; the app then reads from the read model; revert goes back', async () => {
    const noReason = await cli('cutover', 'switch', 'account', '--force');
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toMatch(/--force needs --reason/);

    const forced = await cli('cutover', 'switch', 'account', '--force', '--reason', 'incident 123: legacy table is being retired');
    expect(forced.code).toBe(0);
    expect(await hs.readSource(db.pool, 'account')).toEqual({ source: 'read-model', readModel: 'account_balances' });
    const { rows } = await db.pool.query(`SELECT action, forced, reason, read_model FROM hindsight.cutover_log ORDER BY id`);
    expect(rows).toEqual([{ action: 'switch', forced: true, reason: 'incident 123: legacy table is being retired', read_model: 'account_balances' }]);

    const reverted = await cli('cutover', 'revert', 'account', '--reason', 'back to legacy while we look');
    expect(reverted.code).toBe(0);
    expect((await hs.readSource(db.pool, 'account')).source).toBe('legacy');
  });

  test('read-your-writes: waiting for the read model times out with no updater, and resolves once it has applied the write', async () => {
    const version = await credit(3, 7);
    await expect(hs.waitForReadModel(db.pool, 'account_balances', { aggregateId: 3, sequence: version }, { timeoutMs: 300 })).rejects.toThrow(
      /did not reach account 3 event 2 within 300 ms: is hindsight project running/,
    );
    const updater = createUpdater(config, { connectionString: db.url });
    const stop = new AbortController();
    const running = updater.run(stop.signal);
    try {
      await hs.waitForReadModel(db.pool, 'account_balances', { aggregateId: 3, sequence: version }, { timeoutMs: 10_000 });
      const { rows } = await db.pool.query(`SELECT balance::int, hindsight_sequence::int FROM read_models.account_balances WHERE aggregate_id = '3'`);
      expect(rows).toEqual([{ balance: 37, hindsight_sequence: version }]);
    } finally {
      stop.abort();
      await running;
    }
  });
});

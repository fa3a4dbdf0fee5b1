import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Hindsight } from '../../src/hindsight.js';
import { retryOnConflict } from '../../src/capture/retry.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, readModelConfig } from '../helpers/fixtures.js';
import { scratchDir, writeTestConfig } from '../helpers/cli.js';

// Serial: real processes killed with SIGKILL while writers hold transactions open.

const db = useTestDatabase(import.meta.url);
let hs: Hindsight;
let cwd: string;
const children = new Set<ChildProcess>();
const BIN = path.resolve(import.meta.dirname, '../../bin/hindsight.js');

beforeAll(async () => {
  hs = await prepareStore(db, readModelConfig());
  await hs.migrate(db.url);
  cwd = await scratchDir('crash');
  await writeTestConfig(cwd, 'readModelConfig');
});
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

function startUpdater(...extra: string[]): ChildProcess {
  return startProcess(['project', '--read-model', 'account_balances', '--batch-size', '20', '--lease-ttl', '1', '--database-url', db.url, ...extra]);
}

/** The updaters inside `hindsight run` (every read model of the config, this one among them). */
function startRunUpdater(): ChildProcess {
  return startProcess(['run', '--only', 'project', '--no-http', '--lease-ttl', '1', '--database-url', db.url]);
}

function startProcess(args: string[]): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  child.stdout!.resume();
  child.stderr!.resume();
  return child;
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Writers: single credits, and transfers that write one account and then wait on another inside one transaction. */
function startWorkload(): { stop(): Promise<number> } {
  let running = true;
  let transactions = 0;
  const accounts = 12;
  const pick = () => 1 + Math.floor(Math.random() * accounts);
  const single = async () => {
    while (running) {
      await hs.append(db.pool, { aggregateType: 'account', aggregateId: pick(), events: [{ type: 'account.credited', payload: { amount: 1 + Math.floor(Math.random() * 9) } }] });
      transactions += 1;
    }
  };
  const transfer = async () => {
    while (running) {
      const [from, to] = [pick(), pick()];
      if (from === to) continue;
      // Transfers in opposite directions deadlock now and then: retried, as an app would.
      await retryOnConflict(() =>
        hs.transaction(db.pool, async (tx) => {
          await tx.record('account', from, 'account.debited', { amount: 1 });
          await sleep(Math.random() * 20); // holds `from`, then takes `to`: sequences commit out of transaction-id order
          await tx.record('account', to, 'account.credited', { amount: 1 });
        }),
      );
      transactions += 1;
    }
  };
  const writers = [single(), single(), transfer(), transfer(), transfer()];
  return {
    async stop() {
      running = false;
      await Promise.all(writers);
      return transactions;
    },
  };
}

async function leaseOwner(): Promise<string | undefined> {
  return (await db.pool.query<{ owner: string }>(`SELECT owner FROM hindsight.leases WHERE name = 'read-model:account_balances' AND expires_at > now()`)).rows[0]
    ?.owner;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(20);
  }
}

async function expectRowsEqualFreshProjections(): Promise<void> {
  const { rows } = await db.pool.query(`SELECT aggregate_id, balance::int AS balance, hindsight_sequence::int AS sequence FROM read_models.account_balances`);
  const { rows: heads } = await db.pool.query(`SELECT aggregate_id, version::int AS version FROM hindsight.heads WHERE aggregate_type = 'account'`);
  expect(rows.length).toBe(heads.length);
  for (const row of rows) {
    const fresh = await hs.project(db.pool, 'account', row.aggregate_id, { snapshots: false });
    if (!fresh.found) throw new Error('expected a projection');
    expect({ id: row.aggregate_id, balance: row.balance, sequence: row.sequence }).toEqual({ id: row.aggregate_id, balance: fresh.state.balance, sequence: fresh.version });
  }
  // every event applied exactly once: the checkpoint's count equals the number of events
  const { rows: counts } = await db.pool.query(
    `SELECT (SELECT events_applied FROM hindsight.checkpoints WHERE subscriber = 'read-model:account_balances')::int AS applied,
            (SELECT count(*) FROM hindsight.events WHERE aggregate_type = 'account')::int AS events`,
  );
  expect(counts[0].applied).toBe(counts[0].events);
}

describe('crashes', () => {
  test('killed with SIGKILL at random points 10 times during writes with transfers, as `project` and inside `hindsight run`: no event lost or applied twice', async () => {
    const workload = startWorkload();
    const applied = async () =>
      Number((await db.pool.query(`SELECT events_applied FROM hindsight.checkpoints WHERE subscriber = 'read-model:account_balances'`)).rows[0]?.events_applied ?? 0);
    const progress: number[] = [];
    for (let round = 0; round < 10; round++) {
      const child = round % 2 === 1 ? startRunUpdater() : startUpdater(); // `project` and `hindsight run` in turn
      await waitUntil(async () => (await leaseOwner())?.includes(`:${child.pid}:`) ?? false); // it took over the dead one's lease
      const before = await applied();
      // Every other child is killed only after it committed work of its own (only the lease
      // holder commits), so such kills are among the ten whatever the machine's speed.
      if (round % 2 === 0) await waitUntil(async () => (await applied()) > before);
      await sleep(Math.random() * 300); // a random point of its work: reading, folding, inside the write transaction...
      await kill(child);
      progress.push((await applied()) - before);
    }
    const transactions = await workload.stop();
    expect(transactions).toBeGreaterThan(50);
    // at least half of the killed processes had committed work of their own
    expect(progress.filter((n) => n > 0).length).toBeGreaterThanOrEqual(5);
    const last = startUpdater('--once');
    const code = await new Promise<number | null>((resolve) => last.on('exit', (c) => resolve(c)));
    expect(code).toBe(0);
    await expectRowsEqualFreshProjections();
  });

  test('two updaters compete; the holder is killed and the other takes over on its own', async () => {
    await Promise.all([...children].map(kill));
    const [a, b] = [startUpdater(), startUpdater()];
    const owner = leaseOwner;
    const deadline = Date.now() + 15_000;
    while (!(await owner())) {
      if (Date.now() > deadline) throw new Error('no updater took the lease');
      await sleep(50);
    }
    const holderPid = Number((await owner())!.split(':')[1]);
    const [holder, other] = a.pid === holderPid ? [a, b] : [b, a];
    expect([a.pid, b.pid]).toContain(holderPid);
    await kill(holder);
    const killedAt = Date.now();
    // How soon it takes over depends on the lease's time to live (1 s here) and the machine;
    // what must hold is that it does, with no restart, and then processes.
    while (!(await owner())?.includes(`:${other.pid}:`)) {
      if (Date.now() - killedAt > 30_000) throw new Error('the standby did not take over');
      await sleep(50);
    }
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 100, events: [{ type: 'account.credited', payload: { amount: 3 } }] });
    while ((await db.pool.query(`SELECT 1 FROM read_models.account_balances WHERE aggregate_id = '100'`)).rows.length === 0) {
      if (Date.now() - killedAt > 45_000) throw new Error('the new holder did not process');
      await sleep(50);
    }
    other.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => other.on('exit', (c) => resolve(c)));
    expect(code).toBe(0); // SIGTERM: a clean stop
    await expectRowsEqualFreshProjections();
  });
});


import knexFactory from 'knex';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { retryOnConflict } from '../../src/capture/retry.js';
import { isConcurrencyError, isValidationError } from '../../src/errors.js';
import { createHindsight, type Hindsight } from '../../src/hindsight.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, testConfig } from '../helpers/fixtures.js';

const db = useTestDatabase(import.meta.url);
let hs: Hindsight;
beforeAll(async () => {
  hs = await prepareStore(db);
});

const credit = (amount = 1) => ({ type: 'account.credited', payload: { amount } });

describe('session settings do not change what is stored or checked', () => {
  test('standard_conforming_strings = off: appends chain from the same genesis, and audits pass either way', async () => {
    const odd = new pg.Client(db.url);
    await odd.connect();
    try {
      await odd.query('SET standard_conforming_strings = off');
      await hs.append(odd, { aggregateType: 'account', aggregateId: 1, events: [credit(), credit(2)] });
      await hs.append(odd, { aggregateType: 'account', aggregateId: 1, events: [credit(3)] });
      await hs.append(db.pool, { aggregateType: 'account', aggregateId: 2, events: [credit()] });
      for (const client of [odd, db.pool]) {
        const report = await hs.audit(client, { aggregateType: 'account' });
        expect(report.problems).toEqual([]);
        expect(report.events).toBe(4);
      }
    } finally {
      await odd.end();
    }
  });
});

describe('more ways to lose a race', () => {
  test('a batch append in REPEATABLE READ that meets a concurrent append is a ConcurrencyError', async () => {
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 10, events: [credit()] });
    const reader = await db.pool.connect();
    try {
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      const version = await hs.version(reader, 'account', 10);
      await hs.append(db.pool, { aggregateType: 'account', aggregateId: 10, events: [credit()] });
      const error = await hs.append(reader, { aggregateType: 'account', aggregateId: 10, expectedVersion: version, events: [credit(), credit()] }).catch((e: unknown) => e);
      expect(isConcurrencyError(error)).toBe(true);
    } finally {
      await reader.query('ROLLBACK');
      reader.release();
    }
  });

  test('a serialization failure at COMMIT (write skew) is retried by retryOnConflict', async () => {
    await db.pool.query(`INSERT INTO accounts (id, balance) VALUES (20, 100), (21, 100)`);
    // Two transactions each read both balances and take 150 from "their" account if the sum allows.
    const start = new Barrier(2);
    let attempts = 0;
    const withdraw = (mine: number) =>
      retryOnConflict(() =>
        hs.transaction(
          db.pool,
          async (tx) => {
            attempts += 1;
            const client = tx.db as pg.ClientBase;
            const { rows } = await client.query(`SELECT sum(balance)::int AS total FROM accounts WHERE id IN (20, 21)`);
            await start.wait();
            if (rows[0].total >= 150) {
              await client.query('UPDATE accounts SET balance = balance - 150 WHERE id = $1', [mine]);
              await tx.record('account', mine, 'account.debited', { amount: 150 });
            }
          },
          { isolationLevel: 'serializable' },
        ),
      );
    await Promise.all([withdraw(20), withdraw(21)]);
    expect(attempts).toBe(3); // one of the two first attempts failed and ran again
    const { rows } = await db.pool.query(`SELECT sum(balance)::int AS total FROM accounts WHERE id IN (20, 21)`);
    expect(rows[0].total).toBe(50);
  });
});

class Barrier {
  private waiting: Array<() => void> = [];
  constructor(private remaining: number) {}
  wait(): Promise<void> {
    this.remaining -= 1;
    if (this.remaining <= 0) {
      this.waiting.forEach((release) => release());
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}

describe('the transaction helper', () => {
  test("its context is in effect for plain hs.append calls in the app's code", async () => {
    const strict = createHindsight(testConfig({ requireActor: true }));
    const appendDeepInTheApp = (client: unknown) => strict.append(client as pg.ClientBase, { aggregateType: 'account', aggregateId: 30, events: [credit()] });
    await strict.transaction(db.pool, (tx) => appendDeepInTheApp(tx.db), { context: { actor: 'job-7', reason: 'nightly' } });
    const [event] = await hs.readAggregate(db.pool, 'account', 30);
    expect(event!.metadata).toEqual({ actor: 'job-7', reason: 'nightly' });
  });

  test('an isolation level cannot be applied to a transaction the caller already began', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const error = await hs.transaction(client, async () => undefined, { isolationLevel: 'serializable' }).catch((e: unknown) => e);
      expect(isValidationError(error)).toBe(true);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  test("a failing wrapped call releases its savepoint, so the caller's transaction goes on cleanly many times", async () => {
    const failing = hs.wrap(async (c: pg.ClientBase) => c.query('SELECT 1'), { events: () => Promise.reject(new Error('no')) });
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      for (let i = 0; i < 50; i++) await expect(failing(client)).rejects.toThrow('no');
      await hs.append(client, { aggregateType: 'account', aggregateId: 31, events: [credit()] });
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(await hs.version(db.pool, 'account', 31)).toBe(1);
  });
});

describe('knex', () => {
  let k: ReturnType<typeof knexFactory>;
  beforeAll(() => {
    k = knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 2 } });
  });
  afterAll(async () => {
    await k.destroy();
  });

  test('a batch append (array parameters) through a knex transaction', async () => {
    const result = await k.transaction((trx) =>
      hs.append(trx, { aggregateType: 'account', aggregateId: 40, expectedVersion: 'none', events: [credit(1), credit(2), credit(3)] }),
    );
    expect(result.sequences).toEqual([1, 2, 3]);
    const events = await hs.readAggregate(k, 'account', 40);
    expect(events.map((e) => e.payload)).toEqual([{ amount: 1 }, { amount: 2 }, { amount: 3 }]);
  });
});

describe('times given to the read API are checked', () => {
  test('text without an offset is refused before anything is sent; Dates and offsets work', async () => {
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 50, events: [{ ...credit(), occurredAt: '2026-02-03T10:00:00Z' }] });
    for (const call of [
      () => hs.readAggregate(db.pool, 'account', 50, { from: '2026-02-01 00:00' }),
      () => hs.history(db.pool, 'account', 50, { to: 'tomorrow' }),
      () => hs.project(db.pool, 'account', 50, { asOf: '2026-02-04' }),
    ]) {
      expect(isValidationError(await call().catch((e: unknown) => e))).toBe(true);
    }
    expect(await hs.readAggregate(db.pool, 'account', 50, { from: new Date('2026-02-03T09:00:00Z'), to: '2026-02-03T11:00:00+00:00' })).toHaveLength(1);
    expect(await hs.project(db.pool, 'account', 50, { asOf: new Date('2026-02-04T00:00:00Z') })).toMatchObject({ found: true, version: 1 });
  });
});

describe('audit while the log grows', () => {
  test('appends committing during an audit never look like broken chains', async () => {
    let writing = true;
    const writers = [60, 61, 62].map(async (id) => {
      while (writing) await hs.append(db.pool, { aggregateType: 'account', aggregateId: id, events: [credit()] });
    });
    const reports = [];
    // Audits until four of them had appends commit while they ran (the log grew from just
    // before one to just after it), however fast this machine audits or appends.
    const logSize = async () => (await db.pool.query(`SELECT count(*)::int AS n FROM hindsight.events`)).rows[0].n as number;
    let overlapped = 0;
    const deadline = Date.now() + 60_000;
    while (overlapped < 4 && Date.now() < deadline) {
      const before = await logSize();
      reports.push(await hs.audit(db.pool, { aggregateType: 'account', batchSize: 2 }));
      if ((await logSize()) > before) overlapped += 1;
    }
    writing = false;
    await Promise.all(writers);
    expect(overlapped).toBe(4);
    for (const report of reports) expect(report.problems).toEqual([]);
  });
});

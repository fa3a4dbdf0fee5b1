import knexFactory from 'knex';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Hindsight } from '../../src/hindsight.js';
import { isValidationError } from '../../src/errors.js';
import { useTestDatabase } from '../helpers/database.js';
import { countEvents, prepareStore } from '../helpers/fixtures.js';

const db = useTestDatabase(import.meta.url);
let hs: Hindsight;

beforeAll(async () => {
  hs = await prepareStore(db);
  await db.pool.query(`INSERT INTO accounts (id, balance) SELECT g, 100 FROM generate_series(1, 20) g`);
});

async function balance(id: number): Promise<number> {
  const { rows } = await db.pool.query<{ balance: string }>('SELECT balance::text FROM accounts WHERE id = $1', [id]);
  return Number(rows[0]!.balance);
}

async function eventsOf(id: number): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM hindsight.events WHERE aggregate_type = 'account' AND aggregate_id = $1`,
    [String(id)],
  );
  return Number(rows[0]!.n);
}

/** The legacy service function, unchanged. */
async function credit(client: { query: (t: string, v: unknown[]) => Promise<unknown> }, id: number, amount: number) {
  await client.query('UPDATE accounts SET balance = balance + $2 WHERE id = $1', [id, amount]);
  return amount;
}

describe('state and events commit together or not at all', () => {
  test('a transaction that commits keeps both the UPDATE and the event', async () => {
    await hs.transaction(db.pool, async (tx) => {
      await credit(tx.db as never, 1, 5);
      await tx.record('account', 1, 'account.credited', { amount: 5 });
    });
    expect(await balance(1)).toBe(105);
    expect(await eventsOf(1)).toBe(1);
  });

  test('a transaction that throws after recording leaves neither the UPDATE nor the event', async () => {
    await expect(
      hs.transaction(db.pool, async (tx) => {
        await credit(tx.db as never, 2, 5);
        await tx.record('account', 2, 'account.credited', { amount: 5 });
        throw new Error('the app changed its mind');
      }),
    ).rejects.toThrow('the app changed its mind');
    expect(await balance(2)).toBe(100);
    expect(await eventsOf(2)).toBe(0);
  });

  test("a caller's own BEGIN ... ROLLBACK on a pg client discards the event with the UPDATE", async () => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await credit(client, 3, 7);
      await hs.append(client, { aggregateType: 'account', aggregateId: 3, events: [{ type: 'account.credited', payload: { amount: 7 } }] });
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    expect(await balance(3)).toBe(100);
    expect(await eventsOf(3)).toBe(0);
  });

  test('wrapper: when deriving the events throws after the UPDATE, the UPDATE is rolled back', async () => {
    const wrapped = hs.wrap(credit, {
      events: () => {
        throw new Error('cannot derive events');
      },
    });
    await expect(wrapped(db.pool, 4, 9)).rejects.toThrow('cannot derive events');
    expect(await balance(4)).toBe(100);
    expect(await eventsOf(4)).toBe(0);
  });

  test('wrapper: an invalid derived payload rolls back the UPDATE and writes no event', async () => {
    const wrapped = hs.wrap(credit, {
      events: (_r, id, amount) => ({ aggregateType: 'account', aggregateId: id, events: [{ type: 'account.credited', payload: { amount: -amount } }] }),
    });
    const error = await wrapped(db.pool, 5, 9).catch((e: unknown) => e);
    expect(isValidationError(error)).toBe(true);
    expect(await balance(5)).toBe(100);
    expect(await eventsOf(5)).toBe(0);
  });

  test("wrapper inside the caller's transaction: a failing derivation undoes only the wrapped call (savepoint)", async () => {
    const wrapped = hs.wrap(credit, {
      events: (_r, id) => (id === 7 ? Promise.reject(new Error('no')) : { aggregateType: 'account', aggregateId: id, events: [{ type: 'account.credited', payload: { amount: 1 } }] }),
    });
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await wrapped(client, 6, 1);
      await expect(wrapped(client, 7, 1)).rejects.toThrow('no');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect([await balance(6), await eventsOf(6)]).toEqual([101, 1]);
    expect([await balance(7), await eventsOf(7)]).toEqual([100, 0]);
  });

  test('wrapper on a pg client outside a transaction opens and commits one itself', async () => {
    const wrapped = hs.wrap(credit, {
      events: (_r, id, amount) => ({ aggregateType: 'account', aggregateId: id, events: [{ type: 'account.credited', payload: { amount } }] }),
    });
    const client = await db.pool.connect();
    try {
      await wrapped(client, 8, 3);
      expect(client.getTransactionStatus()).toBe('I');
    } finally {
      client.release();
    }
    expect([await balance(8), await eventsOf(8)]).toEqual([103, 1]);
  });
});

describe('knex transactions', () => {
  const knex = () => knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 4 } });
  let k: ReturnType<typeof knexFactory>;
  beforeAll(() => {
    k = knex();
  });
  afterAll(async () => {
    await k.destroy();
  });

  test("append inside the caller's knex transaction commits with it", async () => {
    await k.transaction(async (trx) => {
      await trx('accounts').where({ id: 10 }).increment('balance', 4);
      await hs.append(trx, { aggregateType: 'account', aggregateId: 10, events: [{ type: 'account.credited', payload: { amount: 4 } }] });
    });
    expect([await balance(10), await eventsOf(10)]).toEqual([104, 1]);
  });

  test('a knex transaction that rolls back takes the event with it', async () => {
    await expect(
      k.transaction(async (trx) => {
        await trx('accounts').where({ id: 11 }).increment('balance', 4);
        await hs.append(trx, { aggregateType: 'account', aggregateId: 11, events: [{ type: 'account.credited', payload: { amount: 4 } }] });
        throw new Error('rollback please');
      }),
    ).rejects.toThrow('rollback please');
    expect([await balance(11), await eventsOf(11)]).toEqual([100, 0]);
  });

  test('the wrapper and the transaction helper take a knex instance', async () => {
    const wrapped = hs.wrap(async (trx: ReturnType<typeof knexFactory>, id: number, amount: number) => {
      await trx('accounts').where({ id }).increment('balance', amount);
      return amount;
    }, {
      events: (_r, id, amount) => ({ aggregateType: 'account', aggregateId: id, events: [{ type: 'account.credited', payload: { amount } }] }),
    });
    await wrapped(k, 12, 6);
    await expect(
      hs.transaction(k, async (tx) => {
        await (tx.db as ReturnType<typeof knexFactory>)('accounts').where({ id: 13 }).increment('balance', 6);
        await tx.record('account', 13, 'account.credited', { amount: 6 });
        throw new Error('undo');
      }),
    ).rejects.toThrow('undo');
    expect([await balance(12), await eventsOf(12)]).toEqual([106, 1]);
    expect([await balance(13), await eventsOf(13)]).toEqual([100, 0]);
  });
});

test('nothing was written by any failed case above', async () => {
  expect(await countEvents(db.pool)).toBe(5);
});

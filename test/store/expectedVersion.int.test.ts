import { beforeAll, describe, expect, test } from 'vitest';
import { isConcurrencyError, isValidationError, type ConcurrencyError } from '../../src/errors.js';
import type { Hindsight } from '../../src/hindsight.js';
import { retryOnConflict } from '../../src/capture/retry.js';
import { useTestDatabase } from '../helpers/database.js';
import { countEvents, prepareStore } from '../helpers/fixtures.js';

const db = useTestDatabase(import.meta.url);
let hs: Hindsight;
beforeAll(async () => {
  hs = await prepareStore(db);
});

const credit = (id: number, expectedVersion?: number | 'any' | 'none' | 'exists', n = 1) =>
  hs.append(db.pool, {
    aggregateType: 'account',
    aggregateId: id,
    expectedVersion,
    events: Array.from({ length: n }, () => ({ type: 'account.credited', payload: { amount: 1 } })),
  });

async function conflictOf(promise: Promise<unknown>): Promise<ConcurrencyError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isConcurrencyError(error)) throw new Error(`expected a ConcurrencyError, got ${String(error)}`);
  return error;
}

describe('expected versions are enforced by the database', () => {
  test('"none": the first append creates the aggregate, a second one conflicts', async () => {
    expect((await credit(100, 'none', 2)).sequences).toEqual([1, 2]);
    const conflict = await conflictOf(credit(100, 'none'));
    expect([conflict.expected, conflict.actual]).toEqual(['none', 2]);
    expect(conflict.aggregateId).toBe('100');
  });

  test('0 means the same as "none"', async () => {
    expect((await credit(101, 0)).version).toBe(1);
    const conflict = await conflictOf(credit(101, 0));
    expect(conflict.actual).toBe(1);
  });

  test('"exists": refused for a new aggregate, accepted after its first event', async () => {
    const conflict = await conflictOf(credit(102, 'exists'));
    expect([conflict.expected, conflict.actual]).toEqual(['exists', 0]);
    await credit(102, 'none');
    expect((await credit(102, 'exists')).sequences).toEqual([2]);
  });

  test('an exact version: accepted when current, refused with expected and actual when stale or ahead', async () => {
    await credit(103, 'none', 3);
    expect((await credit(103, 3)).sequences).toEqual([4]);
    const stale = await conflictOf(credit(103, 3));
    expect([stale.expected, stale.actual]).toEqual([3, 4]);
    const ahead = await conflictOf(credit(103, 9));
    expect([ahead.expected, ahead.actual]).toEqual([9, 4]);
    const missing = await conflictOf(credit(104, 5));
    expect([missing.expected, missing.actual]).toEqual([5, 0]);
  });

  test('"any" (the default) appends whatever the version', async () => {
    expect((await credit(105)).sequences).toEqual([1]);
    expect((await credit(105, 'any', 2)).sequences).toEqual([2, 3]);
  });

  test('a refused append writes nothing and leaves the transaction usable', async () => {
    const before = await countEvents(db.pool);
    await hs.transaction(db.pool, async (tx) => {
      await credit(106, 'none');
      await expect(tx.append({ aggregateType: 'account', aggregateId: 106, expectedVersion: 'none', events: [{ type: 'account.credited', payload: { amount: 1 } }] })).rejects.toSatisfy(isConcurrencyError);
      await tx.append({ aggregateType: 'account', aggregateId: 106, expectedVersion: 1, events: [{ type: 'account.credited', payload: { amount: 1 } }] });
    });
    expect(await countEvents(db.pool)).toBe(before + 2);
  });

  test('bad expected versions are refused before anything is sent', async () => {
    for (const bad of [-1, 1.5, 'latest', null]) {
      const error = await credit(107, bad as never).catch((e: unknown) => e);
      expect(isValidationError(error)).toBe(true);
    }
  });

  test('many events are one append: all or nothing, contiguous, with every expectation', async () => {
    const result = await credit(108, 'none', 50);
    expect(result.sequences).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(new Set(result.eventIds).size).toBe(50);
    expect((await credit(108, 50, 3)).sequences).toEqual([51, 52, 53]);
    expect((await credit(108, 'exists', 2)).sequences).toEqual([54, 55]);
    expect((await credit(108, 'any', 2)).sequences).toEqual([56, 57]);
    const stale = await conflictOf(credit(108, 50, 3));
    expect([stale.expected, stale.actual]).toEqual([50, 57]);
    const exists = await conflictOf(credit(109, 'exists', 2));
    expect([exists.expected, exists.actual]).toEqual(['exists', 0]);
    expect(await hs.version(db.pool, 'account', 108)).toBe(57);
    expect((await hs.audit(db.pool, { aggregateType: 'account', aggregateId: 108 })).problems).toEqual([]);
  });
});

describe('REPEATABLE READ and SERIALIZABLE callers', () => {
  for (const level of ['repeatable read', 'serializable'] as const) {
    test(`${level}: a concurrent append surfaces as the same retryable ConcurrencyError, and a retry succeeds`, async () => {
      const id = level === 'serializable' ? 201 : 200;
      await credit(id, 'none');
      const reader = await db.pool.connect();
      try {
        await reader.query(`BEGIN ISOLATION LEVEL ${level.toUpperCase()}`);
        const version = await hs.version(reader, 'account', id); // the snapshot is taken here
        await credit(id, version); // another transaction appends and commits
        const stale = await hs
          .append(reader, { aggregateType: 'account', aggregateId: id, expectedVersion: version, events: [{ type: 'account.credited', payload: { amount: 1 } }] })
          .catch((e: unknown) => e);
        expect(isConcurrencyError(stale)).toBe(true);
        await reader.query('ROLLBACK');

        await reader.query(`BEGIN ISOLATION LEVEL ${level.toUpperCase()}`);
        await hs.version(reader, 'account', id);
        await credit(id, 'any'); // snapshot-current expected version "any" still hits the concurrent update
        const raced = await hs
          .append(reader, { aggregateType: 'account', aggregateId: id, events: [{ type: 'account.credited', payload: { amount: 1 } }] })
          .catch((e: unknown) => e);
        expect(isConcurrencyError(raced)).toBe(true);
        expect((raced as ConcurrencyError).actual).toBeUndefined();
        expect((raced as ConcurrencyError).message).toContain('serialization failure');
        await reader.query('ROLLBACK');
      } finally {
        reader.release();
      }
      let attempts = 0;
      await retryOnConflict(() =>
        hs.transaction(
          db.pool,
          async (tx) => {
            attempts += 1;
            const v = await hs.version(tx.db, 'account', id);
            if (attempts === 1) await credit(id); // lose the first attempt on purpose
            await tx.append({ aggregateType: 'account', aggregateId: id, expectedVersion: v, events: [{ type: 'account.credited', payload: { amount: 1 } }] });
          },
          { isolationLevel: level },
        ),
      );
      expect(attempts).toBe(2);
    });
  }
});

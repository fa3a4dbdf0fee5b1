import { beforeAll, describe, expect, test } from 'vitest';
import { createHindsight, type Hindsight } from '../../src/hindsight.js';
import { isValidationError } from '../../src/errors.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, testConfig } from '../helpers/fixtures.js';

const db = useTestDatabase(import.meta.url);
let hs: Hindsight;
beforeAll(async () => {
  hs = await prepareStore(db);
});

const credit = { type: 'account.credited', payload: { amount: 1 } };

async function metadataOf(eventId: string) {
  const { rows } = await db.pool.query(`SELECT metadata FROM hindsight.events WHERE event_id = $1`, [eventId]);
  return rows[0].metadata as Record<string, unknown>;
}

describe('transaction context becomes event metadata', () => {
  test('actor, reason, correlation, causation and request ids, and anything else, on every event of the context', async () => {
    const result = await hs.withContext({ actor: 'alice', reason: 'refund', correlationId: 'corr-1', requestId: 'req-9', tenant: 'acme' }, () =>
      hs.withContext({ causationId: 'evt-0' }, () =>
        hs.transaction(db.pool, async (tx) => {
          const first = await tx.record('account', 1, 'account.credited', { amount: 1 });
          // work that continues after an await keeps the context
          await new Promise((resolve) => setTimeout(resolve, 5));
          const second = await tx.append({ aggregateType: 'account', aggregateId: 2, events: [credit] });
          return [first.eventIds[0]!, second.eventIds[0]!];
        }),
      ),
    );
    for (const id of result) {
      expect(await metadataOf(id)).toEqual({ actor: 'alice', reason: 'refund', correlation_id: 'corr-1', causation_id: 'evt-0', request_id: 'req-9', tenant: 'acme' });
    }
  });

  test('the transaction options and per-event metadata win over the surrounding context', async () => {
    const ids = await hs.withContext({ actor: 'alice', reason: 'outer' }, () =>
      hs.transaction(
        db.pool,
        async (tx) => (await tx.append({ aggregateType: 'account', aggregateId: 3, events: [credit, { ...credit, metadata: { reason: 'per event' } }] })).eventIds,
        { context: { actor: 'batch-job' } },
      ),
    );
    expect(await metadataOf(ids[0]!)).toEqual({ actor: 'batch-job', reason: 'outer' });
    expect(await metadataOf(ids[1]!)).toEqual({ actor: 'batch-job', reason: 'per event' });
  });

  test('concurrent requests keep their own context', async () => {
    const ids = await Promise.all(
      ['u1', 'u2', 'u3'].map((actor, i) =>
        hs.withContext({ actor }, async () => {
          await new Promise((resolve) => setTimeout(resolve, 10 - i * 3));
          return (await hs.append(db.pool, { aggregateType: 'account', aggregateId: 10 + i, events: [credit] })).eventIds[0]!;
        }),
      ),
    );
    expect(await Promise.all(ids.map(async (id) => (await metadataOf(id)).actor))).toEqual(['u1', 'u2', 'u3']);
  });

  test('the wrapper can derive context from the call arguments', async () => {
    const wrapped = hs.wrap(async (_db: unknown, id: number, by: string) => ({ id, by }), {
      events: (_r, id) => ({ aggregateType: 'account', aggregateId: id, events: [credit] }),
      context: (_id, by) => ({ actor: by, reason: 'wrapped call' }),
    });
    await wrapped(db.pool, 20, 'dora');
    const { rows } = await db.pool.query(`SELECT metadata FROM hindsight.events WHERE aggregate_id = '20'`);
    expect(rows[0].metadata).toEqual({ actor: 'dora', reason: 'wrapped call' });
  });
});

describe('a mandatory actor', () => {
  test('requireActor refuses events without one and writes nothing; with one, the append goes through', async () => {
    const strict = createHindsight(testConfig({ requireActor: true }));
    const error = await strict.append(db.pool, { aggregateType: 'account', aggregateId: 30, events: [credit] }).catch((e: unknown) => e);
    expect(isValidationError(error)).toBe(true);
    expect((error as Error).message).toMatch(/account requires an actor; set one with withContext/);
    expect(await strict.version(db.pool, 'account', 30)).toBe(0);
    const blank = await strict.withContext({ actor: '  ' }, () => strict.append(db.pool, { aggregateType: 'account', aggregateId: 30, events: [credit] })).catch((e: unknown) => e);
    expect(isValidationError(blank)).toBe(true);
    await strict.withContext({ actor: 'erin' }, () => strict.append(db.pool, { aggregateType: 'account', aggregateId: 30, events: [credit] }));
    expect(await strict.version(db.pool, 'account', 30)).toBe(1);
  });
});

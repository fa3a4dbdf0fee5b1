import { z } from 'zod';
import { beforeAll, describe, expect, test } from 'vitest';
import { defineEvent } from '../../src/events/defineEvent.js';
import { isValidationError } from '../../src/errors.js';
import { createHindsight, type Hindsight } from '../../src/hindsight.js';
import { defineProjector, type ProjectorDefinition } from '../../src/projection/defineProjector.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, testConfig } from '../helpers/fixtures.js';

const db = useTestDatabase(import.meta.url);
let hs: Hindsight;

beforeAll(async () => {
  hs = await prepareStore(db);
  // business times out of sequence order: the 4th event is back-dated to 3 February
  const times = ['2026-02-01T10:00:00Z', '2026-02-05T10:00:00.000001Z', '2026-02-10T10:00:00Z', '2026-02-03T10:00:00Z'];
  for (const [i, occurredAt] of times.entries()) {
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 1, events: [{ type: 'account.credited', payload: { amount: 10 ** i }, occurredAt }] });
  }
});

describe('as of a time', () => {
  test('before the first event the answer is "no history before", not the initial state', async () => {
    const result = await hs.project(db.pool, 'account', 1, { asOf: '2026-01-31T00:00:00Z' });
    expect(result).toMatchObject({ found: false, reason: 'no-history-before', latestVersion: 4 });
  });

  test('between events: the prefix up to the last event not after T', async () => {
    const result = await hs.project(db.pool, 'account', 1, { asOf: '2026-02-06T00:00:00+00:00' });
    expect(result).toMatchObject({ found: true, version: 2, state: { balance: 11 } });
  });

  test('a prefix, never a time filter: a back-dated later event is not pulled in', async () => {
    // event 4 occurred on 3 February, but event 3 (10 February) comes before it
    const result = await hs.project(db.pool, 'account', 1, { asOf: '2026-02-04T00:00:00Z' });
    expect(result).toMatchObject({ found: true, version: 1, state: { balance: 1 } });
  });

  test('to the microsecond: T equal to an event includes it, one microsecond earlier does not', async () => {
    expect(await hs.project(db.pool, 'account', 1, { asOf: '2026-02-05T10:00:00.000001Z' })).toMatchObject({ version: 2 });
    expect(await hs.project(db.pool, 'account', 1, { asOf: '2026-02-05T10:00:00Z' })).toMatchObject({ version: 1 });
    expect(await hs.project(db.pool, 'account', 1, { asOf: '2026-02-05T11:00:00.000001+01:00' })).toMatchObject({ version: 2 });
  });

  test('after the last event: the whole history', async () => {
    const result = await hs.project(db.pool, 'account', 1, { asOf: '2027-01-01T00:00:00Z' });
    expect(result).toMatchObject({ found: true, version: 4, state: { balance: 1111 } });
  });
});

describe('at a sequence, and now', () => {
  test('at sequence 1 and 3; now', async () => {
    expect(await hs.project(db.pool, 'account', 1, { atSequence: 1 })).toMatchObject({ version: 1, state: { balance: 1 } });
    expect(await hs.project(db.pool, 'account', 1, { atSequence: 3 })).toMatchObject({ version: 3, state: { balance: 111 } });
    expect(await hs.project(db.pool, 'account', 1)).toMatchObject({ version: 4, state: { balance: 1111 } });
  });

  test('a sequence past the end or below 1 is refused', async () => {
    expect(isValidationError(await hs.project(db.pool, 'account', 1, { atSequence: 5 }).catch((e: unknown) => e))).toBe(true);
    expect(isValidationError(await hs.project(db.pool, 'account', 1, { atSequence: 0 }).catch((e: unknown) => e))).toBe(true);
  });

  test('an aggregate with no events', async () => {
    expect(await hs.project(db.pool, 'account', 999)).toMatchObject({ found: false, reason: 'no-events' });
  });
});

describe('folding', () => {
  test('generic events fold through the column map: mapped columns become fields, a delete marks the aggregate', async () => {
    await hs.append(db.pool, {
      aggregateType: 'account',
      aggregateId: 2,
      events: [
        { type: 'accounts.imported', payload: { after: { id: '2', owner: 'Ada', balance: 500, internal_note: 'x' } } },
        { type: 'account.credited', payload: { amount: 5 } },
        { type: 'accounts.updated', payload: { before: { owner: 'Ada' }, after: { owner: 'Ada L.' } } },
      ],
    });
    expect(await hs.project(db.pool, 'account', 2, { atSequence: 2 })).toMatchObject({ state: { owner: 'Ada', balance: 505 } });
    const now = await hs.project(db.pool, 'account', 2);
    expect(now).toMatchObject({ found: true, deleted: false });
    // unmapped columns (internal_note, id) do not become fields
    expect(now.found && now.state).toEqual({ owner: 'Ada L.', balance: 505 });
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 2, events: [{ type: 'accounts.deleted', payload: { before: { id: '2' } } }] });
    expect(await hs.project(db.pool, 'account', 2)).toMatchObject({ deleted: true });
  });

  test('without a projector, the default fold alone projects a type', async () => {
    await hs.append(db.pool, { aggregateType: 'customer', aggregateId: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', events: [{ type: 'customers.inserted', payload: { after: { name: 'Grace' } } }] });
    expect(await hs.project(db.pool, 'customer', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11')).toMatchObject({ state: { name: 'Grace' } });
  });

  test('event types without a handler are skipped, unless the projector is strict', async () => {
    const Noted = defineEvent('account.noted', z.object({ note: z.string() }));
    const base = testConfig();
    const withNote = (strict: boolean) =>
      createHindsight({
        ...base,
        aggregates: base.aggregates!.map((a) =>
          a.type === 'account'
            ? {
                ...a,
                events: [...(a.events ?? []), Noted],
                projector: defineProjector({ aggregateType: 'account', initial: { balance: 0 }, strict, handlers: { 'account.credited': (s: { balance: number }, e) => ({ balance: s.balance + e.payload.amount }) } }),
              }
            : a,
        ),
      });
    await withNote(false).append(db.pool, { aggregateType: 'account', aggregateId: 3, events: [{ type: 'account.credited', payload: { amount: 2 } }, { type: 'account.noted', payload: { note: 'hi' } }] });
    expect(await withNote(false).project(db.pool, 'account', 3)).toMatchObject({ version: 2, state: { balance: 2 } });
    await expect(withNote(true).project(db.pool, 'account', 3)).rejects.toThrow(/strict and has no handler for account.noted/);
  });

  test('upcasters bring old payloads to the current shape; the stored event is not rewritten', async () => {
    const v1 = defineEvent('customer.renamed', z.object({ name: z.string() }));
    const v2 = defineEvent('customer.renamed', z.object({ first: z.string(), last: z.string() }), {
      version: 2,
      upcasters: { 1: (p) => { const [first = '', ...rest] = String((p as { name: string }).name).split(' '); return { first, last: rest.join(' ') }; } },
    });
    const configWith = (event: typeof v1 | typeof v2, projector?: ProjectorDefinition<any>) => {
      const base = testConfig();
      return createHindsight({ ...base, aggregates: base.aggregates!.map((a) => (a.type === 'customer' ? { ...a, events: [event], projector } : a)) });
    };
    const id = 'b1eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';
    await configWith(v1).append(db.pool, { aggregateType: 'customer', aggregateId: id, events: [{ type: 'customer.renamed', payload: { name: 'Grace Brewster Hopper' } }] });
    const current = configWith(v2, defineProjector({ aggregateType: 'customer', initial: {}, handlers: { 'customer.renamed': (_s, e) => ({ ...e.payload }) } }));
    expect(await current.project(db.pool, 'customer', id)).toMatchObject({ state: { first: 'Grace', last: 'Brewster Hopper' } });
    const [stored] = await current.readAggregate(db.pool, 'customer', id);
    expect(stored).toMatchObject({ schemaVersion: 1, payload: { name: 'Grace Brewster Hopper' } });
  });
});

describe('history', () => {
  test('the ledger lists the events that occurred in the range, with who, why and the fields they changed', async () => {
    await hs.withContext({ actor: 'alice', reason: 'refund' }, () =>
      hs.append(db.pool, { aggregateType: 'account', aggregateId: 4, events: [{ type: 'account.credited', payload: { amount: 50 }, occurredAt: '2026-02-03T09:00:00Z' }] }),
    );
    await hs.withContext({ actor: 'bob', reason: 'fee', correlationId: 'c-1' }, () =>
      hs.append(db.pool, { aggregateType: 'account', aggregateId: 4, events: [{ type: 'account.debited', payload: { amount: 20 }, occurredAt: '2026-02-17T23:59:59.999999Z' }] }),
    );
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 4, events: [{ type: 'account.debited', payload: { amount: 5 }, occurredAt: '2026-02-18T00:00:00Z', metadata: { actor: 'carol' } }] });

    const ledger = await hs.history(db.pool, 'account', 4, { from: '2026-02-03T00:00:00Z', to: '2026-02-18T00:00:00Z' });
    expect(ledger.entries.map((e) => [e.event.sequence, e.event.metadata.actor, e.event.metadata.reason, e.changes])).toEqual([
      [1, 'alice', 'refund', [{ field: 'balance', from: 0, to: 50 }]],
      [2, 'bob', 'fee', [{ field: 'balance', from: 50, to: 30 }]],
    ]);
    expect(ledger.entries[1]!.event.metadata.correlation_id).toBe('c-1');
    expect(ledger.entries[1]!.event.occurredAt).toBe('2026-02-17T23:59:59.999999Z');
    expect(ledger.version).toBe(3);

    const later = await hs.history(db.pool, 'account', 4, { from: '2026-02-10T00:00:00Z' });
    expect(later.entries.map((e) => e.changes)).toEqual([[{ field: 'balance', from: 50, to: 30 }], [{ field: 'balance', from: 30, to: 25 }]]);
  });
});

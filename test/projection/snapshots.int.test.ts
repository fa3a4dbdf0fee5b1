import fc from 'fast-check';
import { z } from 'zod';
import { beforeAll, describe, expect, test } from 'vitest';
import { defineEvent } from '../../src/events/defineEvent.js';
import { createHindsight, type Hindsight } from '../../src/hindsight.js';
import { defineProjector } from '../../src/projection/defineProjector.js';
import { useTestDatabase } from '../helpers/database.js';
import { runCli, scratchDir, writeTestConfig } from '../helpers/cli.js';
import { prepareStore, testConfig } from '../helpers/fixtures.js';

const db = useTestDatabase(import.meta.url);
let hs: Hindsight;

const time = (i: number) => new Date(Date.UTC(2026, 1, 1) + i * 3_600_000); // one event an hour from 1 February

beforeAll(async () => {
  hs = await prepareStore(db);
  for (let i = 0; i < 100; i += 10) {
    await hs.append(db.pool, {
      aggregateType: 'account',
      aggregateId: 1,
      events: Array.from({ length: 10 }, (_, k) => ({ type: 'account.credited', payload: { amount: i + k + 1 }, occurredAt: time(i + k) })),
    });
  }
});

const cold = async (at: { atSequence?: number; asOf?: Date } = {}) => hs.project(db.pool, 'account', 1, { ...at, snapshots: false });

describe('snapshots', () => {
  test('projecting starts from the latest snapshot and replays only what follows; the result equals the cold fold', async () => {
    expect(await hs.project(db.pool, 'account', 1)).toMatchObject({ fromSnapshot: null, version: 100 });
    await hs.snapshot(db.pool, 'account', { aggregateId: 1 });
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 1, events: [{ type: 'account.credited', payload: { amount: 7 } }] });
    const warm = await hs.project(db.pool, 'account', 1);
    expect(warm).toMatchObject({ fromSnapshot: 100, version: 101 });
    const coldNow = await cold();
    expect(warm.found && warm.state).toStrictEqual(coldNow.found && coldNow.state);
  });

  test('at a sequence or as of a time, only a snapshot at or before that point is used', async () => {
    // snapshots at 100 (above); add one at 40
    const at40 = await cold({ atSequence: 40 });
    if (!at40.found) throw new Error('expected a projection');
    await db.pool.query(
      `INSERT INTO hindsight.snapshots (aggregate_type, aggregate_id, projector_version, sequence, state)
       SELECT 'account', '1', $1, 40, to_jsonb($2::text)`,
      [hs.config.aggregates.get('account')!.projectionVersion, JSON.stringify(at40.state)],
    );
    expect(await hs.project(db.pool, 'account', 1, { atSequence: 30 })).toMatchObject({ fromSnapshot: null, version: 30 });
    expect(await hs.project(db.pool, 'account', 1, { atSequence: 70 })).toMatchObject({ fromSnapshot: 40, version: 70 });
    const asOf = time(55); // the prefix ends at sequence 56
    const viaSnapshot = await hs.project(db.pool, 'account', 1, { asOf });
    expect(viaSnapshot).toMatchObject({ fromSnapshot: 40, version: 56 });
    expect(viaSnapshot).toEqual({ ...(await cold({ asOf })), fromSnapshot: 40 });
    expect(await hs.project(db.pool, 'account', 1, { asOf: time(20) })).toMatchObject({ fromSnapshot: null, version: 21 });
  });

  test('a changed projector version never uses an older version\'s snapshot', async () => {
    const base = testConfig();
    const v2 = createHindsight({
      ...base,
      aggregates: base.aggregates!.map((a) =>
        a.type === 'account'
          ? {
              ...a,
              projector: defineProjector({
                aggregateType: 'account',
                version: 2,
                initial: { balance: 0, credits: 0 },
                handlers: { 'account.credited': (s: { balance: number; credits: number }, e) => ({ balance: s.balance + e.payload.amount, credits: s.credits + 1 }) },
              }),
            }
          : a,
      ),
    });
    const projected = await v2.project(db.pool, 'account', 1);
    expect(projected).toMatchObject({ fromSnapshot: null, version: 101, state: { credits: 101 } });
  });

  test('a changed column map is a different projection version too', () => {
    const base = testConfig();
    const remapped = createHindsight({ ...base, aggregates: base.aggregates!.map((a) => (a.type === 'account' ? { ...a, columns: { balance: 'amount' } } : a)) });
    expect(remapped.config.aggregates.get('account')!.projectionVersion).not.toBe(hs.config.aggregates.get('account')!.projectionVersion);
  });

  test('the snapshot command writes one per aggregate of a type, skipping those already current', async () => {
    for (const id of [2, 3, 4]) await hs.append(db.pool, { aggregateType: 'account', aggregateId: id, events: [{ type: 'account.credited', payload: { amount: id } }] });
    const cwd = await scratchDir('snapshot');
    await writeTestConfig(cwd);
    const first = await runCli(['snapshot', 'account', '--database-url', db.url, '--json'], { cwd });
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ aggregates: 4, written: 4 });
    const again = await runCli(['snapshot', 'account', '--database-url', db.url, '--json'], { cwd });
    expect(JSON.parse(again.stdout)).toMatchObject({ aggregates: 4, written: 0 });
  });
});

describe('a state restored from a snapshot deep-equals the cold fold', () => {
  const Recorded = defineEvent('ledger.recorded', z.object({ key: z.string(), value: z.json() }));
  // A projector whose state holds what JSON cannot: Dates, bigints, Maps, Sets, nested.
  interface Ledger {
    total: bigint;
    last: Date | null;
    seen: Set<string>;
    byKey: Map<string, unknown>;
    nested: { history: Array<{ at: Date; value: unknown }> };
  }
  const projector = defineProjector<Ledger>({
    aggregateType: 'ledger-line',
    initial: () => ({ total: 0n, last: null, seen: new Set(), byKey: new Map(), nested: { history: [] } }),
    handlers: {
      'ledger.recorded': (s, e) => ({
        total: s.total + BigInt(e.payload.key.length) * 10n ** 20n,
        last: new Date(e.occurredAt),
        seen: new Set([...s.seen, e.payload.key]),
        byKey: new Map([...s.byKey, [e.payload.key, e.payload.value]]),
        nested: { history: [...s.nested.history, { at: new Date(e.occurredAt), value: e.payload.value }] },
      }),
    },
  });

  test('for generated histories (property, stored in PostgreSQL and read back)', async () => {
    const base = testConfig();
    const ledger = createHindsight({
      ...base,
      aggregates: base.aggregates!.map((a) => (a.type === 'ledger-line' ? { ...a, events: [Recorded], projector } : a)),
    });
    const history = fc.array(fc.record({ key: fc.string({ maxLength: 8 }), value: fc.jsonValue({ maxDepth: 2 }) }), { minLength: 1, maxLength: 12 });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(history, async (entries) => {
        const id = ['p', ++n];
        await ledger.append(db.pool, { aggregateType: 'ledger-line', aggregateId: id, events: entries.map((payload) => ({ type: 'ledger.recorded', payload })) });
        await ledger.snapshot(db.pool, 'ledger-line', { aggregateId: id });
        const restored = await ledger.project(db.pool, 'ledger-line', id);
        const coldNow = await ledger.project(db.pool, 'ledger-line', id, { snapshots: false });
        expect(restored).toMatchObject({ fromSnapshot: entries.length });
        expect(restored.found && restored.state).toStrictEqual(coldNow.found && coldNow.state);
      }),
      { numRuns: 40 },
    );
  });
});

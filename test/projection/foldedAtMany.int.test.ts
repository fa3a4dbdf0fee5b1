import { beforeAll, describe, expect, test } from 'vitest';
import { byCanonicalId } from '../../src/db/canonicalKey.js';
import { toSql } from '../../src/db/queryable.js';
import { defineProjector } from '../../src/projection/defineProjector.js';
import { foldedAtMany, type FoldTarget } from '../../src/projection/foldedAtMany.js';
import { initialFold, type Folded } from '../../src/projection/fold.js';
import { project } from '../../src/projection/project.js';
import { writeSnapshots } from '../../src/projection/snapshots.js';
import type { Hindsight } from '../../src/hindsight.js';
import { storeTables } from '../../src/store/tables.js';
import { useTestDatabase } from '../helpers/database.js';
import { AccountCredited, AccountDebited, prepareStore, testConfig } from '../helpers/fixtures.js';

// The updater folds the aggregates its cache does not hold all together; each must come
// out exactly as folding it alone would: from its own latest usable snapshot, with its own
// events, in order. The projector records which events it saw in which order, so a
// misassigned, reordered or missing event, or a snapshot past the target, shows.

const db = useTestDatabase(import.meta.url);
const tables = storeTables('hindsight');
let hs: Hindsight;

const trailProjector = defineProjector<{ balance: number; trail: string }>({
  aggregateType: 'account',
  initial: { balance: 0, trail: '' },
  handlers: {
    'account.credited': (s, e) => ({ balance: s.balance + e.payload.amount, trail: `${s.trail}+${e.sequence}` }),
    'account.debited': (s, e) => ({ balance: s.balance - e.payload.amount, trail: `${s.trail}-${e.sequence}` }),
  },
});

const config = testConfig({
  aggregates: [
    { type: 'account', table: 'accounts', key: { column: 'id', type: 'bigint' }, events: [AccountCredited, AccountDebited], projector: trailProjector },
  ],
});

async function appendEvents(id: number, count: number): Promise<void> {
  for (let done = 0; done < count; done += 500) {
    const events = Array.from({ length: Math.min(500, count - done) }, (_, k) =>
      (done + k) % 3 === 2 ? { type: 'account.debited', payload: { amount: id } } : { type: 'account.credited', payload: { amount: done + k + 1 } },
    );
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: id, events });
  }
}

/** One aggregate folded alone, through the ordinary projection (its latest usable snapshot, then its events). */
async function foldedAlone(id: string, sequence: number): Promise<Folded> {
  const aggregate = hs.config.aggregates.get('account')!;
  if (sequence === 0) return initialFold(aggregate);
  const projection = await project(toSql(db.pool), tables, aggregate, byCanonicalId(id), { atSequence: sequence });
  if (!projection.found) throw new Error(`account ${id} has no events`);
  return { state: projection.state, version: projection.version, deleted: projection.deleted };
}

beforeAll(async () => {
  hs = await prepareStore(db, config);
  await appendEvents(1, 1_200); // a stretch long enough to be streamed on its own
  await appendEvents(2, 30);
  await appendEvents(3, 30);
  // 2,000 short histories: more events than one grouped read takes
  const ids = Array.from({ length: 2_000 }, (_, i) => 10 + i);
  for (let i = 0; i < ids.length; i += 8) await Promise.all(ids.slice(i, i + 8).map((id) => appendEvents(id, 3)));
  const aggregate = hs.config.aggregates.get('account')!;
  const sql = toSql(db.pool);
  const at = async (id: number, sequence: number) => ({ aggregateId: String(id), folded: await foldedAlone(String(id), sequence) });
  await writeSnapshots(sql, tables, aggregate, [await at(2, 10), await at(2, 25), await at(3, 25), await at(15, 2)]);
}, 120_000);

describe('folding many aggregates at once', () => {
  test('each state equals folding that aggregate alone: snapshots at or before the target only, long stretches, many groups, the initial state', async () => {
    const aggregate = hs.config.aggregates.get('account')!;
    const sql = toSql(db.pool);
    const targets: FoldTarget[] = [
      { aggregateId: '1', sequence: 1_150 },
      { aggregateId: '2', sequence: 20 }, // from the snapshot at 10, not the one at 25
      { aggregateId: '3', sequence: 25 }, // exactly a snapshot: nothing to read
      { aggregateId: '4', sequence: 0 }, // nothing folded yet
      // account 15 at 1: its snapshot at 2 is past the target
      ...Array.from({ length: 2_000 }, (_, i) => ({ aggregateId: String(10 + i), sequence: 10 + i === 15 ? 1 : 3 })),
    ];
    const many = await foldedAtMany(sql, tables, aggregate, targets);
    expect(many.size).toBe(targets.length);
    for (const target of targets) {
      const alone = await foldedAlone(target.aggregateId, target.sequence);
      expect(many.get(target.aggregateId), `account ${target.aggregateId} at ${target.sequence}`).toStrictEqual(alone);
    }
    expect(many.get('1')!.state.trail.split(/[+-]/).length - 1).toBe(1_150);
    expect(many.get('2')!.state.trail).toBe(`${(await foldedAlone('2', 10)).state.trail}+11-12+13+14-15+16+17-18+19+20`);
  });

  test('a target past the stored events is an error, not a shorter state', async () => {
    const aggregate = hs.config.aggregates.get('account')!;
    await expect(foldedAtMany(toSql(db.pool), tables, aggregate, [{ aggregateId: '2', sequence: 31 }])).rejects.toThrow(/no contiguous events up to 31/);
  });
});

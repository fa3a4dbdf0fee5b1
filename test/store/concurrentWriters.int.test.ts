import { beforeAll, expect, test } from 'vitest';
import { retryOnConflict } from '../../src/capture/retry.js';
import { isConcurrencyError, type ConcurrencyError } from '../../src/errors.js';
import type { Hindsight } from '../../src/hindsight.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore } from '../helpers/fixtures.js';

const db = useTestDatabase(import.meta.url);
let hs: Hindsight;

beforeAll(async () => {
  hs = await prepareStore(db);
});

const WRITERS = 8;
const EVENTS_PER_WRITER = 1000;

test(`${WRITERS} writers with exact expected versions and retries leave sequences 1..${WRITERS * EVENTS_PER_WRITER} on one aggregate`, async () => {
  const conflicts: ConcurrencyError[] = [];
  const other: unknown[] = [];
  const writer = async (w: number) => {
    for (let i = 0; i < EVENTS_PER_WRITER; i++) {
      await retryOnConflict(
        () =>
          hs.transaction(db.pool, async (tx) => {
            // read, decide, append: the classic race the expected version must catch
            const version = await hs.version(tx.db, 'account', 1);
            await tx.append({
              aggregateType: 'account',
              aggregateId: 1,
              expectedVersion: version,
              events: [{ type: 'account.credited', payload: { amount: w * 100_000 + i + 1 } }],
            });
          }),
        {
          attempts: 10_000,
          backoffMs: 1,
          maxBackoffMs: 20,
          onRetry: (error) => (isConcurrencyError(error) ? conflicts.push(error) : other.push(error)),
        },
      );
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));

  const { rows } = await db.pool.query<{ sequence: string; amount: string }>(
    `SELECT e.sequence::text AS sequence, e.payload->>'amount' AS amount FROM hindsight.events e
     WHERE e.aggregate_type = 'account' AND e.aggregate_id = '1' ORDER BY e.sequence`,
  );
  const total = WRITERS * EVENTS_PER_WRITER;
  expect(rows.map((r) => Number(r.sequence))).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  // every writer's every event exactly once, in that writer's order
  const amounts = rows.map((r) => Number(r.amount));
  expect(new Set(amounts).size).toBe(total);
  for (let w = 0; w < WRITERS; w++) {
    const mine = amounts.filter((a) => Math.floor(a / 100_000) === w);
    expect(mine).toEqual(Array.from({ length: EVENTS_PER_WRITER }, (_, i) => w * 100_000 + i + 1));
  }
  expect(await hs.version(db.pool, 'account', 1)).toBe(total);

  // conflicts really happened, and each surfaced as the typed error naming both versions
  expect(other).toEqual([]);
  expect(conflicts.length).toBeGreaterThan(WRITERS);
  for (const conflict of conflicts) {
    expect(typeof conflict.expected).toBe('number');
    expect(conflict.actual).toBeGreaterThan(conflict.expected as number);
    expect(conflict.message).toContain(`expected version ${String(conflict.expected)}`);
  }
  const report = await hs.audit(db.pool, { aggregateType: 'account' });
  expect(report.problems).toEqual([]);
});

import { beforeAll, describe, expect, test } from 'vitest';
import type { Hindsight } from '../../src/hindsight.js';
import { newEventId } from '../../src/store/eventId.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore } from '../helpers/fixtures.js';

const db = useTestDatabase(import.meta.url);
let hs: Hindsight;

beforeAll(async () => {
  hs = await prepareStore(db);
});

/** The millisecond time a UUIDv7 carries in its first 48 bits. */
const millisecondsOf = (id: string) => Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16);

describe('event ids are time-ordered UUIDv7s', () => {
  test('ids made one after another sort one after another, even within one millisecond', () => {
    const ids = Array.from({ length: 5_000 }, () => newEventId());
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  test('appends store v7 ids carrying the append time, in the order of the log', async () => {
    const before = Date.now();
    for (let id = 1; id <= 20; id++) {
      await hs.append(db.pool, {
        aggregateType: 'account',
        aggregateId: id % 4,
        events: [{ type: 'account.credited', payload: { amount: id } }, { type: 'account.credited', payload: { amount: 1 } }],
      });
    }
    const after = Date.now();
    const { rows } = await db.pool.query<{ id: string; version: string }>(
      `SELECT event_id::text AS id, substr(event_id::text, 15, 1) AS version FROM hindsight.events WHERE aggregate_id <> '99' ORDER BY global_position`,
    );
    expect(rows).toHaveLength(40);
    expect(rows.every((row) => row.version === '7')).toBe(true);
    const ids = rows.map((row) => row.id);
    expect([...ids].sort()).toEqual(ids);
    expect(millisecondsOf(ids[0]!)).toBeGreaterThanOrEqual(before);
    expect(millisecondsOf(ids.at(-1)!)).toBeLessThanOrEqual(after);
  });

  test('an id the caller supplies is kept as given, whatever its version', async () => {
    const given = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 99, events: [{ type: 'account.credited', payload: { amount: 1 }, eventId: given }] });
    const { rows } = await db.pool.query(`SELECT event_id::text AS id FROM hindsight.events WHERE aggregate_id = '99'`);
    expect(rows).toEqual([{ id: given }]);
  });
});

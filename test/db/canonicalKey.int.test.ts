import { z } from 'zod';
import { beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { canonicalKeySql } from '../../src/db/canonicalKey.js';
import { defineEvent } from '../../src/events/defineEvent.js';
import { createHindsight, type Hindsight } from '../../src/hindsight.js';
import { migrate } from '../../src/store/migrate.js';
import type { AggregateIdInput } from '../../src/types.js';
import { useTestDatabase } from '../helpers/database.js';

const db = useTestDatabase(import.meta.url);
const touched = defineEvent('thing.touched', z.object({}));
const types: Record<string, string> = {
  k_int: 'integer',
  k_big: 'bigint',
  k_uuid: 'uuid',
  k_num: 'numeric(12,2)',
  k_text: 'text',
  k_varchar: 'varchar(40)',
};
const config = resolveConfig({
  aggregates: [
    ...Object.entries(types).map(([table, type]) => ({ type: table, table, key: { column: 'id', type }, events: [touched] })),
    {
      type: 'k_comp',
      table: 'k_comp',
      key: [
        { column: 'region', type: 'text' },
        { column: 'n', type: 'integer' },
      ],
      events: [touched],
    },
  ],
});
let hs: Hindsight;

beforeAll(async () => {
  await migrate({ connectionString: db.url });
  for (const [table, type] of Object.entries(types)) await db.pool.query(`CREATE TABLE ${table} (id ${type} PRIMARY KEY)`);
  await db.pool.query(`CREATE TABLE k_comp (region text, n integer, PRIMARY KEY (region, n))`);
  hs = createHindsight(config);
});

/** The key as the app's append stores it, as a lookup computes it, and as a reader of the legacy row computes it. */
async function keysFromEveryPath(type: string, inputs: AggregateIdInput[]): Promise<string[]> {
  const aggregate = config.aggregates.get(type)!;
  const keys: string[] = [];
  for (const input of inputs) {
    const appended = await hs.append(db.pool, { aggregateType: type, aggregateId: input, events: [{ type: 'thing.touched', payload: {} }] });
    const { rows } = await db.pool.query<{ aggregate_id: string }>(`SELECT aggregate_id FROM hindsight.events WHERE event_id = $1`, [appended.eventIds[0]]);
    keys.push(appended.aggregateId, rows[0]!.aggregate_id, await hs.canonicalId(db.pool, type, input));
  }
  // the column path: what the listener, the backfill and the verifier compute from a legacy row
  const columns = aggregate.key.map((k) => `t.${k.quoted}`);
  const values = (Array.isArray(inputs[0]) ? inputs[0] : [inputs[0]]) as unknown[];
  const placeholders = aggregate.key.map((k, i) => `$${i + 1}::text::${k.type.sql}`).join(', ');
  await db.pool.query(`INSERT INTO ${aggregate.table.quoted} VALUES (${placeholders}) ON CONFLICT DO NOTHING`, values.map(String));
  const where = aggregate.key.map((k, i) => `t.${k.quoted} = $${i + 1}::text::${k.type.sql}`).join(' AND ');
  const { rows } = await db.pool.query<{ key: string }>(
    `SELECT ${canonicalKeySql(aggregate.key, columns)} AS key FROM ${aggregate.table.quoted} t WHERE ${where}`,
    values.map(String),
  );
  keys.push(rows[0]!.key);
  return keys;
}

function expectAllBytes(keys: string[], expected: string) {
  for (const key of keys) expect(Buffer.from(key, 'utf8').equals(Buffer.from(expected, 'utf8'))).toBe(true);
}

describe('canonical keys are byte-identical from every path', () => {
  test('integer: number, string, bigint, a plus sign and leading zeros are one key', async () => {
    expectAllBytes(await keysFromEveryPath('k_int', [42, '42', 42n, '+42', '0042']), '42');
  });

  test('bigint: the largest value, from a string and a bigint', async () => {
    expectAllBytes(await keysFromEveryPath('k_big', ['9223372036854775807', 9223372036854775807n]), '9223372036854775807');
  });

  test('uuid: upper case, lower case and braces give the lower-case form', async () => {
    expectAllBytes(
      await keysFromEveryPath('k_uuid', ['A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{a0eebc999c0b4ef8bb6d6bb9bd380a11}']),
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    );
  });

  test('numeric with a scale: 1, "1.0" and "1.00" are one key, printed at the column scale', async () => {
    expectAllBytes(await keysFromEveryPath('k_num', [1, '1.0', '1.00', '1']), '1.00');
  });

  test('text with quotes, backslashes and unicode is kept exactly', async () => {
    const name = `O'Brien "the \\ one" ✓ 𝄞 e\u0301`;
    expectAllBytes(await keysFromEveryPath('k_text', [name]), name);
    expectAllBytes(await keysFromEveryPath('k_varchar', [name]), name);
  });

  test('composite keys are exactly jsonb_build_array(k1::text, k2::text)::text', async () => {
    expectAllBytes(await keysFromEveryPath('k_comp', [['eu-west', 7], ['eu-west', '07']]), '["eu-west", "7"]');
    expectAllBytes(await keysFromEveryPath('k_comp', [[`a"b`, 1]]), '["a\\"b", "1"]');
  });

  test('different values stay different keys', async () => {
    const [upper] = await keysFromEveryPath('k_text', ['Key']);
    const [lower] = await keysFromEveryPath('k_text', ['key']);
    expect(upper).not.toBe(lower);
  });

  test('a key that does not fit its column is refused, not truncated or rounded into another row', async () => {
    await expect(hs.canonicalId(db.pool, 'k_varchar', 'x'.repeat(41))).rejects.toThrow(/at most 40 characters/);
    await expect(hs.canonicalId(db.pool, 'k_num', '12345678901.5')).rejects.toThrow(/at most 10 digits/);
    await expect(hs.canonicalId(db.pool, 'k_int', '2147483648')).rejects.toThrow(/integer from/);
    await expect(hs.canonicalId(db.pool, 'k_comp', ['eu'])).rejects.toThrow(/array of 2 key values/);
  });
});

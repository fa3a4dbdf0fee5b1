import type pg from 'pg';
import { beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig, type ResolvedConfig } from '../../src/config/resolve.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { createHindsight, type Hindsight } from '../../src/hindsight.js';
import { migrate } from '../../src/store/migrate.js';
import { verify } from '../../src/verify/run.js';
import { useTestDatabase } from '../helpers/database.js';

// What keeps the verifier from a false "clean": rows it was not shown, ids that match
// nothing, keys it cannot page by, and casts that would cut a value into a match.

const db = useTestDatabase(import.meta.url);

function codesConfig(table = 'codes'): ConfigInput {
  return { aggregates: [{ type: 'code', table, key: { column: 'id', type: 'integer' }, columns: { country: 'country' } }] };
}
let hs: Hindsight;
let config: ResolvedConfig;

/** A legacy row and its opening event (the default fold turns the image into state), in one transaction. */
async function add(id: number, country: string, eventCountry = country, table = 'codes'): Promise<void> {
  await hs.transaction(db.pool, async (tx) => {
    await (tx.db as pg.PoolClient).query(`INSERT INTO ${table} (id, country) VALUES ($1, $2)`, [id, country]);
    await tx.record('code', id, `${table}.imported`, { after: { id: String(id), country: eventCountry } });
  });
}

beforeAll(async () => {
  await migrate({ connectionString: db.url });
  await db.pool.query(`CREATE TABLE codes (id integer PRIMARY KEY, country char(2) NOT NULL)`);
  config = resolveConfig(codesConfig());
  hs = createHindsight(codesConfig());
  for (let id = 10; id < 20; id++) await add(id, 'DE');
});

describe('verify guards', () => {
  test('a row made behind the pages (a key already passed) is still compared, in the pass over the heads', async () => {
    let inserted = false;
    const report = await verify(config, {
      connectionString: db.url,
      pageSize: 3,
      concurrency: 1,
      record: false,
      onProgress: async () => {
        if (inserted) return;
        inserted = true;
        await add(1, 'FR'); // key 1 sorts before every page still to come
      },
    });
    const type = report.types[0]!;
    expect(type.outcome).toBe('clean');
    expect(type.counts).toMatchObject({ compared: 11, matched: 11 });
  });

  test('a projected value longer than a char(2) column is a mismatch: values are cast to the type without its length', async () => {
    await add(30, 'US', 'USA');
    const type = (await verify(config, { connectionString: db.url, ids: ['30'], record: false })).types[0]!;
    expect(type.mismatches[0]).toMatchObject({ aggregateId: '30', fields: [{ field: 'country', legacy: 'US', projected: 'USA' }] });
  });

  test('ids that match neither a row nor an event make the run incomplete, not clean', async () => {
    const type = (await verify(config, { connectionString: db.url, ids: ['11', '999'], record: false })).types[0]!;
    expect(type.outcome).toBe('incomplete');
    expect(type.reason).toMatch(/no legacy row and no events for code 999/);
  });

  test('a sample of an empty legacy table whose type has events compares nothing: incomplete', async () => {
    await db.pool.query(`CREATE TABLE codes_empty (id integer PRIMARY KEY, country char(2) NOT NULL)`);
    const empty = resolveConfig(codesConfig('codes_empty'));
    await createHindsight(codesConfig('codes_empty')).append(db.pool, {
      aggregateType: 'code',
      aggregateId: 5,
      events: [{ type: 'codes_empty.imported', payload: { after: { id: '5', country: 'IT' } } }],
    });
    const type = (await verify(empty, { connectionString: db.url, sample: 5, record: false })).types[0]!;
    expect(type.outcome).toBe('incomplete');
    expect(type.reason).toMatch(/nothing was compared \(0 legacy rows, \d+ aggregates with events\)/);
  });

  test('a key that is not unique (no primary key or unique index) cannot be paged safely: incomplete', async () => {
    await db.pool.query(`CREATE TABLE codes_loose (id integer NOT NULL, country char(2) NOT NULL)`);
    const type = (await verify(resolveConfig(codesConfig('codes_loose')), { connectionString: db.url, record: false })).types[0]!;
    expect(type.outcome).toBe('incomplete');
    expect(type.reason).toMatch(/no primary key or unique index of exactly those columns/);
  });
});

describe('verify, composite keys', () => {
  test('paged by (region, line) in the table order, ids given as JSON arrays, and a row gone found through the heads', async () => {
    await db.pool.query(`CREATE TABLE lines (region text NOT NULL, line integer NOT NULL, amount numeric(12,2) NOT NULL, PRIMARY KEY (region, line))`);
    const input: ConfigInput = {
      aggregates: [
        {
          type: 'line',
          table: 'lines',
          key: [
            { column: 'region', type: 'text' },
            { column: 'line', type: 'integer' },
          ],
          columns: { amount: 'amount' },
        },
      ],
    };
    const lines = createHindsight(input);
    const regions = ['eu', 'eu\twest', 'us', 'Ü"ber'];
    for (const region of regions) {
      for (let line = 1; line <= 3; line++) {
        await lines.transaction(db.pool, async (tx) => {
          await (tx.db as pg.PoolClient).query(`INSERT INTO lines VALUES ($1, $2, $3)`, [region, line * 10, `${line}.50`]);
          await tx.record('line', [region, line * 10], 'lines.imported', { after: { region, line: String(line * 10), amount: `${line}.50` } });
        });
      }
    }
    const lineConfig = resolveConfig(input);
    const clean = (await verify(lineConfig, { connectionString: db.url, pageSize: 5, record: false })).types[0]!;
    expect(clean).toMatchObject({ outcome: 'clean', counts: { rows: 12, compared: 12, matched: 12 } });
    expect(clean.cut.pages).toBe(3);

    await db.pool.query(`DELETE FROM lines WHERE region = 'eu\twest' AND line = 20`);
    await db.pool.query(`UPDATE lines SET amount = 9 WHERE region = 'Ü"ber' AND line = 30`);
    const found = (await verify(lineConfig, { connectionString: db.url, pageSize: 5, record: false })).types[0]!;
    expect(found.counts).toMatchObject({ compared: 12, matched: 10, mismatched: 1, missingInLegacy: 1 });
    const ids = found.mismatches.map((m) => [m.kind, m.aggregateId]);
    expect(ids).toEqual(
      expect.arrayContaining([
        ['field-mismatch', await lines.canonicalId(db.pool, 'line', ['Ü"ber', 30])],
        ['missing-in-legacy', await lines.canonicalId(db.pool, 'line', ['eu\twest', 20])],
      ]),
    );
    const one = (await verify(lineConfig, { connectionString: db.url, ids: [await lines.canonicalId(db.pool, 'line', ['us', 10])], record: false })).types[0]!;
    expect(one).toMatchObject({ outcome: 'clean', counts: { compared: 1, matched: 1 } });
  });
});

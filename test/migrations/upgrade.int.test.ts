import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { migrations } from '../../migrations/index.js';
import { quoteIdent } from '../../src/db/identifiers.js';
import { migrate } from '../../src/store/migrate.js';
import { useTestDatabase } from '../helpers/database.js';

const db = useTestDatabase(import.meta.url);
const created: string[] = [];

/** A further database on the run's server, dropped after the file. */
async function freshDatabase(suffix: string): Promise<string> {
  const name = `${db.name}_${suffix}`;
  await db.pool.query(`CREATE DATABASE ${name}`);
  created.push(name);
  return db.urlFor(name);
}
afterAll(async () => {
  for (const name of created) await db.pool.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
});

/** Everything a migration can create in a schema, as comparable text. */
async function describeSchema(url: string, schema = 'hindsight'): Promise<Record<string, unknown>> {
  const client = new pg.Client(url);
  await client.connect();
  const q = async (sql: string) => (await client.query(sql, [schema])).rows;
  try {
    return {
      relations: await q(`SELECT c.relname, c.relkind, c.reloptions::text, c.relacl::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                          WHERE n.nspname = $1 ORDER BY c.relname`),
      columns: await q(`SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull, a.attidentity,
                               co.collname, pg_get_expr(d.adbin, d.adrelid) AS default
                        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                        LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
                        WHERE n.nspname = $1 AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
                        ORDER BY c.relname, a.attnum`),
      constraints: await q(`SELECT conrelid::regclass::text AS rel, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
                            WHERE connamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) ORDER BY 1, 2`),
      indexes: await q(`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname`),
      triggers: await q(`SELECT t.tgname, t.tgenabled, pg_get_triggerdef(t.oid) AS def FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND NOT t.tgisinternal ORDER BY t.tgname`),
      functions: await q(`SELECT p.proname, pg_get_functiondef(p.oid) AS def, p.proacl::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                          WHERE n.nspname = $1 ORDER BY p.proname`),
      migrations: (await client.query(`SELECT name FROM ${quoteIdent(schema)}.migrations ORDER BY id`)).rows.map((r) => r.name),
    };
  } finally {
    await client.end();
  }
}

describe('migrations', () => {
  test('upgrading from every earlier migration state equals a fresh install', async () => {
    const freshUrl = await freshDatabase('fresh');
    await migrate({ connectionString: freshUrl });
    const fresh = await describeSchema(freshUrl);
    expect((fresh.relations as unknown[]).length).toBeGreaterThan(0);
    for (let applied = 0; applied < migrations.length; applied++) {
      const url = await freshDatabase(`from${applied}`);
      if (applied > 0) await migrate({ connectionString: url, onlyFirst: applied });
      const result = await migrate({ connectionString: url });
      expect(result.applied).toEqual(migrations.slice(applied).map((m) => m.name));
      expect(await describeSchema(url)).toEqual(fresh);
    }
  });

  test('running migrate twice changes nothing', async () => {
    const url = await freshDatabase('twice');
    const first = await migrate({ connectionString: url });
    const once = await describeSchema(url);
    const second = await migrate({ connectionString: url });
    expect(first.applied.length).toBe(migrations.length);
    expect(second.applied).toEqual([]);
    expect(await describeSchema(url)).toEqual(once);
  });

  test('concurrent migrate runs are serialised: one applies, the other finds it done', async () => {
    const url = await freshDatabase('race');
    const results = await Promise.all([migrate({ connectionString: url }), migrate({ connectionString: url })]);
    expect(results.map((r) => r.applied.length).sort()).toEqual([0, migrations.length]);
  });

  test('a configurable schema name, including one that needs quoting', async () => {
    const url = await freshDatabase('schema');
    await migrate({ connectionString: url, schema: 'Event "Store"' });
    const described = await describeSchema(url, 'Event "Store"');
    expect((described.relations as Array<{ relname: string }>).map((r) => r.relname)).toContain('events');
  });
});

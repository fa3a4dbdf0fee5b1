import fs from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { migrate } from '../../src/store/migrate.js';
import { runCli, scratchDir } from '../helpers/cli.js';
import { useTestDatabase } from '../helpers/database.js';

// `hindsight verify` as a user and a cron job see it: exit codes, the human report,
// --json, --jsonl, the metrics file, the stored history, and bad arguments refused.

const db = useTestDatabase(import.meta.url);
let dir: string;
let cli: (...args: string[]) => ReturnType<typeof runCli>;

beforeAll(async () => {
  await migrate({ connectionString: db.url });
  await db.pool.query(`CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL, tier text NOT NULL)`);
  await db.pool.query(`INSERT INTO customers SELECT g, 'customer ' || g, CASE WHEN g % 2 = 0 THEN 'G' ELSE 'S' END FROM generate_series(1, 30) g`);
  dir = await scratchDir('verify-cli');
  const config = {
    aggregates: [
      {
        type: 'customer',
        table: 'customers',
        key: { column: 'id', type: 'integer' },
        columns: { name: 'name', tier: { field: 'tier' } },
      },
    ],
  };
  await fs.writeFile(path.join(dir, 'hindsight.config.json'), JSON.stringify(config));
  cli = (...args) => runCli([...args, '--config', path.join(dir, 'hindsight.config.json'), '--database-url', db.url], { cwd: dir });
  // the opening import: every row gets its customers.imported event (the default fold reads it)
  expect((await cli('backfill', 'customer')).code).toBe(0);
});

describe('hindsight verify', () => {
  test('clean: exit 0, a summary, a stored run, and the metrics file', async () => {
    const result = await cli('verify', '--metrics-file', 'verify.prom');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/customer \(projection, full\): CLEAN/);
    expect(result.stdout).toMatch(/30 legacy rows read, 30 aggregates compared: 30 matched, 0 mismatched/);
    const metrics = await fs.readFile(path.join(dir, 'verify.prom'), 'utf8');
    expect(metrics).toMatch(/^hindsight_verify_matched\{type="customer",target="projection",mode="full"\} 30$/m);
    expect(metrics).toMatch(/^hindsight_verify_incomplete\{type="customer",target="projection",mode="full"\} 0$/m);
    expect(metrics).toMatch(/^hindsight_verify_last_clean_timestamp_seconds\{type="customer",target="projection",mode="full"\} \d+(\.\d+)?$/m);
    const history = await cli('verify', '--history');
    expect(history.code).toBe(0);
    expect(history.stdout).toMatch(/customer\s+projection\s+full\s+clean\s+30 matched/);
  });

  test('mismatches: exit 1, each explained; --json is one document and --jsonl one line per mismatch', async () => {
    await db.pool.query(`UPDATE customers SET tier = 'P' WHERE id IN (4, 9)`);
    try {
      const human = await cli('verify', 'customer');
      expect(human.code).toBe(1);
      expect(human.stdout).toMatch(/customer \(projection, full\): MISMATCHES/);
      expect(human.stdout).toMatch(/- 4: field mismatch \(legacy drift\)\n\s+tier: legacy "P", projected "G"\n\s+legacy row changed after its last event: a write path is not captured/);
      expect(human.stdout).toMatch(/mismatches per field: tier 2/);

      const json = await cli('verify', 'customer', '--json');
      expect(json.code).toBe(1);
      const report = JSON.parse(json.stdout);
      expect(report.outcome).toBe('mismatches');
      expect(report.types[0].mismatches.map((m: { aggregateId: string }) => m.aggregateId)).toEqual(['4', '9']);

      const jsonl = await cli('verify', 'customer', '--jsonl');
      expect(jsonl.code).toBe(1);
      const lines = jsonl.stdout.trim().split('\n').map((l) => JSON.parse(l));
      expect(lines).toHaveLength(2);
      expect(lines[1]).toMatchObject({ aggregateType: 'customer', aggregateId: '9', kind: 'field-mismatch', fields: [{ field: 'tier', legacy: 'P', projected: 'S' }] });
      expect(jsonl.stderr).toMatch(/verify .*: mismatches \(customer mismatches\)/);

      const one = await cli('verify', 'customer', '--ids', '5', '--json');
      expect(one.code).toBe(0);
      expect(JSON.parse(one.stdout).types[0]).toMatchObject({ mode: 'ids', outcome: 'clean', counts: { compared: 1 } });
    } finally {
      await db.pool.query(`UPDATE customers SET tier = 'G' WHERE id = 4; UPDATE customers SET tier = 'S' WHERE id = 9`);
    }
  });

  test('bad arguments are refused with exit 2 and say what to do, running nothing', async () => {
    const before = (await db.pool.query(`SELECT count(*)::int AS n FROM hindsight.verify_runs`)).rows[0].n;
    for (const [args, message] of [
      [['verify', '--sample', '0'], /--sample must be a whole number from 1/],
      [['verify', '--ids', '3'], /verify --ids needs a type/],
      [['verify', 'nobody'], /unknown aggregate type "nobody"/],
      [['verify', 'customer', '--ids', 'x'], /customer id \(id integer\): expected an integer/],
      [['verify', '--sample', '3', '--changed-since-last'], /mutually exclusive|conflict/i],
      [['verify', '--lag-timeout', 'soon'], /--lag-timeout must be a positive number/],
    ] as const) {
      const result = await cli(...args);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr).toMatch(message);
    }
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM hindsight.verify_runs`)).rows[0].n).toBe(before);
  });

  test('--changed-since-last: aggregates with new events and those the last complete run found mismatched; without updatedAt it says what it cannot see', async () => {
    // one aggregate changes with its event; the others do not
    await db.pool.query(`UPDATE customers SET name = 'renamed' WHERE id = 7`);
    const appended = await cli('append', 'customer', '7', 'customers.updated', '--payload', '{"before":{"name":"customer 7"},"after":{"name":"renamed"}}');
    expect(appended.code).toBe(0);
    const result = await cli('verify', 'customer', '--changed-since-last', '--json');
    expect(result.code).toBe(0);
    const type = JSON.parse(result.stdout).types[0];
    // 7 changed with its event; 4 and 9 were mismatched in the last complete run, so they are checked again (fixed since)
    expect(type).toMatchObject({ mode: 'changed', outcome: 'clean', counts: { rows: 3, compared: 3, matched: 3 } });
    expect(type.warnings[0]).toMatch(/cannot see legacy writes that recorded no event/);
  });
});

import fs from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { migrate } from '../../src/store/migrate.js';
import { runCli, scratchDir } from '../helpers/cli.js';
import { useTestDatabase } from '../helpers/database.js';

// The replication commands' refusals, none of which needs a slot: each says what was
// wrong and what to do, and creates nothing.

const db = useTestDatabase(import.meta.url);
let dir: string;

async function writeConfig(name: string, config: unknown): Promise<string> {
  const file = path.join(dir, `${name}.json`);
  await fs.writeFile(file, JSON.stringify(config));
  return file;
}

const listenerConfig = (table: string) => ({
  replication: { slot: 'hs_cli_never_created', publication: 'hs_cli_pub' },
  aggregates: [{ type: 'account', table, key: { column: 'id', type: 'bigint' }, capture: 'listener' }],
});

beforeAll(async () => {
  dir = await scratchDir('replication-cli');
  await migrate({ connectionString: db.url });
  await db.pool.query(`CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint)`);
});

describe('replication commands refuse clearly and write nothing', () => {
  test('setup lists every preflight problem with its fix, and creates no publication', async () => {
    const config = await writeConfig('missing-table', {
      ...listenerConfig('accounts'),
      aggregates: [
        { type: 'account', table: 'accounts', key: { column: 'id', type: 'bigint' }, capture: 'listener', columns: { balanse: 'balance' } },
        { type: 'order', table: 'orders', key: { column: 'id', type: 'bigint' }, capture: 'listener' },
      ],
    });
    const result = await runCli(['replication', 'setup', '--config', config, '--database-url', db.url]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/table accounts: has no column "balanse"\. Fix: fix "columns" of aggregate type account/);
    expect(result.stderr).toMatch(/table orders: does not exist/);
    const { rows } = await db.pool.query(`SELECT pubname FROM pg_publication`);
    expect(rows).toEqual([]);
    const identity = await db.pool.query(`SELECT relreplident FROM pg_class WHERE relname = 'accounts'`);
    expect(identity.rows[0].relreplident).toBe('d');
  });

  test('setup refuses replicaIdentity "default" on a table without a primary key: its updates would fail once published', async () => {
    await db.pool.query(`CREATE TABLE keyless (id bigint NOT NULL, v int)`);
    const config = await writeConfig('keyless', {
      replication: { slot: 'hs_cli_never_created', publication: 'hs_cli_pub' },
      aggregates: [{ type: 'thing', table: 'keyless', key: { column: 'id', type: 'bigint' }, capture: 'listener', replicaIdentity: 'default' }],
    });
    const result = await runCli(['replication', 'setup', '--config', config, '--database-url', db.url]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/table keyless: has no primary key, so with replicaIdentity "default" its UPDATEs and DELETEs would fail once published\. Fix: add a primary key, or use replicaIdentity "full" on thing/);
    await db.pool.query(`UPDATE keyless SET v = 1`); // still works: nothing was published
  });

  test('setup refuses a key declared with another type than the column has', async () => {
    await db.pool.query(`CREATE TABLE loose_keys (id numeric PRIMARY KEY, v int)`);
    const config = await writeConfig('loose-keys', {
      replication: { slot: 'hs_cli_never_created', publication: 'hs_cli_pub' },
      aggregates: [{ type: 'loose', table: 'loose_keys', key: { column: 'id', type: 'numeric(10,2)' }, capture: 'listener' }],
    });
    const result = await runCli(['replication', 'setup', '--config', config, '--database-url', db.url]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/key column "id" is numeric but the config declares numeric\(10,2\), so ids from row changes and from the app could differ\. Fix: declare the key as numeric/);
  });

  test('status exits 1 when the slot is missing, saying a re-backfill and verify are needed', async () => {
    const config = await writeConfig('status', listenerConfig('accounts'));
    const result = await runCli(['replication', 'status', '--config', config, '--database-url', db.url]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/slot hs_cli_never_created: missing/);
    expect(result.stdout).toMatch(/PROBLEM: the slot is missing: re-backfill and verify required/);
    const json = await runCli(['replication', 'status', '--json', '--config', config, '--database-url', db.url]);
    expect(JSON.parse(json.stdout)).toMatchObject({ health: 'missing', problems: [expect.stringMatching(/missing/)] });
  });

  test('teardown needs --yes; listen needs a listener type and a backfilled slot', async () => {
    const config = await writeConfig('teardown', listenerConfig('accounts'));
    const teardown = await runCli(['replication', 'teardown', '--config', config, '--database-url', db.url]);
    expect(teardown.code).toBe(2);
    expect(teardown.stderr).toMatch(/give --yes to confirm/);

    const appOnly = await writeConfig('app-only', { aggregates: [{ type: 'account', table: 'accounts', key: { column: 'id', type: 'bigint' } }] });
    const nothing = await runCli(['listen', '--config', appOnly, '--database-url', db.url]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/no aggregate type has capture "listener" or "both"/);

    const early = await runCli(['listen', '--config', config, '--database-url', db.url]);
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/has not been created by a backfill yet: run "hindsight replication setup", then "hindsight backfill"/);
  });

  test('backfill of a type that is not a listener type names the listener types', async () => {
    const config = await writeConfig('backfill', listenerConfig('accounts'));
    const result = await runCli(['backfill', 'order', '--config', config, '--database-url', db.url]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/order is not a declared aggregate type \(listener types: account\)/);
  });

  test('backfill of an app type imports each row once, skipping aggregates the app already wrote, and can run again', async () => {
    await db.pool.query(`CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)`);
    await db.pool.query(`INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 25) g`);
    const config = await writeConfig('app-import', { aggregates: [{ type: 'customer', table: 'customers', key: { column: 'id', type: 'integer' } }] });
    const first = await runCli(['append', 'customer', '7', 'customers.updated', '--payload', '{"before":{"name":"customer 7"},"after":{"name":"Seven"}}', '--expected-version', 'none', '--config', config, '--database-url', db.url]);
    expect(first.code, first.stderr).toBe(0);
    const result = await runCli(['backfill', 'customer', '--batch-size', '10', '--json', '--config', config, '--database-url', db.url]);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ aggregateType: 'customer', rows: 25, skipped: 1 });
    const again = await runCli(['backfill', 'customer', '--json', '--config', config, '--database-url', db.url]);
    expect(JSON.parse(again.stdout)).toEqual({ aggregateType: 'customer', rows: 25, skipped: 25 });
    const { rows } = await db.pool.query(
      `SELECT aggregate_id, array_agg(event_type ORDER BY sequence)::text AS types FROM hindsight.events WHERE aggregate_type = 'customer' AND aggregate_id IN ('1', '7') GROUP BY 1 ORDER BY 1`,
    );
    expect(rows).toEqual([
      { aggregate_id: '1', types: '{customers.imported}' },
      { aggregate_id: '7', types: '{customers.updated}' },
    ]);
  });

  test('an append to a listener type is refused, library or CLI, and writes nothing', async () => {
    const config = await writeConfig('append', listenerConfig('accounts'));
    const result = await runCli(['append', 'account', '1', 'accounts.updated', '--payload', '{"before":{},"after":{"balance":"1"}}', '--config', config, '--database-url', db.url]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/capture "listener": its events come from its table's row changes\. To say who did it and why, call recordContext/);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM hindsight.events WHERE aggregate_type = 'account'`);
    expect(rows[0].n).toBe(0);
  });
});

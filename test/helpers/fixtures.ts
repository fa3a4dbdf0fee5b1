import { z } from 'zod';
import type pg from 'pg';
import { defineEvent } from '../../src/events/defineEvent.js';
import { defineProjector } from '../../src/projection/defineProjector.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { createHindsight, type Hindsight } from '../../src/hindsight.js';
import { migrate } from '../../src/store/migrate.js';
import type { TestDatabase } from './database.js';

/** The legacy tables the tests capture: accounts (bigint key), customers (uuid), ledger lines (composite). */
export const LEGACY_TABLES = `
  CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL DEFAULT 'someone', balance bigint NOT NULL DEFAULT 0);
  CREATE TABLE customers (id uuid PRIMARY KEY, name text NOT NULL);
  CREATE TABLE ledger_lines (region text NOT NULL, line integer NOT NULL, amount numeric(12,2) NOT NULL, PRIMARY KEY (region, line));`;

export const AccountCredited = defineEvent('account.credited', z.object({ amount: z.number().int().positive() }));
export const AccountDebited = defineEvent('account.debited', z.object({ amount: z.number().int().positive() }));
export const CustomerRenamed = defineEvent('customer.renamed', z.object({ name: z.string().min(1) }));

export const accountProjector = defineProjector<{ balance: number }>({
  aggregateType: 'account',
  initial: { balance: 0 },
  handlers: {
    'account.credited': (s, e) => ({ ...s, balance: s.balance + e.payload.amount }),
    'account.debited': (s, e) => ({ ...s, balance: s.balance - e.payload.amount }),
  },
});

export function testConfig(overrides: Partial<ConfigInput> = {}): ConfigInput {
  return {
    aggregates: [
      {
        type: 'account',
        table: 'accounts',
        key: { column: 'id', type: 'bigint' },
        columns: { owner: 'owner', balance: 'balance' },
        events: [AccountCredited, AccountDebited],
        projector: accountProjector,
      },
      { type: 'customer', table: 'customers', key: { column: 'id', type: 'uuid' }, events: [CustomerRenamed] },
      {
        type: 'ledger-line',
        table: 'ledger_lines',
        key: [
          { column: 'region', type: 'text' },
          { column: 'line', type: 'integer' },
        ],
      },
    ],
    ...overrides,
  };
}

/** Migrates the test database, creates the legacy tables, and returns hindsight bound to the config. */
export async function prepareStore(db: TestDatabase, config: ConfigInput = testConfig()): Promise<Hindsight> {
  await migrate({ connectionString: db.url, schema: config.schema });
  await db.pool.query(LEGACY_TABLES);
  return createHindsight(config);
}

export async function countEvents(pool: pg.Pool, schema = 'hindsight'): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${schema}".events`);
  return Number(rows[0]!.n);
}

/** testConfig plus read models: balances of accounts (removed on delete) and customers (marked). */
export function readModelConfig(overrides: Partial<ConfigInput> = {}): ConfigInput {
  const base = testConfig();
  return {
    ...base,
    aggregates: base.aggregates!.map((a) => {
      if (a.type === 'account') {
        return {
          ...a,
          snapshotEvery: 5,
          readModels: [
            {
              name: 'account_balances',
              table: 'read_models.account_balances',
              columns: { balance: { type: 'bigint' }, owner: { type: 'text' } },
              indexes: [['balance']],
            },
          ],
        };
      }
      if (a.type === 'customer') {
        return {
          ...a,
          readModels: [{ name: 'customer_names', table: 'read_models.customer_names', columns: { name: { type: 'text' } }, onDelete: 'mark' as const }],
        };
      }
      return a;
    }),
    ...overrides,
  };
}

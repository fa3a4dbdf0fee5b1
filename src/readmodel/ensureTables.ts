import type pg from 'pg';
import { toSql } from '../db/queryable.js';
import { inTransaction } from '../db/transaction.js';
import type { ReadModel } from './declaration.js';
import type { StoreTables } from '../store/tables.js';
import { ensureReadModelTable, type EnsureResult } from './ensureTable.js';

/**
 * Creates or brings up to date the tables of the given read models, in one transaction
 * under an advisory lock, so several updaters starting at once do not race on DDL.
 */
export async function ensureReadModelTables(pool: pg.Pool, tables: StoreTables, models: readonly ReadModel[]): Promise<Map<string, EnsureResult>> {
  const results = new Map<string, EnsureResult>();
  if (models.length === 0) return results;
  return inTransaction(pool, async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('hindsight.read-model-ddl'))`);
    for (const model of models) results.set(model.name, await ensureReadModelTable(toSql(client), tables, model));
    return results;
  });
}

import type { Sql } from '../db/queryable.js';
import type { StoreTables } from '../store/tables.js';
import { quoteIdent, type TableName } from '../db/identifiers.js';
import { ConfigError } from '../errors.js';
import { createHash } from 'node:crypto';
import { DELETED_COLUMN, SEQUENCE_COLUMN, truncateBytes, type ReadModel } from './declaration.js';

export interface EnsureResult {
  created: boolean;
  addedColumns: string[];
  createdIndexes: string[];
}

/**
 * Creates a read model's table (or a rebuild's shadow of it) with its declared columns
 * and indexes, or brings an existing one up to the declaration by adding what is missing.
 * A column whose type differs from the declaration is an error: rebuild the read model
 * after changing the column by hand, or give the new shape a new column name.
 */
export async function ensureReadModelTable(sql: Sql, tables: StoreTables, model: ReadModel, table: TableName = model.table): Promise<EnsureResult> {
  for (const column of model.columns) {
    const [row] = await sql.query<{ ok: boolean }>(`SELECT to_regtype($1::text) IS NOT NULL AS ok`, [column.type]);
    if (!row?.ok) throw new ConfigError(`read model ${model.name}: column ${column.name} has type "${column.type}", which this database does not know`);
  }
  if (table.schema) await sql.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(table.schema)}`);
  const [existing] = await sql.query<{ oid: string | null }>(`SELECT to_regclass($1::text)::oid::text AS oid`, [table.quoted]);
  const result: EnsureResult = { created: false, addedColumns: [], createdIndexes: [] };
  const deleted = model.onDelete === 'mark' ? `, ${DELETED_COLUMN} boolean NOT NULL DEFAULT false` : '';
  if (!existing?.oid) {
    const columns = model.columns.map((c) => `, ${c.quoted} ${c.type}`).join('');
    await sql.query(
      `CREATE TABLE ${table.quoted} (aggregate_id text COLLATE "C" PRIMARY KEY, ${SEQUENCE_COLUMN} bigint NOT NULL${deleted}${columns})`,
    );
    // Tombstones are keyed by table oid, and a dropped table's oid can come back: a new table starts with none.
    await sql.query(`DELETE FROM ${tables.tombstones} WHERE table_oid = to_regclass($1::text)::oid`, [table.quoted]);
    result.created = true;
  } else {
    const present = await sql.query<{ name: string; type_oid: string }>(
      `SELECT a.attname AS name, a.atttypid::text AS type_oid
       FROM pg_attribute a WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped`,
      [existing.oid],
    );
    const types = new Map(present.map((p) => [p.name, p.type_oid]));
    const wanted = [...model.columns.map((c) => ({ name: c.name, ddl: `${c.quoted} ${c.type}`, type: c.type }))];
    if (model.onDelete === 'mark') wanted.push({ name: DELETED_COLUMN, ddl: `${DELETED_COLUMN} boolean NOT NULL DEFAULT false`, type: 'boolean' });
    for (const column of wanted) {
      const [declared] = await sql.query<{ oid: string }>(`SELECT to_regtype($1::text)::oid::text AS oid`, [column.type]);
      const found = types.get(column.name);
      if (found === undefined) {
        await sql.query(`ALTER TABLE ${table.quoted} ADD COLUMN ${column.ddl}`);
        result.addedColumns.push(column.name);
      } else if (found !== declared?.oid) {
        throw new ConfigError(
          `read model ${model.name}: column ${column.name} of ${table.quoted} has another type than the declared "${column.type}"; ` +
            'rebuild the read model into a new table, or give the new shape a new column name',
        );
      }
    }
  }
  for (const index of model.indexes) {
    const [exists] = await sql.query<{ found: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = coalesce($1::text, current_schema()) AND indexname = $2::text) AS found`,
      [table.schema ?? null, indexNameFor(table, index.name)],
    );
    if (exists?.found) continue;
    await sql.query(
      `CREATE INDEX ${quoteIdent(indexNameFor(table, index.name))} ON ${table.quoted} (${index.columns.map(quoteIdent).join(', ')})`,
    );
    result.createdIndexes.push(index.name);
  }
  return result;
}

/** A shadow table's indexes get their own names (index names are per schema); the swap renames them back. */
export function indexNameFor(table: TableName, indexName: string): string {
  return table.name.endsWith(SHADOW_SUFFIX) ? shadowName(indexName) : indexName;
}

export const SHADOW_SUFFIX = '__rebuild';

/**
 * The shadow's name for a table or index: the name with a suffix, or, when that would pass
 * 63 bytes, a shortened name with a hash of the original (the swap maps names back by
 * recomputing this, never by cutting the suffix off).
 */
export function shadowName(name: string): string {
  const suffixed = `${name}${SHADOW_SUFFIX}`;
  if (Buffer.byteLength(suffixed) <= 63) return suffixed;
  return `${truncateBytes(name, 40)}_${createHash('sha256').update(name).digest('hex').slice(0, 12)}${SHADOW_SUFFIX}`;
}

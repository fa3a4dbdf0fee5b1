import type pg from 'pg';
import { copyOut } from './copy.js';
import { checkout } from './checkout.js';

/**
 * hindsight runs its SQL on whatever the caller holds: a node-postgres Client, PoolClient
 * or Pool, or a knex instance or transaction. Both are described structurally, so the
 * caller's own objects work without hindsight importing knex, and users of `pg` alone
 * never load it.
 *
 * hindsight's SQL uses `$n` placeholders and selects every column it reads as text, so
 * results do not depend on pg's global type parsers, which belong to the host app
 * (hindsight never changes them).
 */

export interface PgQueryConfig {
  text: string;
  values?: unknown[];
  name?: string;
}

/** Anything with node-postgres's `query`: Client, PoolClient, Pool. */
export interface PgQueryable {
  query(config: PgQueryConfig): Promise<{ rows: any[]; rowCount: number | null }>;
}

/** The parts of a knex instance or transaction hindsight uses. */
export interface KnexLike {
  (tableName?: unknown): unknown;
  raw(sql: string, bindings?: readonly unknown[]): PromiseLike<any>;
  isTransaction?: boolean;
  transaction: (...args: any[]) => any;
  client: unknown;
}

/** A database handle from the caller: a pg client or pool, or a knex instance or transaction. */
export type Db = PgQueryable | KnexLike;

/** hindsight's one way of running SQL on a caller's handle. */
export interface Sql {
  /** Runs `text` with `$n` parameters; `name` makes it a prepared statement where the driver allows. */
  query<Row = Record<string, string | null>>(text: string, values?: readonly unknown[], name?: string): Promise<Row[]>;
  /**
   * True when `rows` returns every column as PostgreSQL's text output whatever its type
   * (node-postgres, with per-query type parsers): queries may then skip `::text` casts.
   */
  readonly rawText: boolean;
  /** Rows as arrays in column order, for reads of many rows. Text only where rawText (else cast in the SQL). */
  rows(text: string, values?: readonly unknown[]): Promise<Array<Array<string | null>>>;
  /**
   * Present only on a node-postgres Pool: runs `text` (a SELECT with `$n` parameters, each
   * cast in the SQL) as `COPY (...) TO STDOUT` on a client of its own and hands each row,
   * in COPY's text format, to `onRow`. Several times faster than `rows` for thousands of
   * rows; not offered on a caller's client, which may be inside the caller's transaction.
   */
  copyRows?(text: string, values: readonly string[], onRow: (chunk: Buffer) => void): Promise<number>;
}

/** Per-query type parsers that leave every value as the server's text: the host app's global parsers do not apply. */
const RAW_TEXT = { getTypeParser: () => (value: string) => value };

export function isKnex(db: unknown): db is KnexLike {
  return typeof db === 'function' && typeof (db as KnexLike).raw === 'function' && 'client' in (db as object);
}

/** A node-postgres Pool (as opposed to a Client or PoolClient): it hands out clients of its own. */
interface PgPoolLike extends PgQueryable {
  connect(): Promise<pg.PoolClient>;
  totalCount: number;
}

function isPool(db: PgQueryable): db is PgPoolLike {
  return typeof (db as PgPoolLike).connect === 'function' && typeof (db as PgPoolLike).totalCount === 'number';
}

export function toSql(db: Db): Sql {
  if (isKnex(db)) {
    return {
      rawText: false,
      async query(text, values = []) {
        const { sql, bindings } = toKnexBindings(text, values);
        const result = await db.raw(sql, bindings);
        return (result?.rows ?? []) as any[];
      },
      async rows(text, values = []) {
        const { sql, bindings } = toKnexBindings(text, values);
        const result = await db.raw(sql, bindings);
        const fields = ((result?.fields ?? []) as Array<{ name: string }>).map((f) => f.name);
        return ((result?.rows ?? []) as Array<Record<string, string | null>>).map((row) => fields.map((f) => row[f] ?? null));
      },
    };
  }
  if (typeof (db as PgQueryable)?.query !== 'function') {
    throw new TypeError('expected a pg Client, PoolClient or Pool, or a knex instance or transaction');
  }
  return {
    rawText: true,
    async query(text, values = [], name) {
      const result = await (db as PgQueryable).query(name ? { name, text, values: [...values] } : { text, values: [...values] });
      return result.rows;
    },
    async rows(text, values = []) {
      const result = await (db as PgQueryable).query({ text, values: [...values], rowMode: 'array', types: RAW_TEXT } as PgQueryConfig);
      return result.rows as Array<Array<string | null>>;
    },
    copyRows: isPool(db) ? (text, values, onRow) => copyRowsOnPool(db, text, values, onRow) : undefined,
  };
}

/**
 * COPY takes no bind parameters, so the values travel through set_config() (which does),
 * local to a transaction of the pool client's own, and the query reads each `$n` back
 * with current_setting(). The client goes back to the pool with nothing left set.
 */
async function copyRowsOnPool(pool: PgPoolLike, text: string, values: readonly string[], onRow: (chunk: Buffer) => void): Promise<number> {
  const setting = (n: number) => `hindsight.copy_param_${n}`;
  const select = text.replace(/\$(\d+)/g, (_, n: string) => {
    if (Number(n) < 1 || Number(n) > values.length) throw new Error(`internal: $${n} has no value`);
    return `current_setting('${setting(Number(n))}')`;
  });
  const client = await checkout(pool);
  let broken: unknown;
  try {
    await client.query('BEGIN READ ONLY');
    if (values.length > 0) {
      const sets = values.map((_, i) => `set_config('${setting(i + 1)}', $${i + 1}::text, true)`).join(', ');
      await client.query({ text: `SELECT ${sets}`, values: [...values] });
    }
    const rows = await copyOut(client, `COPY (${select}) TO STDOUT`, onRow);
    await client.query('COMMIT');
    return rows;
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: unknown) => (broken = rollbackError));
    throw error;
  } finally {
    client.release(broken as Error | undefined);
  }
}

/**
 * knex binds with `?` in order of appearance; hindsight's SQL uses `$n`, which may repeat
 * and appear in any order. Rewrites each `$n` to `?` and lists its value in that order.
 * hindsight's own SQL never contains a literal `?` (knex would take it for a binding).
 */
export function toKnexBindings(text: string, values: readonly unknown[]): { sql: string; bindings: unknown[] } {
  if (text.includes('?')) throw new Error('internal: SQL for knex must not contain "?"');
  const bindings: unknown[] = [];
  const sql = text.replace(/\$(\d+)/g, (_, n: string) => {
    const index = Number(n) - 1;
    if (index < 0 || index >= values.length) throw new Error(`internal: $${n} has no value`);
    bindings.push(values[index]);
    return '?';
  });
  return { sql, bindings };
}

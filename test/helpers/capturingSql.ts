import type pg from 'pg';
import type { Sql } from '../../src/db/queryable.js';

/** An Sql that runs the library's real queries on `pool`, keeping their SQL and values to EXPLAIN them. */
export function capturingSql(pool: pg.Pool): { sql: Sql; captured: Array<{ text: string; values: readonly unknown[] }> } {
  const captured: Array<{ text: string; values: readonly unknown[] }> = [];
  return {
    captured,
    sql: {
      rawText: false,
      async query(text, values = []) {
        captured.push({ text, values });
        return (await pool.query(text, [...values])).rows;
      },
      async rows(text, values = []) {
        captured.push({ text, values });
        return (await pool.query({ text, values: [...values], rowMode: 'array' })).rows;
      },
    },
  };
}

import type pg from 'pg';
import { toSql, type Sql } from '../../src/db/queryable.js';

/**
 * A real Sql over `pool` that counts the statements containing `marker`, so a test can wait
 * for a component (the alert monitor) to have read the database a few more times.
 */
export function countingSql(pool: pg.Pool, marker: string): { sql: Sql; readings: () => number } {
  const real = toSql(pool);
  let n = 0;
  return {
    sql: { ...real, query: (text, values) => (text.includes(marker) && n++, real.query(text, values)) } as Sql,
    readings: () => n,
  };
}

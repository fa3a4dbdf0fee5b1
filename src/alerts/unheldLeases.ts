import type { Sql } from '../db/queryable.js';
import type { StoreTables } from '../store/tables.js';

/**
 * For each named lease that nobody holds now: how long ago it expired, by the database's
 * clock (null: there is no lease row at all, released or never taken). Held leases are
 * left out.
 */
export async function unheldLeases(sql: Sql, tables: StoreTables, names: readonly string[]): Promise<Map<string, number | null>> {
  const rows = await sql.query<{ name: string; expired_for: string | null }>(
    `SELECT n.name, extract(epoch FROM clock_timestamp() - l.expires_at)::text AS expired_for
     FROM unnest($1::text[]) AS n(name) LEFT JOIN ${tables.leases} l ON l.name = n.name
     WHERE l.name IS NULL OR l.expires_at < clock_timestamp()`,
    [[...names]],
  );
  return new Map(rows.map((r) => [r.name, r.expired_for === null ? null : Number(r.expired_for)]));
}

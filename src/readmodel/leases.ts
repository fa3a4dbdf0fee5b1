import type { Sql } from '../db/queryable.js';
import type { StoreTables } from '../store/tables.js';

/**
 * Leases: which process works on a subscriber (a read model) now. Expiry uses the
 * database's clock, so processes need not agree on time. The holder renews from a
 * connection of its own, and every checkpoint write locks and re-checks the lease in its
 * own transaction (verifyLease, or the lease condition of the updater's one-statement
 * commit), so a holder that lost the lease cannot commit.
 */

/** Takes the lease if it is free, expired or already ours; true when we hold it. */
export async function tryAcquireLease(sql: Sql, tables: StoreTables, name: string, owner: string, ttlMs: number): Promise<boolean> {
  const rows = await sql.query(
    `INSERT INTO ${tables.leases} AS l (name, owner, acquired_at, expires_at)
     VALUES ($1::text, $2::text, clock_timestamp(), clock_timestamp() + $3::int * interval '1 millisecond')
     ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at,
       acquired_at = CASE WHEN l.owner = excluded.owner THEN l.acquired_at ELSE excluded.acquired_at END
     WHERE l.owner = excluded.owner OR l.expires_at < clock_timestamp()
     RETURNING 1`,
    [name, owner, ttlMs],
  );
  return rows.length === 1;
}

/** Extends the leases we still hold; returns the names we hold after the call. */
export async function renewLeases(sql: Sql, tables: StoreTables, names: readonly string[], owner: string, ttlMs: number): Promise<Set<string>> {
  if (names.length === 0) return new Set();
  const rows = await sql.query<{ name: string }>(
    `UPDATE ${tables.leases} SET expires_at = clock_timestamp() + $3::int * interval '1 millisecond'
     WHERE name = ANY($1::text[]) AND owner = $2::text AND expires_at > clock_timestamp()
     RETURNING name`,
    [[...names], owner, ttlMs],
  );
  return new Set(rows.map((r) => r.name));
}

/**
 * In the transaction of a checkpoint write: locks our lease row, so nobody can take it over
 * until we commit, and checks that it is still ours and alive. False: do not commit.
 */
export async function verifyLease(sql: Sql, tables: StoreTables, name: string, owner: string): Promise<boolean> {
  const rows = await sql.query(
    `SELECT 1 FROM ${tables.leases} WHERE name = $1::text AND owner = $2::text AND expires_at > clock_timestamp() FOR UPDATE`,
    [name, owner],
  );
  return rows.length === 1;
}

/** Whether `owner` holds the lease now, read without locking its row. */
export async function leaseHeld(sql: Sql, tables: StoreTables, name: string, owner: string): Promise<boolean> {
  const rows = await sql.query(`SELECT 1 FROM ${tables.leases} WHERE name = $1::text AND owner = $2::text AND expires_at > clock_timestamp()`, [name, owner]);
  return rows.length === 1;
}

export async function releaseLease(sql: Sql, tables: StoreTables, name: string, owner: string): Promise<void> {
  await sql.query(`DELETE FROM ${tables.leases} WHERE name = $1::text AND owner = $2::text`, [name, owner]);
}

export interface LeaseHolder {
  owner: string;
  expiresAt: string;
  expired: boolean;
}

export async function leaseHolders(sql: Sql, tables: StoreTables, names: readonly string[]): Promise<Map<string, LeaseHolder>> {
  const rows = await sql.query<{ name: string; owner: string; expires_at: string; expired: boolean }>(
    `SELECT name, owner, to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS expires_at,
            expires_at < clock_timestamp() AS expired
     FROM ${tables.leases} WHERE name = ANY($1::text[])`,
    [[...names]],
  );
  return new Map(rows.map((r) => [r.name, { owner: r.owner, expiresAt: r.expires_at, expired: r.expired }]));
}

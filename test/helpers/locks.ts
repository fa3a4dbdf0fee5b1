import type pg from 'pg';
import { pollUntil } from '../../src/db/pollUntil.js';

/**
 * Waiting on locks without fixed sleeps. A test that needs a statement to be blocked (a
 * second writer of an aggregate, a batch behind a held row) asks the server whether it is,
 * instead of sleeping for long enough on this machine and hoping.
 */

export async function backendPid(client: pg.ClientBase): Promise<number> {
  return (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
}

/** The sessions waiting on a lock that the session `pid` holds (as pg_blocking_pids reports it). */
export async function blockedBy(pool: pg.Pool, pid: number): Promise<number[]> {
  const { rows } = await pool.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))`, [pid]);
  return rows.map((r) => r.pid);
}

/** Waits until some session waits on a lock of the session `holder`; returns the waiting sessions. */
export async function waitUntilBlockedBy(pool: pg.Pool, holder: number, what: string, timeoutMs = 30_000): Promise<number[]> {
  let waiting: number[] = [];
  if (!(await pollUntil(async () => (waiting = await blockedBy(pool, holder)).length > 0, timeoutMs))) {
    throw new Error(`${what} did not wait on a lock of session ${holder} within ${timeoutMs} ms`);
  }
  return waiting;
}

/** Waits until the session `pid` waits on a lock, whoever holds it. */
export async function waitUntilWaiting(pool: pg.Pool, pid: number, what: string, timeoutMs = 30_000): Promise<void> {
  const waiting = async () => (await pool.query<{ n: number }>(`SELECT cardinality(pg_blocking_pids($1::int)) AS n`, [pid])).rows[0]!.n > 0;
  if (!(await pollUntil(waiting, timeoutMs))) throw new Error(`${what} (session ${pid}) did not wait on a lock within ${timeoutMs} ms`);
}

/**
 * The "legacy" application of the demo: plain CRUD service functions that update
 * current state and keep no history. hindsight wraps them without changing a line.
 * Each takes a database handle first (anything with pg's `query`).
 */

interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: any[]; rowCount: number | null }>;
}

export const LEGACY_SCHEMA = `
  CREATE TABLE accounts (
    id            bigint PRIMARY KEY,
    owner         text NOT NULL,
    balance_cents bigint NOT NULL DEFAULT 0 CHECK (balance_cents >= 0),
    status        text NOT NULL DEFAULT 'open',
    updated_at    timestamptz NOT NULL DEFAULT now()
  );
  CREATE TABLE subscriptions (
    id         uuid PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    plan       text NOT NULL,
    status     text NOT NULL DEFAULT 'pending',
    updated_at timestamptz NOT NULL DEFAULT now()
  );`;

export class InsufficientFunds extends Error {}

export async function openAccount(db: Queryable, id: number, owner: string): Promise<void> {
  await db.query('INSERT INTO accounts (id, owner) VALUES ($1, $2)', [id, owner]);
}

export async function creditAccount(db: Queryable, id: number, amountCents: number): Promise<number> {
  const { rows } = await db.query(
    'UPDATE accounts SET balance_cents = balance_cents + $2, updated_at = now() WHERE id = $1 RETURNING balance_cents',
    [id, amountCents],
  );
  if (rows.length === 0) throw new Error(`no account ${id}`);
  return Number(rows[0].balance_cents);
}

export async function debitAccount(db: Queryable, id: number, amountCents: number): Promise<number> {
  const { rows } = await db.query(
    `UPDATE accounts SET balance_cents = balance_cents - $2, updated_at = now()
     WHERE id = $1 AND balance_cents >= $2 RETURNING balance_cents`,
    [id, amountCents],
  );
  if (rows.length === 0) throw new InsufficientFunds(`account ${id} cannot pay ${amountCents} cents`);
  return Number(rows[0].balance_cents);
}

export async function createSubscription(db: Queryable, id: string, accountId: number, plan: string): Promise<void> {
  await db.query('INSERT INTO subscriptions (id, account_id, plan) VALUES ($1, $2, $3)', [id, accountId, plan]);
}

export async function activateSubscription(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE subscriptions SET status = 'active', updated_at = now() WHERE id = $1 AND status = 'pending'`,
    [id],
  );
  return rowCount === 1;
}

export async function cancelSubscription(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE subscriptions SET status = 'cancelled', updated_at = now() WHERE id = $1 AND status <> 'cancelled'`,
    [id],
  );
  return rowCount === 1;
}

/**
 * An old admin script nobody remembered: it moves a subscription to another plan with a
 * plain UPDATE, through no service function, so no wrapper sees it.
 */
export async function adminChangePlan(db: Queryable, id: string, plan: string): Promise<void> {
  await db.query(`UPDATE subscriptions SET plan = $2, updated_at = now() WHERE id = $1`, [id, plan]);
}

import { isKnex, type Db, type KnexLike, type PgQueryable } from '../db/queryable.js';
import { SQLSTATE, sqlStateOf } from '../db/sqlState.js';
import { ValidationError } from '../errors.js';
import { checkout } from '../db/checkout.js';

/** What the transaction helper accepts: a pg Pool or Client, or a knex instance or transaction. */
export type TransactionSource = Db;

export type IsolationLevel = 'read committed' | 'repeatable read' | 'serializable';

interface PgPoolLike extends PgQueryable {
  connect(): Promise<PgQueryable & { release(error?: unknown): void }>;
  totalCount: number;
}

interface PgClientLike extends PgQueryable {
  getTransactionStatus?(): string | null;
}

const SAVEPOINT = 'hindsight_capture';

/** Clients whose ROLLBACK failed: their connection state is unknown. */
const unusable = new WeakSet<object>();

/**
 * Runs `fn` in a transaction on whatever the caller holds, and gives it the handle to
 * use for its own statements:
 * - a pg Pool: borrows a client, BEGIN ... COMMIT (ROLLBACK on error), releases it;
 * - a pg Client not in a transaction: BEGIN ... COMMIT on it;
 * - a pg Client inside the caller's BEGIN, or a knex transaction: joins it under a
 *   savepoint, so a failure undoes this part even if the caller goes on, and the
 *   caller's COMMIT decides;
 * - a knex instance: knex.transaction().
 */
export async function runInTransaction<T>(
  db: TransactionSource,
  fn: (db: Db) => Promise<T>,
  options: { isolationLevel?: IsolationLevel } = {},
): Promise<T> {
  const begin = options.isolationLevel ? `BEGIN ISOLATION LEVEL ${isolation(options.isolationLevel)}` : 'BEGIN';
  if (isKnex(db)) {
    const knex = db as KnexLike;
    if (knex.isTransaction) return knex.transaction((trx: KnexLike) => fn(trx)) as Promise<T>;
    const config = options.isolationLevel ? { isolationLevel: options.isolationLevel } : undefined;
    return knex.transaction((trx: KnexLike) => fn(trx), config) as Promise<T>;
  }
  if (isPool(db)) {
    const client = await checkout(db);
    try {
      return await ownTransaction(client, begin, fn);
    } finally {
      // A client whose ROLLBACK failed may be broken: releasing it with `true` makes the pool discard it.
      client.release(unusable.has(client) ? true : undefined);
    }
  }
  const client = db as PgClientLike;
  const status = client.getTransactionStatus?.();
  if (options.isolationLevel && status === 'T') {
    throw new ValidationError(
      `isolationLevel "${options.isolationLevel}" cannot apply: the client is already inside a transaction, whose level was set by its BEGIN`,
    );
  }
  if (status === 'E') {
    throw new ValidationError('the transaction on this client has already failed; roll it back before recording events');
  }
  if (status === 'I') return ownTransaction(client, begin, fn);
  if (status === 'T') return underSavepoint(client, fn);
  // A driver that does not report its status: a savepoint fails outside a transaction.
  try {
    await client.query({ text: `SAVEPOINT ${SAVEPOINT}` });
  } catch (error) {
    if (sqlStateOf(error) === SQLSTATE.NO_ACTIVE_SQL_TRANSACTION) return ownTransaction(client, begin, fn);
    throw error;
  }
  return afterSavepoint(client, fn);
}

async function ownTransaction<T>(client: PgQueryable, begin: string, fn: (db: Db) => Promise<T>): Promise<T> {
  await client.query({ text: begin });
  try {
    const result = await fn(client);
    await client.query({ text: 'COMMIT' });
    return result;
  } catch (error) {
    await client.query({ text: 'ROLLBACK' }).catch(() => unusable.add(client));
    throw error;
  }
}

async function underSavepoint<T>(client: PgQueryable, fn: (db: Db) => Promise<T>): Promise<T> {
  await client.query({ text: `SAVEPOINT ${SAVEPOINT}` });
  return afterSavepoint(client, fn);
}

async function afterSavepoint<T>(client: PgQueryable, fn: (db: Db) => Promise<T>): Promise<T> {
  try {
    const result = await fn(client);
    await client.query({ text: `RELEASE SAVEPOINT ${SAVEPOINT}` });
    return result;
  } catch (error) {
    // Undo this part, then release the savepoint so repeated calls do not pile them up.
    await client
      .query({ text: `ROLLBACK TO SAVEPOINT ${SAVEPOINT}` })
      .then(() => client.query({ text: `RELEASE SAVEPOINT ${SAVEPOINT}` }))
      .catch(() => undefined);
    throw error;
  }
}

function isPool(db: unknown): db is PgPoolLike {
  return typeof (db as PgPoolLike).connect === 'function' && typeof (db as PgPoolLike).totalCount === 'number';
}

function isolation(level: IsolationLevel): string {
  switch (level) {
    case 'read committed':
      return 'READ COMMITTED';
    case 'repeatable read':
      return 'REPEATABLE READ';
    case 'serializable':
      return 'SERIALIZABLE';
    default:
      throw new ValidationError(`isolationLevel must be "read committed", "repeatable read" or "serializable", got ${JSON.stringify(level)}`);
  }
}

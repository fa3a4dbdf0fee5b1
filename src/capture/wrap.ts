import type { Db } from '../db/queryable.js';
import type { AppendInput } from '../store/append.js';
import type { CaptureContext } from './context.js';
import type { Recorder } from './recorder.js';
import type { TransactionSource } from './runInTransaction.js';

/** An existing service function: takes a database handle first, then its own arguments. */
export type ServiceFunction<A extends unknown[], R> = (db: any, ...args: A) => Promise<R>;

export interface WrapOptions<A extends unknown[], R> {
  /**
   * The events the call recorded, derived from its result and arguments: one append,
   * several, or none (undefined or []). If this throws, the function's own writes are
   * rolled back with it.
   */
  events: (result: R, ...args: A) => AppendInput | AppendInput[] | undefined | Promise<AppendInput | AppendInput[] | undefined>;
  /** Context derived from the arguments, merged over the context in effect. */
  context?: (...args: A) => CaptureContext;
}

export type TransactionRunner = <T>(db: TransactionSource, fn: (tx: Recorder) => Promise<T>, options?: { context?: CaptureContext }) => Promise<T>;

/**
 * Turns `(db, ...args) => result` into a function with the same signature that runs the
 * original and records the events derived from its arguments and result in the same
 * transaction, without changing the original's code.
 */
export function wrapServiceFunction<A extends unknown[], R>(
  transaction: TransactionRunner,
  fn: ServiceFunction<A, R>,
  options: WrapOptions<A, R>,
): (db: TransactionSource, ...args: A) => Promise<R> {
  if (typeof fn !== 'function') throw new TypeError('wrap: the first argument must be the service function to wrap');
  if (typeof options?.events !== 'function') throw new TypeError('wrap: options.events must be a function (result, ...args) => events');
  const wrapped = async (db: TransactionSource, ...args: A): Promise<R> =>
    transaction(
      db,
      async (tx) => {
        const result = await fn(tx.db as Db, ...args);
        const derived = await options.events(result, ...args);
        for (const input of derived === undefined ? [] : Array.isArray(derived) ? derived : [derived]) {
          await tx.append(input);
        }
        return result;
      },
      { context: options.context?.(...args) },
    );
  Object.defineProperty(wrapped, 'name', { value: `recorded(${fn.name || 'anonymous'})` });
  return wrapped;
}

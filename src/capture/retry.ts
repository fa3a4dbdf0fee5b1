import { setTimeout as sleep } from 'node:timers/promises';
import { SQLSTATE, sqlStateOf } from '../db/sqlState.js';
import { isConcurrencyError, isDatabaseError } from '../errors.js';

export interface RetryOptions {
  /** Attempts in all, the first included. Default 10. */
  attempts?: number;
  /** First backoff in ms, doubled each retry with jitter. Default 5. */
  backoffMs?: number;
  /** Longest backoff in ms. Default 250. */
  maxBackoffMs?: number;
  /** Called before each retry. */
  onRetry?: (error: unknown, attempt: number) => void;
}

/**
 * A conflict worth retrying: hindsight's ConcurrencyError, or a serialization failure or
 * deadlock from the app's own statements, a hindsight read, or COMMIT.
 */
export function isRetryableConflict(error: unknown): boolean {
  if (isConcurrencyError(error)) return true;
  const state = isDatabaseError(error) ? error.sqlState : sqlStateOf(error);
  return state === SQLSTATE.SERIALIZATION_FAILURE || state === SQLSTATE.DEADLOCK_DETECTED;
}

/**
 * Runs a read-decide-append transaction, and runs it again from the start when it loses
 * a race. `fn` must open its own transaction (for example through `transaction`), since
 * a transaction that hit a conflict can only be rolled back.
 */
export async function retryOnConflict<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 10;
  const base = options.backoffMs ?? 5;
  const max = options.maxBackoffMs ?? 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= attempts || !isRetryableConflict(error)) throw error;
      options.onRetry?.(error, attempt);
      const ceiling = Math.min(max, base * 2 ** (attempt - 1));
      await sleep(ceiling / 2 + Math.random() * (ceiling / 2));
    }
  }
}

import type { Db } from '../db/queryable.js';
import type { AppendInput, AppendResult, NewEvent } from '../store/append.js';
import type { AggregateIdInput, ExpectedVersion } from '../types.js';
import type { CaptureContext } from './context.js';

/** What the transaction helper hands the app's function. */
export interface Recorder {
  /** The transaction's own handle (a pg client or the knex transaction): run the app's statements on it. */
  readonly db: Db;
  /** The context (actor, reason, ...) this transaction's events carry. */
  readonly context: CaptureContext;
  /** Records events for one aggregate in this transaction. */
  append(input: AppendInput): Promise<AppendResult>;
  /** Shorthand for one event. */
  record(
    aggregateType: string,
    aggregateId: AggregateIdInput,
    type: string,
    payload: unknown,
    options?: Omit<NewEvent, 'type' | 'payload'> & { expectedVersion?: ExpectedVersion },
  ): Promise<AppendResult>;
}

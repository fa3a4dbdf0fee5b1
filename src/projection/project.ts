import type { AggregateType } from '../config/resolve.js';
import type { AggregateRef } from '../db/canonicalKey.js';
import type { Sql } from '../db/queryable.js';
import { ValidationError } from '../errors.js';
import { readHead, sequenceAsOf } from '../store/readAggregate.js';
import { forEachAggregateEvent } from '../store/readForFold.js';
import type { StoreTables } from '../store/tables.js';
import { foldInto, initialFold, type Folded } from './fold.js';
import { latestSnapshot } from './snapshots.js';

export interface ProjectAt {
  /** Project as of this time (timestamptz text with an offset): the prefix before the first event after it. */
  asOf?: string;
  /** Project up to and including this sequence. */
  atSequence?: number;
  /**
   * Start from the latest snapshot at or before the point (default true). False folds
   * every event from the first: what a verification that must not trust snapshots wants.
   */
  snapshots?: boolean;
}

export type Projection<S = any> =
  | {
      found: true;
      aggregateId: string;
      state: S;
      version: number;
      deleted: boolean;
      latestVersion: number;
      /** The sequence of the snapshot the fold started from, or null for a cold fold. */
      fromSnapshot: number | null;
    }
  | { found: false; aggregateId: string; reason: 'no-events' | 'no-history-before'; message: string; latestVersion: number };

/**
 * An aggregate's state now, at a sequence, or as of a time. Before the aggregate's first
 * event the answer is "no history before <time>", not the initial state: the legacy row
 * may have existed, hindsight just did not see it.
 */
export async function project(
  sql: Sql,
  tables: StoreTables,
  aggregate: AggregateType,
  ref: AggregateRef,
  at: ProjectAt = {},
): Promise<Projection> {
  if (at.asOf !== undefined && at.atSequence !== undefined) {
    throw new ValidationError('give asOf or atSequence, not both');
  }
  let head: { aggregateId: string; version: number };
  let upTo: number;
  if (at.asOf !== undefined) {
    const asOf = await sequenceAsOf(sql, tables, aggregate, ref, at.asOf);
    head = asOf;
    upTo = asOf.sequence;
    if (head.version > 0 && upTo === 0) {
      return {
        found: false,
        aggregateId: head.aggregateId,
        reason: 'no-history-before',
        message: `no history before ${at.asOf}: the first event of ${aggregate.type} ${head.aggregateId} is later`,
        latestVersion: head.version,
      };
    }
  } else {
    head = await readHead(sql, tables, aggregate, ref);
    if (at.atSequence !== undefined) {
      if (!Number.isSafeInteger(at.atSequence) || at.atSequence < 1) {
        throw new ValidationError(`atSequence must be a whole number from 1, got ${String(at.atSequence)}`, { path: 'atSequence' });
      }
      if (head.version > 0 && at.atSequence > head.version) {
        throw new ValidationError(
          `${aggregate.type} ${head.aggregateId} is at version ${head.version}; there is no sequence ${at.atSequence}`,
          { path: 'atSequence' },
        );
      }
    }
    upTo = at.atSequence ?? head.version;
  }
  if (head.version === 0) {
    return {
      found: false,
      aggregateId: head.aggregateId,
      reason: 'no-events',
      message: `${aggregate.type} ${head.aggregateId} has no events`,
      latestVersion: 0,
    };
  }
  const snapshot = at.snapshots === false ? undefined : await latestSnapshot(sql, tables, aggregate, ref, upTo);
  const folded = await foldFromStore(sql, tables, aggregate, ref, snapshot ?? initialFold(aggregate), upTo);
  return { found: true, aggregateId: head.aggregateId, ...folded, latestVersion: head.version, fromSnapshot: snapshot?.version ?? null };
}

/** `start` folded on with the aggregate's stored events up to `upTo`, each folded as it is read. */
export async function foldFromStore(sql: Sql, tables: StoreTables, aggregate: AggregateType, ref: AggregateRef, start: Folded, upTo: number): Promise<Folded> {
  const folded = { ...start };
  if (start.version < upTo) {
    await forEachAggregateEvent(sql, tables, aggregate, ref, start.version + 1, upTo, (event) => foldInto(aggregate, folded, event));
  }
  return folded;
}

import type { ProjectedEvent } from '../types.js';

/**
 * The per-aggregate order contract, for any subscriber of the gap-safe global read. That
 * read can deliver an aggregate's sequence n+1 before n (a transfer: the transaction that
 * wrote n+1 took its id first), so events are applied per aggregate strictly by sequence:
 * on receiving s while at r < s-1, the events r+1..s are read from the store; s <= r is
 * skipped. The result is, per aggregate, the contiguous run of events to apply next.
 */

export interface AggregateKey {
  aggregateType: string;
  aggregateId: string;
}

export interface AggregateRun<E extends ProjectedEvent = ProjectedEvent> extends AggregateKey {
  /** The sequence already applied before this run (0 for none). */
  from: number;
  /** Sequences from+1, from+2, ... without gaps. */
  events: E[];
}

/** What the subscriber has applied, per aggregate (absent: nothing). */
export type AppliedUpTo = (aggregates: AggregateKey[]) => Promise<Map<string, number>>;
/** Reads sequences from..to (inclusive) of one aggregate from the store. */
export type FetchRange<E extends ProjectedEvent = ProjectedEvent> = (aggregate: AggregateKey, from: number, to: number) => Promise<E[]>;

export function aggregateKey(aggregate: AggregateKey): string {
  return `${aggregate.aggregateType}\u0000${aggregate.aggregateId}`;
}

export async function inAggregateOrder<E extends ProjectedEvent>(page: readonly E[], appliedUpTo: AppliedUpTo, fetch: FetchRange<E>): Promise<AggregateRun<E>[]> {
  const byAggregate = new Map<string, E[]>();
  for (const event of page) {
    const key = aggregateKey(event);
    let events = byAggregate.get(key);
    if (!events) byAggregate.set(key, (events = []));
    events.push(event);
  }
  const keys = [...byAggregate.values()].map(([first]) => ({ aggregateType: first!.aggregateType, aggregateId: first!.aggregateId }));
  const applied = await appliedUpTo(keys);
  const runs: AggregateRun<E>[] = [];
  for (const key of keys) {
    const received = byAggregate.get(aggregateKey(key))!.sort((a, b) => a.sequence - b.sequence);
    const from = applied.get(aggregateKey(key)) ?? 0;
    const target = received[received.length - 1]!.sequence;
    if (target <= from) continue;
    const fresh = received.filter((e) => e.sequence > from);
    const contiguous = fresh.every((e, i) => e.sequence === from + 1 + i) && fresh.length === target - from;
    const events = contiguous ? fresh : await fetch(key, from + 1, target);
    if (events.length !== target - from || events.some((e, i) => e.sequence !== from + 1 + i)) {
      throw new Error(`internal: ${key.aggregateType} ${key.aggregateId} has no contiguous events ${from + 1}..${target} in the store`);
    }
    runs.push({ ...key, from, events });
  }
  return runs;
}

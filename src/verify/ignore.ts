import type { AggregateType, IgnoreRule } from '../config/resolve.js';

/** Ignore rules: known divergences, each with a reason and a last day. */

/** The type's rules whose last day is before `today` (YYYY-MM-DD, the server's date). */
export function expiredRules(aggregate: AggregateType, today: string): IgnoreRule[] {
  return aggregate.verify.ignore.filter((rule) => rule.expires < today);
}

/** The rule covering a whole aggregate, if any. */
export function aggregateRule(aggregate: AggregateType, aggregateId: string): IgnoreRule | undefined {
  return aggregate.verify.ignore.find((rule) => rule.field === undefined && (!rule.ids || rule.ids.has(aggregateId)));
}

/** The rule covering one field of an aggregate, if any. */
export function fieldRule(aggregate: AggregateType, aggregateId: string, field: string): IgnoreRule | undefined {
  return aggregate.verify.ignore.find((rule) => rule.field === field && (!rule.ids || rule.ids.has(aggregateId)));
}

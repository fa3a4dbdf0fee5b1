import { aggregateTypeOf, type ResolvedConfig } from '../config/resolve.js';
import { UsageError } from '../errors.js';
import type { AggregateIdInput } from '../types.js';

/** A CLI id: the text itself for a one-column key, a JSON array for a composite key. */
export function cliAggregateId(config: ResolvedConfig, aggregateType: string, raw: string): AggregateIdInput {
  const aggregate = aggregateTypeOf(config, aggregateType);
  if (aggregate.key.length === 1) return raw;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  const columns = aggregate.key.map((k) => k.column).join(', ');
  if (!Array.isArray(parsed) || parsed.some((v) => typeof v !== 'string' && typeof v !== 'number')) {
    throw new UsageError(`${aggregateType} has a composite key (${columns}): give the id as a JSON array, e.g. '["eu", 42]'`);
  }
  return parsed.map((v) => String(v));
}

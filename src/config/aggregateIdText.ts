import { ValidationError } from '../errors.js';
import { aggregateTypeOf, type ResolvedConfig } from './resolve.js';
import type { AggregateIdInput } from '../types.js';

/**
 * An aggregate id typed by a person (a command line, a console form): the text itself for
 * a one-column key, a JSON array for a composite key. The canonical key is computed from
 * it by the database, like every other id.
 */
export function aggregateIdFromText(config: ResolvedConfig, aggregateType: string, raw: string): AggregateIdInput {
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
    throw new ValidationError(`${aggregateType} has a composite key (${columns}): give the id as a JSON array, e.g. '["eu", 42]'`, { path: 'id' });
  }
  return parsed.map((v) => String(v));
}

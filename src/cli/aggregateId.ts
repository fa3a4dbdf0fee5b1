import { aggregateIdFromText } from '../config/aggregateIdText.js';
import type { ResolvedConfig } from '../config/resolve.js';
import { UsageError, isValidationError } from '../errors.js';
import type { AggregateIdInput } from '../types.js';

/** A CLI id: the text itself for a one-column key, a JSON array for a composite key (a usage error otherwise). */
export function cliAggregateId(config: ResolvedConfig, aggregateType: string, raw: string): AggregateIdInput {
  try {
    return aggregateIdFromText(config, aggregateType, raw);
  } catch (error) {
    if (isValidationError(error)) throw new UsageError(error.message);
    throw error;
  }
}

import { aggregateIdFromText } from '../config/aggregateIdText.js';
import type { AggregateType, ResolvedConfig } from '../config/resolve.js';
import { ValidationError, isValidationError } from '../errors.js';
import { checkTimeZone, parseCliTime } from '../time.js';
import type { AggregateIdInput } from '../types.js';

/**
 * The console's query parameters, checked the way the CLI checks its flags: a value that
 * is wrong throws a ValidationError saying which parameter and what it should be, and the
 * page becomes a 400 that says so. Values are only ever bound as query parameters.
 */

/** A parameter's trimmed text; an empty field counts as absent. */
export function optional(url: URL, name: string): string | undefined {
  const value = url.searchParams.get(name)?.trim();
  return value ? value : undefined;
}

export function required(url: URL, name: string, what: string): string {
  const value = optional(url, name);
  if (value === undefined) throw new ValidationError(`the parameter "${name}" is required: ${what}`, { path: name });
  return value;
}

/** The `type` parameter: one of the config's aggregate types. */
export function aggregateParam(config: ResolvedConfig, url: URL): AggregateType {
  const type = required(url, 'type', 'an aggregate type of the config');
  return knownType(config, type);
}

export function knownType(config: ResolvedConfig, type: string): AggregateType {
  const aggregate = config.aggregates.get(type);
  if (!aggregate) {
    const known = [...config.aggregates.keys()];
    throw new ValidationError(`unknown aggregate type "${type}"; the config declares ${known.length ? known.join(', ') : 'none'}`, { path: 'type' });
  }
  return aggregate;
}

/** The `id` parameter: the key's text, or a JSON array for a composite key. */
export function idParam(config: ResolvedConfig, aggregate: AggregateType, url: URL): AggregateIdInput {
  const what = aggregate.key.length > 1 ? `the id, a JSON array of ${aggregate.key.map((k) => k.column).join(', ')}` : `the id (${aggregate.key[0]!.column})`;
  return aggregateIdFromText(config, aggregate.type, required(url, 'id', what));
}

/** The `tz` parameter (default UTC): bare dates are midnight there, and times are shown there. */
export function timeZoneParam(url: URL): string {
  return checkTimeZone(optional(url, 'tz') ?? 'UTC');
}

/**
 * A time parameter: ISO-8601 with an offset, or a bare date or date-time in `tz`. With
 * `wholeDay` (the end of a range) a bare date includes that whole day, as on the CLI.
 */
export function timeParam(url: URL, name: string, tz: string, options: { wholeDay?: boolean } = {}): string | undefined {
  const text = optional(url, name);
  if (text === undefined) return undefined;
  try {
    return parseCliTime(text, tz, options);
  } catch (error) {
    if (isValidationError(error)) throw new ValidationError(`${name}: ${error.message.replace(/^time: /, '')}`, { path: name });
    throw error;
  }
}

/** A whole number from 1 (a sequence, a run id, a page). */
export function wholeNumberParam(url: URL, name: string): number | undefined {
  const text = optional(url, name);
  if (text === undefined) return undefined;
  if (!/^[1-9]\d{0,15}$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new ValidationError(`${name} must be a whole number from 1, got ${JSON.stringify(text)}`, { path: name });
  }
  return Number(text);
}

import { ValidationError } from '../errors.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function stringProblem(s: string): string | undefined {
  if (s.includes('\u0000')) return 'contains a NUL character (\\u0000), which PostgreSQL jsonb cannot store';
  if (LONE_SURROGATE.test(s)) return 'contains an unpaired UTF-16 surrogate, which is not valid Unicode';
  return undefined;
}

/**
 * Serialises a payload or metadata value to JSON text for a jsonb parameter, refusing
 * what JSON or jsonb would silently change or reject: bigints, NaN and Infinity (JSON
 * writes null), functions and symbols (dropped), NUL characters and lone surrogates
 * (jsonb errors, aborting the caller's transaction). Dates become ISO strings, as in
 * JSON.stringify. `where` names the value in the error (e.g. `payload`).
 */
export function toJsonText(value: unknown, where: string): string {
  if (value === undefined) throw new ValidationError(`${where} is missing`, { path: where });
  check(value, where, new Set());
  return JSON.stringify(value);
}

function check(value: unknown, path: string, seen: Set<object>): void {
  switch (typeof value) {
    case 'string': {
      const problem = stringProblem(value);
      if (problem) throw new ValidationError(`${path} ${problem}`, { path });
      return;
    }
    case 'number':
      if (!Number.isFinite(value)) {
        throw new ValidationError(`${path} is ${value}, which JSON cannot represent`, { path });
      }
      return;
    case 'boolean':
      return;
    case 'bigint':
      throw new ValidationError(
        `${path} is a bigint (${value}n), which JSON cannot carry exactly; store it as a string`,
        { path },
      );
    case 'undefined':
      return;
    case 'function':
    case 'symbol':
      throw new ValidationError(`${path} is a ${typeof value}, which JSON cannot carry`, { path });
    case 'object': {
      if (value === null || value instanceof Date) return;
      if (seen.has(value)) throw new ValidationError(`${path} refers to itself`, { path });
      seen.add(value);
      if (Array.isArray(value)) {
        value.forEach((item, i) => check(item, `${path}[${i}]`, seen));
      } else {
        for (const [key, item] of Object.entries(value)) {
          const problem = stringProblem(key);
          if (problem) throw new ValidationError(`${path} has a key that ${problem}`, { path });
          check(item, `${path}.${key}`, seen);
        }
      }
      seen.delete(value);
      return;
    }
  }
}

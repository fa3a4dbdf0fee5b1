import { UsageError } from '../errors.js';
import type { ExpectedVersion } from '../types.js';

/** Option values checked one by one, each refused with a message naming the flag and what it takes. */

export function positiveNumber(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, got ${JSON.stringify(value)}`);
  return n;
}

export function nonNegativeNumber(value: string, flag: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`${flag} must be a number of 0 or more, got ${JSON.stringify(value)}`);
  return n;
}

export function wholeNumber(value: string, flag: string): number {
  if (!/^[1-9]\d*$/.test(value)) throw new UsageError(`${flag} must be a whole number from 1, got ${JSON.stringify(value)}`);
  return Number(value);
}

export function wholeNumberOrZero(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

export function parseJson(value: string, flag: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch (error) {
    throw new UsageError(`${flag} is not valid JSON (${(error as Error).message}); quote it, e.g. --payload '{"amount":100}'`);
  }
}

export function parseExpectedVersion(value: string): ExpectedVersion {
  if (value === 'any' || value === 'none' || value === 'exists') return value;
  if (/^\d+$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value);
  throw new UsageError(`--expected-version must be a whole number, any, none or exists; got ${JSON.stringify(value)}`);
}

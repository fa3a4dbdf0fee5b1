import { DatabaseError, isHindsightError } from '../errors.js';
import { redactUrl } from './redactUrl.js';
import { sqlStateOf } from './sqlState.js';

/**
 * Wraps a driver error as a DatabaseError whose message says what hindsight was doing,
 * keeps the SQLSTATE, and never carries a password (drivers echo connection strings).
 * hindsight's own errors pass through unchanged.
 */
export function describeDatabaseError(error: unknown, doing: string): Error {
  if (isHindsightError(error)) return error;
  const sqlState = sqlStateOf(error);
  const raw = error instanceof Error ? error.message : String(error);
  const message = redactUrl(raw || (error as { code?: string })?.code || 'unknown error');
  const connection = /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EAI_AGAIN|timeout expired|Connection terminated/i.test(message);
  const hint = connection ? ' (is the server running and the URL right?)' : '';
  return new DatabaseError(`${doing} failed: ${message}${sqlState ? ` [SQLSTATE ${sqlState}]` : ''}${hint}`, {
    sqlState,
    cause: error,
  });
}

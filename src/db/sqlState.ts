/** The SQLSTATEs hindsight branches on, by name. Read `error.code`, never the message. */
export const SQLSTATE = {
  UNIQUE_VIOLATION: '23505',
  SERIALIZATION_FAILURE: '40001',
  DEADLOCK_DETECTED: '40P01',
  NO_ACTIVE_SQL_TRANSACTION: '25P01',
  IN_FAILED_SQL_TRANSACTION: '25P02',
  INVALID_TEXT_REPRESENTATION: '22P02',
  NUMERIC_VALUE_OUT_OF_RANGE: '22003',
  UNDEFINED_TABLE: '42P01',
  UNDEFINED_FUNCTION: '42883',
  INVALID_SCHEMA_NAME: '3F000',
  INVALID_CATALOG_NAME: '3D000',
  INSUFFICIENT_PRIVILEGE: '42501',
  OBJECT_IN_USE: '55006',
  LOCK_NOT_AVAILABLE: '55P03',
  QUERY_CANCELED: '57014',
  CANNOT_CONNECT_NOW: '57P03',
  ADMIN_SHUTDOWN: '57P01',
  /** Raised by hindsight's own trigger when something tries to change a stored event. */
  APPEND_ONLY_VIOLATION: 'HS001',
} as const;

export function sqlStateOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

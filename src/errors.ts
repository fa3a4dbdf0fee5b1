/**
 * The errors hindsight throws. Each carries a stable `code`; callers branch on
 * the code through the `isXError` guards, never on `instanceof` (a config file
 * loaded through a TS loader can hold a second copy of this module) and never on
 * the message text. Only the CLI turns them into output and exit codes.
 */

export type HindsightErrorCode =
  | 'HINDSIGHT_CONFIG'
  | 'HINDSIGHT_VALIDATION'
  | 'HINDSIGHT_CONCURRENCY'
  | 'HINDSIGHT_NOT_FOUND'
  | 'HINDSIGHT_DATABASE'
  | 'HINDSIGHT_EMBEDDED'
  | 'HINDSIGHT_USAGE'
  | 'HINDSIGHT_RESTORED_CLUSTER'
  | 'HINDSIGHT_GATE_CLOSED';

const BRAND = Symbol.for('hindsight.error');

export class HindsightError extends Error {
  readonly code: HindsightErrorCode;
  readonly [BRAND] = true;

  constructor(code: HindsightErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A bad config file: names the failing key, what was expected and what was given. */
export class ConfigError extends HindsightError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('HINDSIGHT_CONFIG', message, options);
  }
}

/** Bad input to an API call: a payload failing its schema, an unknown event type, a bad key. */
export class ValidationError extends HindsightError {
  /** Where in the input the problem is, e.g. `payload.amount`. */
  readonly path: string | undefined;

  constructor(message: string, options?: { path?: string; cause?: unknown }) {
    super('HINDSIGHT_VALIDATION', message, options);
    this.path = options?.path;
  }
}

export type Expected = number | 'any' | 'none' | 'exists';

/**
 * An append lost a race: the aggregate's version was not what the caller expected,
 * or the database refused the transaction as a serialization failure or deadlock.
 * Always retryable by re-running the whole read-decide-append transaction.
 */
export class ConcurrencyError extends HindsightError {
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly expected: Expected;
  /** The version found; `undefined` when the database did not say (serialization failure). */
  readonly actual: number | undefined;
  readonly retryable = true;

  constructor(input: {
    aggregateType: string;
    aggregateId: string;
    expected: Expected;
    actual: number | undefined;
    reason?: string;
    cause?: unknown;
  }) {
    const actualText = input.actual === undefined ? 'changed concurrently' : `is at version ${input.actual}`;
    super(
      'HINDSIGHT_CONCURRENCY',
      `${input.aggregateType} ${input.aggregateId}: expected version ${String(input.expected)}, but it ${actualText}` +
        (input.reason ? ` (${input.reason})` : '') +
        '; re-read the aggregate and retry the transaction (see retryOnConflict)',
      { cause: input.cause },
    );
    this.aggregateType = input.aggregateType;
    this.aggregateId = input.aggregateId;
    this.expected = input.expected;
    this.actual = input.actual;
  }
}

export class NotFoundError extends HindsightError {
  constructor(message: string) {
    super('HINDSIGHT_NOT_FOUND', message);
  }
}

/** The database refused or could not be reached; the message never holds a password. */
export class DatabaseError extends HindsightError {
  readonly sqlState: string | undefined;

  constructor(message: string, options?: { sqlState?: string; cause?: unknown }) {
    super('HINDSIGHT_DATABASE', message, options);
    this.sqlState = options?.sqlState;
  }
}

/** The embedded PostgreSQL could not be set up, started or stopped. */
export class EmbeddedServerError extends HindsightError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('HINDSIGHT_EMBEDDED', message, options);
  }
}

/** A bad command line: the CLI prints the message with a pointer to --help and exits 2. */
export class UsageError extends HindsightError {
  constructor(message: string) {
    super('HINDSIGHT_USAGE', message);
  }
}

/**
 * Stored transaction ids are above the server's next one: the database was restored
 * into another cluster, and the gap-safe global read would skip every new event until
 * the ids are re-based (see the README).
 */
export class RestoredClusterError extends HindsightError {
  constructor(message: string) {
    super('HINDSIGHT_RESTORED_CLUSTER', message);
  }
}

/** The cut-over gate refused a switch: the message lists every unmet check. The CLI exits 1. */
export class GateClosedError extends HindsightError {
  constructor(message: string) {
    super('HINDSIGHT_GATE_CLOSED', message);
  }
}

function hasCode(e: unknown, code: HindsightErrorCode): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code && BRAND in e;
}

export const isHindsightError = (e: unknown): e is HindsightError =>
  typeof e === 'object' && e !== null && BRAND in e;
export const isConfigError = (e: unknown): e is ConfigError => hasCode(e, 'HINDSIGHT_CONFIG');
export const isValidationError = (e: unknown): e is ValidationError => hasCode(e, 'HINDSIGHT_VALIDATION');
export const isConcurrencyError = (e: unknown): e is ConcurrencyError => hasCode(e, 'HINDSIGHT_CONCURRENCY');
export const isNotFoundError = (e: unknown): e is NotFoundError => hasCode(e, 'HINDSIGHT_NOT_FOUND');
export const isDatabaseError = (e: unknown): e is DatabaseError => hasCode(e, 'HINDSIGHT_DATABASE');
export const isUsageError = (e: unknown): e is UsageError => hasCode(e, 'HINDSIGHT_USAGE');
export const isRestoredClusterError = (e: unknown): e is RestoredClusterError => hasCode(e, 'HINDSIGHT_RESTORED_CLUSTER');
export const isEmbeddedServerError = (e: unknown): e is EmbeddedServerError => hasCode(e, 'HINDSIGHT_EMBEDDED');
export const isGateClosedError = (e: unknown): e is GateClosedError => hasCode(e, 'HINDSIGHT_GATE_CLOSED');

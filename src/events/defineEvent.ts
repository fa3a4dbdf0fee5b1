import { ValidationError } from '../errors.js';

/**
 * The part of a zod schema hindsight uses. Typed structurally so that a config file
 * with its own copy of zod (loaded through a TS loader) works the same.
 */
export interface PayloadSchema<T> {
  safeParse(input: unknown): { success: true; data: T } | { success: false; error: { issues: ReadonlyArray<SchemaIssue> } };
}
interface SchemaIssue {
  path: ReadonlyArray<PropertyKey>;
  message: string;
}

/** Turns a payload stored at an older schema version into the next version's shape. */
export type Upcaster = (payload: unknown) => unknown;

export interface EventDefinition<T = unknown> {
  readonly [EVENT_DEFINITION]: true;
  readonly type: string;
  readonly schema: PayloadSchema<T>;
  /** The current schema version, stored on every event appended with this definition. */
  readonly version: number;
  /** `upcasters[v]` turns a version-v payload into version v+1; stored events are never rewritten. */
  readonly upcasters: Readonly<Record<number, Upcaster>>;
  readonly description: string | undefined;
}

export interface DefineEventOptions {
  /** Schema version of the payload this definition validates. Default 1. */
  version?: number;
  upcasters?: Record<number, Upcaster>;
  description?: string;
}

export const EVENT_DEFINITION = Symbol.for('hindsight.eventDefinition');

/**
 * Event types are names such as `account.credited`; generic ones start with the table
 * name (`accounts.updated`), which may hold any character a quoted identifier can. So
 * only what would make a type unreadable is refused: white space, control characters,
 * an empty name, more than 200 characters.
 */
const EVENT_TYPE = /^[^\s\p{Cc}]{1,200}$/u;

export function eventTypeProblem(type: unknown): string | undefined {
  if (typeof type !== 'string' || !EVENT_TYPE.test(type)) {
    return `${JSON.stringify(type)} is not a valid event type: use a name such as "account.credited", without spaces or control characters, at most 200 characters`;
  }
  return undefined;
}

/**
 * Declares an event type: its name, the zod schema of its payload and the payload's
 * schema version. Appends validate against the schema; a failing payload throws a
 * ValidationError naming the event type and the failing path, and writes nothing.
 */
export function defineEvent<T>(type: string, schema: PayloadSchema<T>, options: DefineEventOptions = {}): EventDefinition<T> {
  const problem = eventTypeProblem(type);
  if (problem) throw new ValidationError(problem);
  if (!schema || typeof schema.safeParse !== 'function') {
    throw new ValidationError(`defineEvent("${type}"): the second argument must be a zod schema`);
  }
  const version = options.version ?? 1;
  if (!Number.isInteger(version) || version < 1) {
    throw new ValidationError(`defineEvent("${type}"): version must be a whole number from 1, got ${String(version)}`);
  }
  const upcasters = options.upcasters ?? {};
  for (const [from, fn] of Object.entries(upcasters)) {
    const v = Number(from);
    if (!Number.isInteger(v) || v < 1 || v >= version || typeof fn !== 'function') {
      throw new ValidationError(
        `defineEvent("${type}"): upcasters must map older versions 1..${version - 1} to functions; got key ${from}`,
      );
    }
  }
  return Object.freeze({
    [EVENT_DEFINITION]: true as const,
    type,
    schema,
    version,
    upcasters: Object.freeze({ ...upcasters }),
    description: options.description,
  });
}

export function isEventDefinition(value: unknown): value is EventDefinition {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[EVENT_DEFINITION] === true;
}

/**
 * Validates a payload; the error names the event type and every failing path, and its
 * `path` is the first one, under `where` (e.g. `events[0].payload.amount`).
 */
export function validatePayload<T>(definition: EventDefinition<T>, payload: unknown, where = 'payload'): T {
  const result = definition.schema.safeParse(payload);
  if (result.success) return result.data;
  const pathOf = (issue: SchemaIssue) => [where, ...issue.path.map(String)].join('.');
  const all = result.error.issues.map((issue) => `${pathOf(issue)}: ${issue.message}`);
  const first = result.error.issues[0];
  throw new ValidationError(`invalid ${definition.type} event: ${all.join('; ')}`, { path: first ? pathOf(first) : where });
}

import type { AggregateType } from '../config/resolve.js';
import { canonicalKeySql, displayId, keyParameters } from '../db/canonicalKey.js';
import type { Sql } from '../db/queryable.js';
import { ValidationError } from '../errors.js';
import { validatePayload } from '../events/defineEvent.js';
import { toJsonText } from '../events/json.js';
import { toTimestampParam } from '../time.js';
import type { AggregateIdInput, EventMetadata, ExpectedVersion } from '../types.js';
import { appendEvents, rowArrays, type AppendRow } from './appendEvents.js';
import { newEventId } from './eventId.js';
import type { StoreTables } from './tables.js';

export interface NewEvent {
  /** A type declared for the aggregate (a domain event or one of its table's generic events). */
  type: string;
  payload: unknown;
  /** Added to the transaction context's metadata (actor, reason, ...); wins on conflicts. */
  metadata?: EventMetadata;
  /** Business time: a Date or ISO-8601 with an offset. Default: the transaction's now(). */
  occurredAt?: Date | string;
  /** A UUID chosen by the caller (for idempotent retries); default a random one. */
  eventId?: string;
}

export interface AppendInput {
  aggregateType: string;
  aggregateId: AggregateIdInput;
  events: NewEvent[];
  /** Default "any". */
  expectedVersion?: ExpectedVersion;
}

export interface AppendResult {
  aggregateType: string;
  /** The canonical id as stored. */
  aggregateId: string;
  eventIds: string[];
  /** Sequences of the appended events, in order; empty when staged. */
  sequences: number[];
  /** The aggregate's version after the append; undefined when staged. */
  version: number | undefined;
  /**
   * True for a capture "both" type: the events were staged in the caller's transaction and
   * the listener appends them with its row changes; `waitForAppended(eventIds)` waits for that.
   */
  staged: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Validates every event of an append before anything is sent: a payload failing its
 * schema, an unknown type, bad metadata or a bad time throws a ValidationError and
 * writes nothing (and does not abort the caller's transaction).
 */
export function prepareRows(aggregate: AggregateType, events: readonly NewEvent[], baseMetadata: EventMetadata): AppendRow[] {
  if (!Array.isArray(events) || events.length === 0) {
    throw new ValidationError(`append to ${aggregate.type}: events must be a non-empty array`, { path: 'events' });
  }
  return events.map((event, index) => {
    const at = `events[${index}]`;
    const definition = aggregate.events.get(event?.type);
    if (!definition) {
      const known = [...aggregate.events.keys()].join(', ');
      throw new ValidationError(
        `${at}: ${JSON.stringify(event?.type)} is not an event type of ${aggregate.type}; declared: ${known}`,
        { path: `${at}.type` },
      );
    }
    const payload = validatePayload(definition, event.payload, `${at}.payload`);
    const metadata = { ...baseMetadata, ...(event.metadata ?? {}) };
    if (event.metadata !== undefined && (typeof event.metadata !== 'object' || event.metadata === null || Array.isArray(event.metadata))) {
      throw new ValidationError(`${at}.metadata must be an object`, { path: `${at}.metadata` });
    }
    if (aggregate.requireActor && (typeof metadata.actor !== 'string' || metadata.actor.trim() === '')) {
      throw new ValidationError(
        `${at}: ${aggregate.type} requires an actor; set one with withContext({ actor }) or the transaction's context`,
        { path: `${at}.metadata.actor` },
      );
    }
    if (event.eventId !== undefined && (typeof event.eventId !== 'string' || !UUID.test(event.eventId))) {
      throw new ValidationError(`${at}.eventId must be a UUID, got ${JSON.stringify(event.eventId)}`, { path: `${at}.eventId` });
    }
    return {
      eventId: event.eventId ?? newEventId(),
      type: definition.type,
      schemaVersion: definition.version,
      payload: toJsonText(payload, `${at}.payload`),
      metadata: toJsonText(metadata, `${at}.metadata`),
      occurredAt: event.occurredAt === undefined ? null : toTimestampParam(event.occurredAt, `${at}.occurredAt`),
      source: 'app',
      sourceCommitLsn: null,
      sourceOrdinal: null,
      sourceXid: null,
    };
  });
}

export function checkExpectedVersion(expected: unknown): ExpectedVersion {
  if (expected === undefined) return 'any';
  if (expected === 'any' || expected === 'none' || expected === 'exists') return expected;
  if (typeof expected === 'number' && Number.isSafeInteger(expected) && expected >= 0) return expected;
  throw new ValidationError(
    `expectedVersion must be a whole number from 0, "any", "none" or "exists"; got ${JSON.stringify(expected)}`,
    { path: 'expectedVersion' },
  );
}

/** Appends events to one aggregate inside the caller's transaction (or as one statement). */
export async function append(
  sql: Sql,
  tables: StoreTables,
  aggregate: AggregateType,
  input: AppendInput,
  baseMetadata: EventMetadata = {},
): Promise<AppendResult> {
  if (aggregate.capture === 'both') return stage(sql, tables, aggregate, input, baseMetadata);
  if (aggregate.capture === 'listener') {
    // Only the listener writes these: an app event would race the row changes for sequence order.
    throw new ValidationError(
      `aggregate type ${aggregate.type} has capture "listener": its events come from its table's row changes. To say who did it and why, call recordContext in the same transaction`,
      { path: 'aggregateType' },
    );
  }
  const expected = checkExpectedVersion(input.expectedVersion);
  const keyParams = keyParameters(aggregate.type, aggregate.key, input.aggregateId);
  const rows = prepareRows(aggregate, input.events, baseMetadata);
  const outcome = await appendEvents(sql, tables, aggregate, keyParams, displayId(input.aggregateId), rows, expected);
  return {
    aggregateType: aggregate.type,
    aggregateId: outcome.aggregateId,
    eventIds: rows.map((r) => r.eventId),
    sequences: rows.map((_, i) => outcome.fromVersion + i + 1),
    version: outcome.toVersion,
    staged: false,
  };
}

/**
 * Capture "both": stages the whole events in the caller's transaction (canonical id
 * computed in SQL, payload validated, metadata, business time, the transaction's id); the
 * listener appends them, in commit order with the row changes. Only expected version
 * "any" makes sense (the legacy row lock orders the writers), and nothing is staged
 * before the listener's slot exists: events staged earlier would never reach the stream.
 */
async function stage(sql: Sql, tables: StoreTables, aggregate: AggregateType, input: AppendInput, baseMetadata: EventMetadata): Promise<AppendResult> {
  const expected = checkExpectedVersion(input.expectedVersion);
  if (expected !== 'any') {
    throw new ValidationError(
      `aggregate type ${aggregate.type} has capture "both": its events are appended by the listener in commit order, so the expected version must be "any" (got ${JSON.stringify(expected)}); the legacy row lock already orders the writers`,
      { path: 'expectedVersion' },
    );
  }
  const keyParams = keyParameters(aggregate.type, aggregate.key, input.aggregateId);
  const rows = prepareRows(aggregate, input.events, baseMetadata);
  const key = canonicalKeySql(aggregate.key, aggregate.key.map((_, i) => `$${8 + i}::text`));
  // One INSERT in the common case. Nothing is staged before the type's baseline exists,
  // and an id already in the log (a retry after an unclear commit) is refused: the listener
  // could not append it. When nothing was staged, a second query says which it was.
  const staged = await sql.query<{ aggregate_id: string }>(
    `INSERT INTO ${tables.stagedEvents} (event_id, aggregate_type, aggregate_id, event_type, schema_version, payload, metadata, occurred_at)
     SELECT s.event_id::uuid, $1::text, ${key}, s.event_type, s.schema_version, s.payload::jsonb, s.metadata::jsonb, coalesce(s.occurred_at::timestamptz, now())
     FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS s(event_id, event_type, schema_version, payload, metadata, occurred_at, n)
     WHERE EXISTS (SELECT 1 FROM ${tables.baselines} b JOIN ${tables.replicationState} r ON r.slot_name = b.slot_name WHERE b.aggregate_type = $1::text AND b.status = 'done')
       AND NOT EXISTS (SELECT 1 FROM ${tables.events} e WHERE e.event_id = ANY($2::text[]::uuid[]))
     ORDER BY s.n
     RETURNING aggregate_id`,
    [aggregate.type, ...rowArrays(rows).slice(0, 6), ...keyParams], // the first six: id, type, version, payload, metadata, time
  );
  if (staged.length === 0) {
    const [known] = await sql.query<{ event_id: string }>(`SELECT event_id::text FROM ${tables.events} WHERE event_id = ANY($1::uuid[]) LIMIT 1`, [rows.map((r) => r.eventId)]);
    if (known) {
      throw new ValidationError(`event ${known.event_id} is already in the event log: give a retried event a new id, or treat it as recorded`, { path: 'events[].eventId' });
    }
    throw new ValidationError(
      `aggregate type ${aggregate.type} has capture "both" but its listener slot and baseline do not exist yet: run "hindsight replication setup" and "hindsight backfill" before switching the wrappers on`,
      { path: 'aggregateType' },
    );
  }
  return { aggregateType: aggregate.type, aggregateId: staged[0]!.aggregate_id, eventIds: rows.map((r) => r.eventId), sequences: [], version: undefined, staged: true };
}

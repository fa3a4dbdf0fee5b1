import type { AggregateType } from '../config/resolve.js';
import type { AggregateRef } from '../db/canonicalKey.js';
import type { Sql } from '../db/queryable.js';
import { readHead, readThroughRange } from '../store/readAggregate.js';
import type { StoreTables } from '../store/tables.js';
import type { StoredEvent } from '../types.js';
import { foldEvents, initialFold, type Folded } from './fold.js';

export interface FieldChange {
  field: string;
  from: unknown;
  to: unknown;
}

export interface LedgerEntry {
  event: StoredEvent;
  /** The fields of the projected state this event changed. */
  changes: FieldChange[];
}

export interface Ledger {
  aggregateType: string;
  aggregateId: string;
  entries: LedgerEntry[];
  /** The aggregate's current version (its whole history, not only the range). */
  version: number;
}

/**
 * "What happened?": the events of an aggregate that occurred in [from, to), in sequence
 * order, each with the fields of the projected state it changed, from what to what.
 * States are folded from the first event, so changes are exact whatever the range.
 */
export async function history(
  sql: Sql,
  tables: StoreTables,
  aggregate: AggregateType,
  ref: AggregateRef,
  range: { from?: string; to?: string } = {},
): Promise<Ledger> {
  const head = await readHead(sql, tables, aggregate, ref);
  const base = { aggregateType: aggregate.type, aggregateId: head.aggregateId, version: head.version };
  if (head.version === 0) return { ...base, entries: [] };
  const entries: LedgerEntry[] = [];
  let folded: Folded = initialFold(aggregate);
  for (const { event, inRange } of await readThroughRange(sql, tables, aggregate, ref, range)) {
    // Handlers may mutate the state they are given: fold a copy so `folded` stays the "before".
    const next = foldEvents(aggregate, [event], { ...folded, state: structuredClone(folded.state) });
    if (inRange) entries.push({ event, changes: diffStates(folded, next) });
    folded = next;
  }
  return { ...base, entries };
}

/** Top-level fields whose values differ (compared structurally), plus a change of the deleted flag. */
export function diffStates(before: Folded, after: Folded): FieldChange[] {
  const changes: FieldChange[] = [];
  const a = before.state;
  const b = after.state;
  if (isRecord(a) && isRecord(b)) {
    const fields = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const field of fields) {
      if (!sameValue(a[field], b[field])) changes.push({ field, from: a[field], to: b[field] });
    }
  } else if (!sameValue(a, b)) {
    changes.push({ field: '(state)', from: a, to: b });
  }
  if (before.deleted !== after.deleted) changes.push({ field: '(deleted)', from: before.deleted, to: after.deleted });
  return changes;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function sameValue(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

/** A structural encoding with sorted keys; Dates and bigints by value. */
function canonical(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Date) return `date:${value.toISOString()}`;
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isRecord(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? String(value);
}

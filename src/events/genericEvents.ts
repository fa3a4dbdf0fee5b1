import { z } from 'zod';
import { defineEvent, type EventDefinition } from './defineEvent.js';
import type { JsonValue } from './json.js';

/** A row image: column name to the column's value (text form where JSON would lose precision). */
export type RowImage = Record<string, JsonValue>;

export const GENERIC_EVENT_KINDS = ['imported', 'inserted', 'updated', 'deleted'] as const;
export type GenericEventKind = (typeof GENERIC_EVENT_KINDS)[number];

const rowImage = z.record(z.string(), z.json());

/**
 * The generic events of a legacy table, defined for every configured table so that
 * nothing (baseline import, listener, operators) ever appends an unknown event type:
 * - `<table>.imported`: the row as the baseline import found it (`after`);
 * - `<table>.inserted`: a new row (`after`);
 * - `<table>.updated`: the changed columns, `before` and `after`;
 * - `<table>.deleted`: the row is gone (`before` where known, `reason` such as "truncate").
 * Loose objects, so later capture paths can add fields without a schema version bump.
 */
export function genericEventsFor(table: string): EventDefinition[] {
  return [
    defineEvent(`${table}.imported`, z.looseObject({ after: rowImage })),
    defineEvent(`${table}.inserted`, z.looseObject({ after: rowImage })),
    defineEvent(`${table}.updated`, z.looseObject({ before: rowImage, after: rowImage })),
    defineEvent(`${table}.deleted`, z.looseObject({ before: rowImage.optional(), reason: z.string().optional() })),
  ];
}

/** Which generic kind `eventType` is for `table`, if any. */
export function genericKindOf(table: string, eventType: string): GenericEventKind | undefined {
  if (!eventType.startsWith(`${table}.`)) return undefined;
  const kind = eventType.slice(table.length + 1);
  return (GENERIC_EVENT_KINDS as readonly string[]).includes(kind) ? (kind as GenericEventKind) : undefined;
}

import type { AggregateType } from '../config/resolve.js';
import type { RowImage } from '../events/genericEvents.js';
import { UNCHANGED, type Relation, type TupleValue } from './pgoutput.js';

/**
 * Turns one decoded row change of a legacy table into the events it means for its
 * aggregate: the table's generic events (`<table>.inserted`, `.updated` with the changed
 * columns before and after, `.deleted`). Values are the columns' PostgreSQL text output,
 * exactly as sent (NULL stays null), so nothing is rounded on the way.
 */

export type RowChange =
  | { kind: 'insert'; after: TupleValue[] }
  | { kind: 'update'; before: TupleValue[] | undefined; beforeIsKeyOnly: boolean; after: TupleValue[] }
  | { kind: 'delete'; before: TupleValue[]; beforeIsKeyOnly: boolean };

export interface RowEvent {
  /** The key columns' text, in the declared key order: the canonical id is computed from them in SQL. */
  key: string[];
  type: string;
  payload: Record<string, unknown>;
  /** Added to the event's metadata (a mapping rule's error). */
  metadata?: Record<string, unknown>;
}

export function rowEvents(aggregate: AggregateType, relation: Relation, change: RowChange): RowEvent[] {
  const label = aggregate.tableLabel;
  if (change.kind === 'insert') {
    const generic = { key: keyOf(aggregate, relation, change.after), type: `${label}.inserted`, payload: { after: image(aggregate, relation, change.after) } };
    return applyRules(aggregate, relation, undefined, change.after, generic);
  }
  if (change.kind === 'delete') {
    const before = change.beforeIsKeyOnly ? undefined : image(aggregate, relation, change.before);
    return [{ key: keyOf(aggregate, relation, change.before), type: `${label}.deleted`, payload: before ? { before } : {} }];
  }
  // An unchanged TOASTed value is sent as "unchanged": with full old rows its value is in the before image.
  const after = change.before && !change.beforeIsKeyOnly ? change.after.map((v, i) => (v === UNCHANGED ? change.before![i]! : v)) : change.after;
  const newKey = keyOf(aggregate, relation, after);
  const oldKey = change.before ? keyOf(aggregate, relation, change.before) : newKey;
  if (oldKey.some((part, i) => part !== newKey[i])) {
    // The key itself changed: the old aggregate ends and a new one begins.
    const before = change.beforeIsKeyOnly ? undefined : image(aggregate, relation, change.before!);
    return [
      { key: oldKey, type: `${label}.deleted`, payload: { ...(before ? { before } : {}), reason: 'key changed' } },
      { key: newKey, type: `${label}.inserted`, payload: { after: image(aggregate, relation, after) } },
    ];
  }
  const afterImage = image(aggregate, relation, after);
  if (!change.before || change.beforeIsKeyOnly) {
    // Without old rows (replica identity not full) every mapped value is reported as after.
    return [{ key: newKey, type: `${label}.updated`, payload: { before: {}, after: afterImage } }];
  }
  const beforeImage = image(aggregate, relation, change.before);
  const changedBefore: RowImage = {};
  const changedAfter: RowImage = {};
  for (const column of Object.keys(afterImage)) {
    if (afterImage[column] !== beforeImage[column]) {
      changedBefore[column] = beforeImage[column] ?? null;
      changedAfter[column] = afterImage[column]!;
    }
  }
  if (Object.keys(changedAfter).length === 0) return []; // no column that matters changed
  return applyRules(aggregate, relation, change.before, after, { key: newKey, type: `${label}.updated`, payload: { before: changedBefore, after: changedAfter } });
}

/**
 * The domain events of the rules a change matches (a column that became a value, on an
 * insert or from another value on an update), in rule order; none matched, the generic
 * event. A payload that fails its event's schema turns the whole change back into the
 * generic event, with the error in its metadata: recorded and counted, never skipped.
 */
function applyRules(aggregate: AggregateType, relation: Relation, before: TupleValue[] | undefined, after: TupleValue[], generic: RowEvent): RowEvent[] {
  if (aggregate.mappings.length === 0) return [generic];
  const value = (values: TupleValue[] | undefined, column: string) => {
    const index = relation.columns.findIndex((c) => c.name === column);
    return index === -1 || !values ? undefined : values[index];
  };
  const mapped: RowEvent[] = [];
  for (const rule of aggregate.mappings) {
    const now = value(after, rule.column);
    if (now !== rule.becomes) continue;
    if (before) {
      const was = value(before, rule.column);
      if (was === rule.becomes || (rule.from !== undefined && was !== rule.from)) continue;
    } else if (rule.from !== undefined) {
      continue; // an insert has no "from"
    }
    const payload: Record<string, unknown> = {};
    for (const [field, column] of rule.payload) {
      const index = relation.columns.findIndex((c) => c.name === column);
      payload[field] = index === -1 ? undefined : typedValue(after[index], relation.columns[index]!.typeOid);
    }
    const checked = rule.event.schema.safeParse(payload);
    if (!checked.success) {
      const problems = checked.error.issues.map((issue) => `${['payload', ...issue.path.map(String)].join('.')}: ${issue.message}`).join('; ');
      return [{ ...generic, metadata: { mapping_error: `${rule.event.type} (when ${rule.column} became ${rule.becomes}): ${problems}` } }];
    }
    mapped.push({ key: generic.key, type: rule.event.type, payload: checked.data as Record<string, unknown> });
  }
  return mapped.length > 0 ? mapped : [generic];
}

/** A column's text as the JSON value a domain payload expects: numbers, booleans and JSON where exact; text otherwise. */
function typedValue(value: TupleValue | undefined, typeOid: number): unknown {
  if (value === null || value === undefined || value === UNCHANGED) return null;
  switch (typeOid) {
    case 16: // bool
      return value === 't';
    case 21: // int2
    case 23: // int4
    case 700: // float4
    case 701: // float8
      return Number(value);
    case 20: {
      // int8: a number while exact, else its text
      const n = Number(value);
      return Number.isSafeInteger(n) ? n : value;
    }
    case 114: // json
    case 3802: // jsonb
      return JSON.parse(value) as unknown;
    default:
      return value; // numeric stays text: exact
  }
}

/** The mapped columns of a row (every column when the declaration maps none), by legacy column name. */
function image(aggregate: AggregateType, relation: Relation, values: TupleValue[]): RowImage {
  const out: RowImage = {};
  relation.columns.forEach((column, i) => {
    if (aggregate.columns && !aggregate.columns.has(column.name)) return;
    const value = values[i];
    if (value === UNCHANGED || value === undefined) return; // not known: the table does not log old rows in full
    out[column.name] = value;
  });
  return out;
}

function keyOf(aggregate: AggregateType, relation: Relation, values: TupleValue[]): string[] {
  return aggregate.key.map((key) => {
    const index = relation.columns.findIndex((c) => c.name === key.column);
    const value = index === -1 ? undefined : values[index];
    if (typeof value !== 'string') {
      throw new Error(`a change to ${relation.schema}.${relation.name} has no value for its key column "${key.column}"`);
    }
    return value;
  });
}

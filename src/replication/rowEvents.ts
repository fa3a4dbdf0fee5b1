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
  payload: { after?: RowImage; before?: RowImage; reason?: string };
}

export function rowEvents(aggregate: AggregateType, relation: Relation, change: RowChange): RowEvent[] {
  const label = aggregate.tableLabel;
  if (change.kind === 'insert') {
    return [{ key: keyOf(aggregate, relation, change.after), type: `${label}.inserted`, payload: { after: image(aggregate, relation, change.after) } }];
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
  return [{ key: newKey, type: `${label}.updated`, payload: { before: changedBefore, after: changedAfter } }];
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

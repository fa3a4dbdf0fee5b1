import type pg from 'pg';
import { copyIn } from '../db/copy.js';
import { Params } from '../db/params.js';
import type { Db, Sql } from '../db/queryable.js';
import type { TableName } from '../db/identifiers.js';
import type { StoreTables } from '../store/tables.js';
import { DELETED_COLUMN, SEQUENCE_COLUMN, type ReadModel } from './declaration.js';

/** One aggregate's new state for a read model. */
export interface RowChange {
  aggregateId: string;
  sequence: number;
  state: unknown;
  deleted: boolean;
}

/**
 * A state field as column text, cast by PostgreSQL to the column's type: objects and
 * arrays as JSON (for json/jsonb columns), Dates as ISO, the rest as their text.
 */
function columnText(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  return String(value);
}

function field(state: unknown, name: string): unknown {
  return typeof state === 'object' && state !== null ? (state as Record<string, unknown>)[name] : undefined;
}

/**
 * Writes a batch of changes to a read-model table (live or shadow) in the caller's
 * transaction: one upsert for the present aggregates, one delete (and tombstones) for
 * removed ones. A row never moves back to an older sequence. Rows the caller knows the
 * table cannot hold yet (`copy`: a rebuild's first write of an aggregate into its own
 * shadow) go in with COPY, about three times faster than the upsert.
 */
export async function writeRows(
  sql: Sql,
  db: Db,
  tables: StoreTables,
  model: ReadModel,
  table: TableName,
  changes: readonly RowChange[],
  copy?: { client: pg.ClientBase; isAbsent(aggregateId: string): boolean },
): Promise<void> {
  const removed = changes.filter((c) => c.deleted && model.onDelete === 'remove');
  let kept = changes.filter((c) => !(c.deleted && model.onDelete === 'remove'));
  if (copy) {
    const absent = kept.filter((c) => copy.isAbsent(c.aggregateId));
    if (absent.length > 0) await copyRows(copy.client, model, table, absent);
    kept = kept.filter((c) => !copy.isAbsent(c.aggregateId));
  }
  if (kept.length > 0) {
    const params = new Params();
    await sql.query(upsertRows(model, table, kept, params), params.values);
  }
  if (removed.length > 0) {
    const params = new Params();
    await sql.query(deleteRows(table, removed, params), params.values);
    const tombstones = new Params();
    await sql.query(tombstoneRows(tables, table, removed, tombstones), tombstones.values);
  }
  if (model.write) {
    for (const change of changes) {
      await model.write({ db, table: table.quoted, aggregateId: change.aggregateId, state: change.state, sequence: change.sequence, deleted: change.deleted });
    }
  }
}

/**
 * The upsert of present aggregates' rows: one statement for the whole batch, the values
 * as arrays. A row never moves back to an older sequence. `guard`, when given, is a
 * condition the statement's rows must also meet (the updater's one-statement commit).
 */
export function upsertRows(model: ReadModel, table: TableName, kept: readonly RowChange[], params: Params, guard?: string): string {
  const mark = model.onDelete === 'mark';
  const names = ['aggregate_id', SEQUENCE_COLUMN, ...(mark ? [DELETED_COLUMN] : []), ...model.columns.map((c) => c.quoted)];
  const arrays = [params.add(kept.map((c) => c.aggregateId), 'text[]'), params.add(kept.map((c) => String(c.sequence)), 'bigint[]')];
  const selects = ['u.c0', 'u.c1'];
  if (mark) {
    arrays.push(params.add(kept.map((c) => c.deleted), 'boolean[]'));
    selects.push(`u.c${selects.length}`);
  }
  for (const column of model.columns) {
    arrays.push(params.add(kept.map((c) => columnText(field(c.state, column.field))), 'text[]'));
    selects.push(`u.c${selects.length}::${column.type}`);
  }
  const aliases = selects.map((_, i) => `c${i}`).join(', ');
  const updates = names.slice(1).map((n) => `${n} = excluded.${n}`).join(', ');
  return `INSERT INTO ${table.quoted} AS t (${names.join(', ')})
       SELECT ${selects.join(', ')} FROM unnest(${arrays.join(', ')}) AS u(${aliases})${guard ? ` WHERE ${guard}` : ''}
       ON CONFLICT (aggregate_id) DO UPDATE SET ${updates}
       WHERE t.${SEQUENCE_COLUMN} < excluded.${SEQUENCE_COLUMN}`;
}

/** The removal of deleted aggregates' rows (onDelete: remove). */
export function deleteRows(table: TableName, removed: readonly RowChange[], params: Params, guard?: string): string {
  return `DELETE FROM ${table.quoted} WHERE aggregate_id = ANY(${params.add(removed.map((c) => c.aggregateId), 'text[]')})${guard ? ` AND ${guard}` : ''}`;
}

/** The tombstones of removed rows: the sequence each removal reflects, which a row would otherwise have carried. */
export function tombstoneRows(tables: StoreTables, table: TableName, removed: readonly RowChange[], params: Params, guard?: string): string {
  return `INSERT INTO ${tables.tombstones} AS t (table_oid, aggregate_id, sequence)
       SELECT ${params.add(table.quoted, 'regclass')}::oid, u.aggregate_id, u.sequence
       FROM unnest(${params.add(removed.map((c) => c.aggregateId), 'text[]')}, ${params.add(removed.map((c) => String(c.sequence)), 'bigint[]')}) AS u(aggregate_id, sequence)${guard ? ` WHERE ${guard}` : ''}
       ON CONFLICT (table_oid, aggregate_id) DO UPDATE SET sequence = greatest(t.sequence, excluded.sequence)`;
}

/** Inserts rows with COPY: the same columns and text as the upsert, in COPY's text format. */
async function copyRows(client: pg.ClientBase, model: ReadModel, table: TableName, changes: readonly RowChange[]): Promise<void> {
  const mark = model.onDelete === 'mark';
  const names = ['aggregate_id', SEQUENCE_COLUMN, ...(mark ? [DELETED_COLUMN] : []), ...model.columns.map((c) => c.quoted)];
  const buffers: Buffer[] = [];
  let text = '';
  for (const change of changes) {
    text += copyText(change.aggregateId) + '\t' + String(change.sequence);
    if (mark) text += change.deleted ? '\tt' : '\tf';
    for (const column of model.columns) text += '\t' + copyText(columnText(field(change.state, column.field)));
    text += '\n';
    if (text.length >= 1 << 16) {
      buffers.push(Buffer.from(text));
      text = '';
    }
  }
  buffers.push(Buffer.from(text));
  await copyIn(client, `COPY ${table.quoted} (${names.join(', ')}) FROM STDIN`, buffers);
}

/** A value in COPY's text format: NULL as \N; backslash, tab, newline and carriage return escaped. */
export function copyText(value: string | null): string {
  if (value === null) return '\\N';
  return /[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!) : value;
}
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

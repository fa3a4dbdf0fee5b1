import type pg from 'pg';
import { copyIn } from '../db/copy.js';
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
    const mark = model.onDelete === 'mark';
    const names = ['aggregate_id', SEQUENCE_COLUMN, ...(mark ? [DELETED_COLUMN] : []), ...model.columns.map((c) => c.quoted)];
    const arrays: unknown[] = [kept.map((c) => c.aggregateId), kept.map((c) => String(c.sequence))];
    const types = ['text[]', 'bigint[]'];
    const selects = ['u.c0', 'u.c1'];
    if (mark) {
      arrays.push(kept.map((c) => c.deleted));
      types.push('boolean[]');
      selects.push(`u.c${selects.length}`);
    }
    for (const column of model.columns) {
      arrays.push(kept.map((c) => columnText(field(c.state, column.field))));
      types.push('text[]');
      selects.push(`u.c${selects.length}::${column.type}`);
    }
    const aliases = selects.map((_, i) => `c${i}`).join(', ');
    const updates = names.slice(1).map((n) => `${n} = excluded.${n}`).join(', ');
    await sql.query(
      `INSERT INTO ${table.quoted} AS t (${names.join(', ')})
       SELECT ${selects.join(', ')} FROM unnest(${types.map((t, i) => `$${i + 1}::${t}`).join(', ')}) AS u(${aliases})
       ON CONFLICT (aggregate_id) DO UPDATE SET ${updates}
       WHERE t.${SEQUENCE_COLUMN} < excluded.${SEQUENCE_COLUMN}`,
      arrays,
    );
  }
  if (removed.length > 0) {
    await sql.query(`DELETE FROM ${table.quoted} WHERE aggregate_id = ANY($1::text[])`, [removed.map((c) => c.aggregateId)]);
    await sql.query(
      `INSERT INTO ${tables.tombstones} AS t (table_oid, aggregate_id, sequence)
       SELECT $1::regclass::oid, u.aggregate_id, u.sequence FROM unnest($2::text[], $3::bigint[]) AS u(aggregate_id, sequence)
       ON CONFLICT (table_oid, aggregate_id) DO UPDATE SET sequence = greatest(t.sequence, excluded.sequence)`,
      [table.quoted, removed.map((c) => c.aggregateId), removed.map((c) => String(c.sequence))],
    );
  }
  if (model.write) {
    for (const change of changes) {
      await model.write({ db, table: table.quoted, aggregateId: change.aggregateId, state: change.state, sequence: change.sequence, deleted: change.deleted });
    }
  }
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

/** The sequence a read-model table reflects for each aggregate: its row's, or its tombstone's when the row was removed. */
export async function appliedSequences(sql: Sql, tables: StoreTables, table: TableName, aggregateIds: readonly string[]): Promise<Map<string, number>> {
  const rows = await sql.query<{ aggregate_id: string; sequence: string }>(
    `SELECT aggregate_id, max(sequence)::text AS sequence FROM (
       SELECT r.aggregate_id, r.${SEQUENCE_COLUMN} AS sequence FROM ${table.quoted} r WHERE r.aggregate_id = ANY($1::text[])
       UNION ALL
       SELECT t.aggregate_id, t.sequence FROM ${tables.tombstones} t
       WHERE t.table_oid = $2::regclass::oid AND t.aggregate_id = ANY($1::text[])
     ) s GROUP BY aggregate_id`,
    [[...aggregateIds], table.quoted],
  );
  return new Map(rows.map((r) => [r.aggregate_id, Number(r.sequence)]));
}

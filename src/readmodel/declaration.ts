import { createHash } from 'node:crypto';
import { z } from 'zod';
import { identifierProblem, quoteIdent, parseTableName, type TableName } from '../db/identifiers.js';
import type { Db } from '../db/queryable.js';

/**
 * A read model, declared on its aggregate type: a table kept up to date from the
 * projector's state, either by a map from state fields to columns or by a custom write
 * function for anything more. Every row carries the aggregate's canonical id
 * (`aggregate_id`, the primary key) and the sequence it reflects (`hindsight_sequence`).
 */

/** Column types are interpolated into DDL, so only plain type names are accepted (and PostgreSQL checks them). */
const COLUMN_TYPE = /^[a-z][a-z0-9_ ]*(\(\s*\d+(\s*,\s*\d+)?\s*\))?(\[\])?$/i;

const columnSpec = z
  .object({
    /** The state field the column holds. Default: the column's own name. */
    field: z.string().min(1).optional(),
    /** A PostgreSQL type: text, bigint, numeric(12,2), timestamptz, jsonb, boolean... */
    type: z.string().regex(COLUMN_TYPE, { message: 'a column type is a plain PostgreSQL type name such as text, bigint, numeric(12,2), jsonb' }),
  })
  .strict();

/**
 * Plain indexes only. A unique index across aggregates would fail transiently: the updater
 * applies aggregates in transaction-id order, not commit order, so one aggregate can take
 * a value before another has released it.
 */
const indexSpec = z.preprocess(
  (value) => (Array.isArray(value) ? { columns: value } : value),
  z.object({ columns: z.array(z.string().min(1)).min(1) }).strict(),
);

export const readModelSchema = z
  .object({
    /** Unique across the config; names the updater's checkpoint and lease. Letters, digits, _ and -. */
    name: z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, { message: 'a read-model name is 1-100 letters, digits, _ or -' }),
    /** Where the table lives: "schema.table" (the schema is created if missing) or "table". */
    table: z.string().superRefine((table, ctx) => {
      const parsed = parseTableName(table);
      if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
    }),
    /** Column name -> { type, field }. */
    columns: z.record(z.string(), columnSpec).default({}),
    /** Indexes to create: arrays of column names, or { columns } (plain indexes: see indexSpec). */
    indexes: z.array(indexSpec).default([]),
    /** What a deleted aggregate's row becomes: "remove" (default) or "mark" (hindsight_deleted = true). */
    onDelete: z.enum(['remove', 'mark']).default('remove'),
    /** For anything a column map cannot say: called for each changed aggregate after its row is written. */
    write: z.custom<ReadModelWrite>((value) => typeof value === 'function', { message: 'expected a function' }).optional(),
  })
  .strict();

export type ReadModelInput = z.input<typeof readModelSchema>;

/** What a custom write function gets, inside the updater's transaction. */
export interface ReadModelWriteInput {
  /** The transaction to write with. */
  db: Db;
  /** The table to write to, quoted: the live table, or during a rebuild its shadow. */
  table: string;
  aggregateId: string;
  state: unknown;
  sequence: number;
  deleted: boolean;
}
export type ReadModelWrite = (input: ReadModelWriteInput) => Promise<void>;

export interface ReadModelColumn {
  name: string;
  quoted: string;
  field: string;
  type: string;
}

export interface ReadModel {
  name: string;
  aggregateType: string;
  table: TableName;
  columns: ReadonlyArray<ReadModelColumn>;
  indexes: ReadonlyArray<{ name: string; columns: string[] }>;
  onDelete: 'remove' | 'mark';
  write: ReadModelWrite | undefined;
  /** The checkpoint and lease name of its updater. */
  subscriber: string;
}

export const SEQUENCE_COLUMN = 'hindsight_sequence';
export const DELETED_COLUMN = 'hindsight_deleted';
const RESERVED = new Set(['aggregate_id', SEQUENCE_COLUMN, DELETED_COLUMN]);

/** Checks a declaration beyond its shape; returns the problem, or the resolved read model. */
export function resolveReadModel(input: z.output<typeof readModelSchema>, aggregateType: string): ReadModel | { error: string } {
  const table = parseTableName(input.table) as TableName;
  const columns: ReadModelColumn[] = [];
  for (const [name, spec] of Object.entries(input.columns)) {
    const problem = identifierProblem(name);
    if (problem) return { error: `columns.${name}: ${problem}` };
    if (RESERVED.has(name)) return { error: `columns.${name}: the name is reserved for hindsight's own column` };
    columns.push({ name, quoted: quoteIdent(name), field: spec.field ?? name, type: spec.type.trim() });
  }
  const known = new Set([...columns.map((c) => c.name), ...RESERVED]);
  const indexes = [];
  for (const index of input.indexes) {
    const missing = index.columns.find((c) => !known.has(c));
    if (missing) return { error: `indexes: "${missing}" is not a column of the read model` };
    indexes.push({ ...index, name: indexName(table.name, index.columns) });
  }
  return {
    name: input.name,
    aggregateType,
    table,
    columns,
    indexes,
    onDelete: input.onDelete,
    write: input.write,
    subscriber: `read-model:${input.name}`,
  };
}

/** A stable index name within PostgreSQL's 63 bytes. */
function indexName(table: string, columns: string[]): string {
  const base = `${table}_${columns.join('_')}_idx`;
  if (Buffer.byteLength(base) <= 63) return base;
  return `${truncateBytes(table, 30)}_${createHash('sha256').update(base).digest('hex').slice(0, 12)}_idx`;
}

/** The longest prefix of `text` within `bytes` UTF-8 bytes, never splitting a character. */
export function truncateBytes(text: string, bytes: number): string {
  let out = '';
  for (const char of text) {
    if (Buffer.byteLength(out + char) > bytes) break;
    out += char;
  }
  return out;
}

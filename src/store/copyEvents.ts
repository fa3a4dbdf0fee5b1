import type pg from 'pg';
import type { ProjectedEvent } from '../types.js';
import { copyOut } from '../db/copy.js';
import { FOLD_COLUMN_COUNT, foldColumns, toProjectedEvent } from './eventRow.js';
import type { GlobalCheckpoint } from './readAll.js';
import type { StoreTables } from './tables.js';

/**
 * The gap-safe global read of one aggregate type as a stream, for rebuilds: `COPY (...) TO
 * STDOUT` in text format, parsed here row by row. It reads several times faster than rows
 * through node-postgres's row parser, which is what bounds a rebuild. COPY takes no bind
 * parameters, so the values go in through set_config() (which does) and the query reads
 * them back with current_setting().
 */

export interface CopiedEvent extends ProjectedEvent {
  transactionId: string;
}

/** The fold's columns (as text: COPY prints every value as text) and the transaction id last. */
const COLUMNS = `${foldColumns(true)}, e.transaction_id`;
const FIELDS = FOLD_COLUMN_COUNT + 1;

/**
 * Streams up to `limit` events of `aggregateType` after `after`, below the snapshot's
 * xmin, in (transaction id, global position) order, calling `onEvent` for each in order.
 * Runs in its own transaction on `client`. Returns how many were read.
 */
export async function copyEvents(
  client: pg.ClientBase,
  tables: StoreTables,
  aggregateType: string,
  after: GlobalCheckpoint,
  limit: number,
  onEvent: (event: CopiedEvent) => void,
): Promise<number> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await client.query(
      `SELECT set_config('hindsight.copy_type', $1::text, true), set_config('hindsight.copy_after_xid', $2::text, true),
              set_config('hindsight.copy_after_position', $3::text, true), set_config('hindsight.copy_limit', $4::text, true)`,
      [aggregateType, after.transactionId, String(after.globalPosition), String(limit)],
    );
    const rows = await copyOut(
      client,
      `COPY (SELECT ${COLUMNS} FROM ${tables.events} e
             WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
               AND (e.transaction_id, e.global_position) >
                   (current_setting('hindsight.copy_after_xid')::xid8, current_setting('hindsight.copy_after_position')::bigint)
               AND e.aggregate_type = current_setting('hindsight.copy_type')
             ORDER BY e.transaction_id, e.global_position
             LIMIT current_setting('hindsight.copy_limit')::int) TO STDOUT`,
      (chunk) => onEvent(parseRow(chunk)),
    );
    await client.query('COMMIT');
    return rows;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** One CopyData message (a row in text format) as an event: the fold's row, plus the transaction id. */
function parseRow(chunk: Buffer): CopiedEvent {
  const fields = splitRow(chunk);
  const event = toProjectedEvent(fields) as CopiedEvent;
  event.transactionId = fields[FOLD_COLUMN_COUNT]!;
  return event;
}

/**
 * A row's column values: text separated by tabs and ended by a newline, where a backslash
 * escapes tabs, newlines and backslashes inside a value (JSON text can hold them). Scanned
 * with indexOf rather than split: this runs once per event and split costs twice as much.
 */
function splitRow(chunk: Buffer): string[] {
  const line = chunk.toString('utf8', 0, chunk[chunk.length - 1] === 10 ? chunk.length - 1 : chunk.length);
  const fields = new Array<string>(FIELDS);
  let start = 0;
  for (let i = 0; i < FIELDS - 1; i++) {
    const end = line.indexOf('\t', start);
    if (end === -1) throw new Error(`a COPY row has ${i + 1} columns, expected ${FIELDS}`);
    fields[i] = line.slice(start, end);
    start = end + 1;
  }
  fields[FIELDS - 1] = line.slice(start);
  if (chunk.indexOf(92) !== -1) {
    for (let i = 0; i < FIELDS; i++) if (fields[i]!.includes('\\')) fields[i] = unescapeCopy(fields[i]!);
  }
  return fields;
}

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };

/** Undoes COPY's text-format escaping of one value. */
export function unescapeCopy(field: string): string {
  let out = '';
  for (let i = 0; i < field.length; i++) {
    const char = field[i]!;
    if (char !== '\\' || i === field.length - 1) {
      out += char;
      continue;
    }
    const next = field[++i]!;
    out += ESCAPES[next] ?? next;
  }
  return out;
}

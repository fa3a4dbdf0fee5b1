import type pg from 'pg';
import type { AggregateType } from '../config/resolve.js';
import type { Sql } from '../db/queryable.js';
import { inSnapshot } from '../db/transaction.js';
import { foldInto, initialFold, type Folded } from '../projection/fold.js';
import { DELETED_COLUMN, SEQUENCE_COLUMN, type ReadModel } from '../readmodel/declaration.js';
import { foldColumns, toProjectedEvent } from '../store/eventRow.js';
import type { StoreTables } from '../store/tables.js';
import { columnTypes, type ComparedColumn } from './columns.js';
import { compareRows, projectedValue } from './compare.js';
import type { FieldDifference, Mismatch, TypeReport } from './report.js';

/**
 * `verify --target read-model:<name>`: is each read-model row what the fold of its
 * aggregate's events up to the sequence the row records says it should be? Each page of
 * rows is read in one snapshot together with the read model's checkpoint; aggregates with
 * events at or below that checkpoint but no row are missing in the read model. With the
 * projector-versus-legacy run, this makes the transitive check the cut-over gate needs.
 */

interface ModelRow {
  id: string;
  sequence: number;
  deleted: boolean;
  values: Array<string | null>;
}

/** The read model's columns as the verifier compares them: exactly, NULL for a field the state lacks. */
export async function readModelColumns(sql: Sql, model: ReadModel): Promise<ComparedColumn[] | { problem: string }> {
  const byName = await columnTypes(sql, model.table.quoted);
  if (byName.size === 0) return { problem: `the read-model table ${model.table.quoted} does not exist: run hindsight project (or rebuild) first` };
  const missing = model.columns.filter((c) => !byName.has(c.name)).map((c) => c.name);
  if (missing.length > 0) return { problem: `the read-model table ${model.table.quoted} has no column ${missing.join(', ')}: rebuild it` };
  return model.columns.map((c) => ({ column: c.name, field: c.field, compare: 'exact', nullEqualsMissing: true, quoted: c.quoted, ...byName.get(c.name)! }));
}

export interface ReadModelPage {
  rows: ModelRow[];
  snapshot: string;
  checkpoint: { transactionId: string; globalPosition: string } | undefined;
}

/** A page of read-model rows in aggregate id order, with the checkpoint, in one snapshot. */
export async function readModelPage(pool: pg.Pool, tables: StoreTables, model: ReadModel, columns: readonly ComparedColumn[], after: string | undefined, limit: number): Promise<ReadModelPage> {
  return inSnapshot(pool, async (client) => {
    const snapshot = (await client.query<{ s: string }>('SELECT pg_current_snapshot()::text AS s')).rows[0]!.s;
    const checkpoint = (
      await client.query<{ transaction_id: string; global_position: string }>(
        `SELECT transaction_id::text AS transaction_id, global_position::text AS global_position FROM ${tables.checkpoints} WHERE subscriber = $1::text`,
        [model.subscriber],
      )
    ).rows[0];
    const deleted = model.onDelete === 'mark' ? `${DELETED_COLUMN}::text` : `'false'`;
    const { rows } = await client.query<string[]>({
      text: `SELECT aggregate_id, ${SEQUENCE_COLUMN}::text, ${deleted}, ${columns.map((c) => `${c.quoted}::text`).join(', ') || 'NULL'}
             FROM ${model.table.quoted} WHERE ($1::text IS NULL OR aggregate_id > $1::text) ORDER BY aggregate_id LIMIT $2::int`,
      values: [after ?? null, limit],
      rowMode: 'array',
      types: { getTypeParser: () => (v: string) => v },
    } as never);
    return {
      snapshot,
      checkpoint: checkpoint ? { transactionId: checkpoint.transaction_id, globalPosition: checkpoint.global_position } : undefined,
      rows: rows.map((r) => ({ id: r[0]!, sequence: Number(r[1]), deleted: r[2] === 'true', values: columns.map((_, k) => r[3 + k] ?? null) })),
    };
  });
}

/** Each aggregate folded cold up to a sequence (one query for the page). */
export async function foldUpTo(sql: Sql, tables: StoreTables, aggregate: AggregateType, upTo: ReadonlyMap<string, number>): Promise<Map<string, Folded>> {
  const folds = new Map<string, Folded>();
  if (upTo.size === 0) return folds;
  const rows = await sql.rows(
    `SELECT ${foldColumns(sql.rawText)} FROM ${tables.events} e
     JOIN unnest($2::text[], $3::bigint[]) AS r(id, upto) ON e.aggregate_id = r.id AND e.sequence <= r.upto
     WHERE e.aggregate_type = $1::text
     ORDER BY e.aggregate_id, e.sequence`,
    [aggregate.type, [...upTo.keys()], [...upTo.values()].map(String)],
  );
  for (const row of rows) {
    const event = toProjectedEvent(row);
    let folded = folds.get(event.aggregateId);
    if (!folded) folds.set(event.aggregateId, (folded = initialFold(aggregate)));
    foldInto(aggregate, folded, event);
  }
  return folds;
}

/** Compares a page's rows with their folds; counts into `report`, returns the mismatches. */
export async function compareModelRows(
  sql: Sql,
  model: ReadModel,
  columns: readonly ComparedColumn[],
  rows: readonly ModelRow[],
  folds: ReadonlyMap<string, Folded>,
  report: TypeReport,
): Promise<Mismatch[]> {
  const mismatches: Mismatch[] = [];
  const live = rows.filter((r) => {
    const folded = folds.get(r.id);
    return folded !== undefined && folded.version === r.sequence && !folded.deleted;
  });
  const verdicts = await compareRows(
    sql,
    columns,
    live.map((r) => ({ legacy: r.values, projected: columns.map((c) => projectedValue(folds.get(r.id)!.state, c.field)) })),
  );
  const verdictOf = new Map(live.map((r, i) => [r.id, verdicts[i]!]));
  for (const row of rows) {
    report.counts.compared += 1;
    const folded = folds.get(row.id);
    const explanation = (what: string) => [`${what}: the row was written by another projector version, edited by hand, or the updater is wrong; rebuild the read model (hindsight rebuild ${model.name})`];
    if (!folded || folded.version !== row.sequence) {
      mismatches.push({
        aggregateId: row.id,
        kind: 'field-mismatch',
        class: 'projector bug',
        fields: [{ field: '(sequence)', column: SEQUENCE_COLUMN, legacy: String(row.sequence), projected: String(folded?.version ?? 0) }],
        explanation: explanation(`the row records sequence ${row.sequence}, but the aggregate has events only up to ${folded?.version ?? 0}`),
      });
      report.counts.mismatched += 1;
      continue;
    }
    if (model.onDelete === 'remove' && folded.deleted) {
      mismatches.push({
        aggregateId: row.id,
        kind: 'field-mismatch',
        class: 'projector bug',
        fields: [{ field: '(row)', column: '(row)', legacy: 'present', projected: 'deleted' }],
        explanation: explanation('the events end with a delete and the read model removes deleted aggregates, but the row is there'),
      });
      report.counts.mismatched += 1;
      continue;
    }
    if (model.onDelete === 'mark' && row.deleted !== folded.deleted) {
      mismatches.push({
        aggregateId: row.id,
        kind: 'field-mismatch',
        class: 'projector bug',
        fields: [{ field: '(deleted)', column: DELETED_COLUMN, legacy: String(row.deleted), projected: String(folded.deleted) }],
        explanation: explanation('the row is marked otherwise than its events say'),
      });
      report.counts.mismatched += 1;
      continue;
    }
    const verdict = verdictOf.get(row.id);
    if (!verdict) {
      // a marked row of a deleted aggregate: its mark matched, its other columns are not compared
      report.counts.matched += 1;
      continue;
    }
    const fields: FieldDifference[] = [];
    columns.forEach((c, k) => {
      if (verdict[k]!.equal) return;
      const projected = projectedValue(folded.state, c.field);
      fields.push({ field: c.field, column: c.column, legacy: row.values[k] ?? null, projected: projected.missing ? 'missing' : projected.text, ...(verdict[k]!.note ? { note: verdict[k]!.note } : {}) });
    });
    if (fields.length === 0) {
      report.counts.matched += 1;
      continue;
    }
    mismatches.push({ aggregateId: row.id, kind: 'field-mismatch', class: 'projector bug', fields, explanation: explanation(`the row differs from the fold of its events up to sequence ${row.sequence}`) });
    report.counts.mismatched += 1;
  }
  return mismatches;
}

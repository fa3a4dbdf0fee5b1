import { createHash } from 'node:crypto';
import type { AggregateType } from '../config/resolve.js';
import type { ReadModel } from '../readmodel/declaration.js';
import type { Sql } from '../db/queryable.js';
import { utcMicros } from '../store/eventRow.js';
import type { StoreTables } from '../store/tables.js';
import type { FieldDifference, Mismatch, MismatchClass, MismatchKind, Outcome, RunMode, TypeCounts, TypeReport } from './report.js';

/**
 * The run history: one row per type and run, with every mismatch, written after the type's
 * comparison snapshots have ended (nothing is written inside one). The cut-over gate and
 * `--changed-since-last` read it back.
 */

/** Identifies the declaration a run checked: a changed map, rule or read model makes a different hash. */
export function configHash(aggregate: AggregateType, model?: ReadModel): string {
  const declaration = {
    ...(model ? { readModel: { table: model.table.quoted, columns: model.columns, onDelete: model.onDelete, custom: model.write !== undefined } } : {}),
    table: aggregate.table.quoted,
    key: aggregate.key.map((k) => [k.column, k.type.sql]),
    comparisons: [...aggregate.comparisons.values()].map((c) => ({ ...c, values: c.values ? [...c.values] : undefined })),
    updatedAt: aggregate.verify.updatedAt ?? null,
    ignore: aggregate.verify.ignore.map((r) => ({ ...r, ids: r.ids ? [...r.ids] : undefined })),
  };
  return createHash('sha256').update(JSON.stringify(declaration)).digest('hex').slice(0, 16);
}

const MISMATCH_ROWS_PER_STATEMENT = 1000;

export async function recordTypeRun(sql: Sql, tables: StoreTables, runId: string, report: TypeReport): Promise<number> {
  const [row] = await sql.query<{ id: string }>(
    `INSERT INTO ${tables.verifyRuns} (run_id, aggregate_type, target, mode, started_at, finished_at, cut, projector_version, config_hash, counts, outcome, reason)
     VALUES ($1::uuid, $2::text, $3::text, $4::text, $5::timestamptz, $6::timestamptz, $7::jsonb, $8::text, $9::text, $10::jsonb, $11::text, $12::text)
     RETURNING id::text AS id`,
    [
      runId,
      report.aggregateType,
      report.target,
      report.mode,
      report.startedAt,
      report.finishedAt,
      JSON.stringify(report.cut),
      report.projectorVersion,
      report.configHash,
      JSON.stringify({ ...report.counts, fields: report.fieldCounts, classes: report.classCounts, warnings: report.warnings }),
      report.outcome,
      report.reason ?? null,
    ],
  );
  const id = Number(row!.id);
  for (let i = 0; i < report.mismatches.length; i += MISMATCH_ROWS_PER_STATEMENT) {
    const slice = report.mismatches.slice(i, i + MISMATCH_ROWS_PER_STATEMENT);
    await sql.query(
      `INSERT INTO ${tables.verifyMismatches} (run_row, aggregate_id, class, kind, fields, explanation)
       SELECT $1::bigint, m.aggregate_id, m.class, m.kind, m.fields::jsonb, m.explanation::jsonb
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS m(aggregate_id, class, kind, fields, explanation)
       ON CONFLICT DO NOTHING`,
      [
        id,
        slice.map((m) => m.aggregateId),
        slice.map((m) => m.class),
        slice.map((m) => m.kind),
        slice.map((m) => JSON.stringify(m.fields)),
        slice.map((m) => JSON.stringify(explanationOf(m))),
      ],
    );
  }
  return id;
}

function explanationOf(m: Mismatch): Record<string, unknown> {
  return { sentences: m.explanation, ...(m.firstDivergence ? { firstDivergence: m.firstDivergence } : {}), ...(m.ignoredBy ? { ignoredBy: m.ignoredBy } : {}) };
}

export interface StoredRun {
  id: number;
  runId: string;
  aggregateType: string;
  target: string;
  mode: RunMode;
  startedAt: string;
  finishedAt: string;
  outcome: Outcome;
  reason: string | null;
  /** The type's counts, and (stored with them) mismatches per field and per class, and the run's warnings. */
  counts: TypeCounts & { fields?: Record<string, number>; classes?: Partial<Record<MismatchClass, number>>; warnings?: string[] };
  cut: TypeReport['cut'];
  projectorVersion: string;
  configHash: string;
}

const RUN_COLUMNS = `id::text AS id, run_id::text AS run_id, aggregate_type, target, mode, ${utcMicros('started_at')} AS started_at, ${utcMicros('finished_at')} AS finished_at,
            outcome, reason, counts::text AS counts, cut::text AS cut, projector_version, config_hash`;

function toStoredRun(r: Record<string, string | null>): StoredRun {
  return {
    id: Number(r.id),
    runId: r.run_id!,
    aggregateType: r.aggregate_type!,
    target: r.target!,
    mode: r.mode as RunMode,
    startedAt: r.started_at!,
    finishedAt: r.finished_at!,
    outcome: r.outcome as Outcome,
    reason: r.reason ?? null,
    counts: JSON.parse(r.counts!) as StoredRun['counts'],
    cut: JSON.parse(r.cut!) as TypeReport['cut'],
    projectorVersion: r.projector_version!,
    configHash: r.config_hash!,
  };
}

/** Recent runs, newest first: of some types and targets, or all. */
export async function recentRuns(
  sql: Sql,
  tables: StoreTables,
  filter: { types?: readonly string[]; target?: string; modes?: readonly RunMode[]; limit?: number } = {},
): Promise<StoredRun[]> {
  const rows = await sql.query<Record<string, string | null>>(
    `SELECT ${RUN_COLUMNS}
     FROM ${tables.verifyRuns}
     WHERE ($1::text[] IS NULL OR aggregate_type = ANY ($1::text[])) AND ($2::text IS NULL OR target = $2::text)
       AND ($4::text[] IS NULL OR mode = ANY ($4::text[]))
     ORDER BY finished_at DESC, id DESC
     LIMIT $3::int`,
    [filter.types ? [...filter.types] : null, filter.target ?? null, filter.limit ?? 20, filter.modes ? [...filter.modes] : null],
  );
  return rows.map(toStoredRun);
}

/** One stored run of one type, by the id of its history row; undefined when there is none. */
export async function storedRun(sql: Sql, tables: StoreTables, id: number): Promise<StoredRun | undefined> {
  const [row] = await sql.query<Record<string, string | null>>(`SELECT ${RUN_COLUMNS} FROM ${tables.verifyRuns} WHERE id = $1::bigint`, [String(id)]);
  return row ? toStoredRun(row) : undefined;
}

/** A page of a stored run's mismatches, in aggregate id order, and how many it has in all. */
export async function storedMismatches(sql: Sql, tables: StoreTables, id: number, page: { limit: number; offset: number }): Promise<{ total: number; mismatches: Mismatch[] }> {
  const rows = await sql.query<{ aggregate_id: string; class: string; kind: string; fields: string; explanation: string; total: string }>(
    `SELECT aggregate_id, class, kind, fields::text AS fields, explanation::text AS explanation, count(*) OVER ()::text AS total
     FROM ${tables.verifyMismatches} WHERE run_row = $1::bigint
     ORDER BY aggregate_id LIMIT $2::int OFFSET $3::int`,
    [String(id), page.limit, page.offset],
  );
  const [count] = rows.length > 0 ? [{ n: rows[0]!.total }] : await sql.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${tables.verifyMismatches} WHERE run_row = $1::bigint`, [String(id)]);
  return {
    total: Number(count!.n),
    mismatches: rows.map((r) => {
      const explanation = JSON.parse(r.explanation) as { sentences?: string[]; firstDivergence?: Mismatch['firstDivergence']; ignoredBy?: Mismatch['ignoredBy'] };
      return {
        aggregateId: r.aggregate_id,
        class: r.class as MismatchClass,
        kind: r.kind as MismatchKind,
        fields: JSON.parse(r.fields) as FieldDifference[],
        explanation: explanation.sentences ?? [],
        ...(explanation.firstDivergence ? { firstDivergence: explanation.firstDivergence } : {}),
        ...(explanation.ignoredBy ? { ignoredBy: explanation.ignoredBy } : {}),
      };
    }),
  };
}

/**
 * Where a --changed-since-last run starts: the last full or changed run of a type and
 * target that compared everything it set out to (clean or with mismatches), and the
 * aggregates it found mismatched, which are checked again whether or not they changed.
 */
export async function lastCompleteRun(sql: Sql, tables: StoreTables, aggregateType: string, target: string): Promise<{ run: StoredRun; mismatched: string[] } | undefined> {
  const runs = await recentRuns(sql, tables, { types: [aggregateType], target, modes: ['full', 'changed'], limit: 50 });
  const run = runs.find((r) => r.outcome === 'clean' || r.outcome === 'mismatches');
  if (!run) return undefined;
  const rows = await sql.query<{ id: string }>(
    `SELECT aggregate_id AS id FROM ${tables.verifyMismatches} WHERE run_row = $1::bigint AND class <> 'known divergence'`,
    [String(run.id)],
  );
  return { run, mismatched: rows.map((r) => r.id) };
}

/** The last clean, complete, full run of a type and target (what the gate and the metrics count). */
export async function lastCleanFullRun(sql: Sql, tables: StoreTables, aggregateType: string, target: string): Promise<StoredRun | undefined> {
  const runs = await recentRuns(sql, tables, { types: [aggregateType], target, modes: ['full'], limit: 200 });
  return runs.find((run) => run.outcome === 'clean');
}

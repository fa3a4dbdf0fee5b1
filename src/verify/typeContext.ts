import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { AggregateType, ResolvedConfig } from '../config/resolve.js';
import type { Sql } from '../db/queryable.js';
import type { ReadModel } from '../readmodel/declaration.js';
import type { StoreTables } from '../store/tables.js';
import { commitCut, waitForCut } from './cut.js';
import { configHash } from './history.js';
import { expiredRules } from './ignore.js';
import { afterKeyArray, keyOfId, upToKey } from './legacy.js';
import type { VerifyOptions } from './options.js';
import { emptyCounts, type Mismatch, type RunMode, type TypeReport } from './report.js';

/** What every pass of one type's run shares, and the steps they have in common. */

export interface TypeContext {
  sql: Sql;
  pool: pg.Pool;
  tables: StoreTables;
  config: ResolvedConfig;
  aggregate: AggregateType;
  runId: string;
  mode: RunMode;
  options: VerifyOptions;
  /** A chunk of a shared run: only legacy rows and heads whose key is in this range. */
  range?: KeyRange;
}

/** A key range, as the key columns' text: after `after` (exclusive), up to `upTo` (inclusive); open where undefined. */
export interface KeyRange {
  after?: string[];
  upTo?: string[];
  /**
   * A chunk's share of the heads pass, found when its run was planned (ids with events and
   * no legacy row in this range). Undefined: walk the heads in the range instead.
   */
  absentHeads?: string[];
}

export function baseReport(ctx: Pick<TypeContext, 'aggregate' | 'mode'>, model?: ReadModel): TypeReport {
  const now = new Date().toISOString();
  return {
    aggregateType: ctx.aggregate.type,
    target: model ? `read-model:${model.name}` : 'projection',
    mode: ctx.mode,
    outcome: 'incomplete',
    warnings: [],
    counts: emptyCounts(),
    fieldCounts: {},
    classCounts: {},
    mismatches: [],
    cut: { pages: 0 },
    projectorVersion: ctx.aggregate.projectionVersion,
    configHash: configHash(ctx.aggregate, model),
    startedAt: now,
    finishedAt: now,
  };
}

export function incompleteReport(ctx: Pick<TypeContext, 'aggregate' | 'mode'>, reason: string, model?: ReadModel): TypeReport {
  return { ...baseReport(ctx, model), outcome: 'incomplete', reason };
}

/** The pause between pages (`pauseMs`); a cancel ends it early and makes the type incomplete ('cancelled'). */
export async function pace(ctx: TypeContext): Promise<void> {
  const ms = ctx.options.pauseMs ?? 0;
  if (ms > 0) await sleep(ms, undefined, { signal: ctx.options.signal }).catch(() => undefined);
  if (ctx.options.signal?.aborted) throw new Incomplete('cancelled');
}

/** Stops a type's run: it is incomplete for this reason. */
export class Incomplete extends Error {}

/** The report with its mismatches, counted per class and (ignored ones left out) per field. */
export function finished(report: TypeReport, mismatches: Mismatch[]): TypeReport {
  report.mismatches = mismatches;
  for (const m of mismatches) {
    report.classCounts[m.class] = (report.classCounts[m.class] ?? 0) + 1;
    if (m.class === 'known divergence') continue;
    for (const f of m.fields) report.fieldCounts[f.field] = (report.fieldCounts[f.field] ?? 0) + 1;
  }
  report.finishedAt = new Date().toISOString();
  return report;
}

/** A page of the type's aggregate ids from its heads, in canonical ("C") order after `after`. */
export async function headsAfter(ctx: TypeContext, after: string | undefined, limit: number): Promise<string[]> {
  // A chunk takes the heads whose id, turned back into key values, is in its range: the
  // chunks' ranges cover every key once, so each head is checked by exactly one chunk.
  const key = keyOfId(ctx.aggregate, 'aggregate_id');
  const inRange = ctx.range
    ? `AND ${afterKeyArray(ctx.aggregate, key, '$4::text[]')} AND ${upToKey(ctx.aggregate, key, '$5::text[]')}`
    : 'AND $4::text[] IS NULL AND $5::text[] IS NULL';
  const rows = await ctx.sql.query<{ id: string }>(
    `SELECT aggregate_id AS id FROM ${ctx.tables.heads} WHERE aggregate_type = $1::text AND ($2::text IS NULL OR aggregate_id > $2::text) ${inRange}
     ORDER BY aggregate_id LIMIT $3::int`,
    [ctx.aggregate.type, after ?? null, limit, ctx.range?.after ?? null, ctx.range?.upTo ?? null],
  );
  return rows.map((r) => r.id);
}

/** An expired ignore rule fails every run of its type until it is renewed or removed. */
export function refuseExpired(aggregate: AggregateType, today: string): void {
  const expired = expiredRules(aggregate, today);
  if (expired.length === 0) return;
  throw new Incomplete(
    `ignore rule${expired.length > 1 ? 's' : ''} expired: ${expired.map((r) => `"${r.reason}" (${r.field ?? 'whole aggregate'}, last day ${r.expires})`).join('; ')}: renew or remove ${expired.length > 1 ? 'them' : 'it'}`,
  );
}

export async function refuseExpiredRules(ctx: TypeContext): Promise<void> {
  const [row] = await ctx.sql.query<{ today: string }>(`SELECT current_date::text AS today`);
  refuseExpired(ctx.aggregate, row!.today);
}

/** A listener or "both" type can be checked only with its opening import done and a listener that has run. */
export async function checkListenerState(ctx: TypeContext): Promise<void> {
  const { sql, tables, aggregate, config } = ctx;
  const [row] = await sql.query<{ baseline: string | null; checkpoint: string | null }>(
    `SELECT (SELECT status FROM ${tables.baselines} WHERE aggregate_type = $1::text) AS baseline,
            (SELECT checkpoint_lsn::text FROM ${tables.replicationState} WHERE slot_name = $2::text) AS checkpoint`,
    [aggregate.type, config.replication.slot],
  );
  if (row!.baseline === 'pending') throw new Incomplete(`the baseline import of ${aggregate.type} is pending: let hindsight backfill finish first`);
  if (row!.checkpoint === null) throw new Incomplete(`the listener of slot ${config.replication.slot} has never run: run hindsight backfill and hindsight listen first`);
}

/** The lag cut after a snapshot, for listener and "both" types. */
export async function passCut(ctx: TypeContext, report: TypeReport): Promise<void> {
  if (ctx.aggregate.capture === 'app') return;
  const lsn = await commitCut(ctx.sql, ctx.runId);
  report.cut.cutLsn ??= lsn;
  const timeoutMs = ctx.options.lagTimeoutMs ?? 30_000;
  if (!(await waitForCut(ctx.sql, ctx.tables, ctx.config.replication.slot, lsn, timeoutMs, ctx.options.signal))) {
    throw new Incomplete(
      `the listener did not reach the verification cut (${lsn}) within ${timeoutMs / 1000} s: is hindsight listen running? ` +
        '(raise --lag-timeout if it is far behind)',
    );
  }
}

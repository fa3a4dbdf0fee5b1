import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { AggregateType, ResolvedConfig } from '../config/resolve.js';
import { inSnapshot } from '../db/transaction.js';
import { toSql, type Sql } from '../db/queryable.js';
import { ValidationError } from '../errors.js';
import { checkTransactionIds } from '../readmodel/restoredClusterGuard.js';
import { TEXT_SETTINGS } from '../replication/backfill.js';
import { storeTables, type StoreTables } from '../store/tables.js';
import { comparedColumns, type ComparedColumn } from './columns.js';
import { compareRows, projectedValue, type RowPairs } from './compare.js';
import { commitCut, waitForCut } from './cut.js';
import { CLASS_OF_MISSING, explainFieldMismatch, renamed } from './explain.js';
import { configHash, lastCompleteRun, recordTypeRun } from './history.js';
import { aggregateRule, expiredRules, fieldRule } from './ignore.js';
import { readLegacyPage, type LegacyPage, type LegacyRow, type PageSelection } from './legacy.js';
import { emptyCounts, outcomeOf, worstOutcome, type FieldDifference, type Mismatch, type RunMode, type TypeReport, type VerifyReport } from './report.js';
import { foldVisible, type VisibleFold } from './visibleFolds.js';
import { compareModelRows, foldUpTo, readModelColumns, readModelPage } from './readModelTarget.js';
import type { ReadModel } from '../readmodel/declaration.js';

/**
 * `hindsight verify`: for every aggregate of a type, does the state its events produce
 * equal what the legacy row holds? Correct under concurrent writes and a lagging listener
 * (DESIGN.md, "Verification under a lagging listener"): each page of legacy rows is read in
 * a snapshot S of its own; listener and "both" types wait for the listener to pass a cut
 * committed after S; only events whose source transaction S sees are folded. A second pass
 * over the type's heads finds aggregates whose row is gone. Anything that could not be
 * checked makes the type incomplete, never clean.
 */

export interface VerifyOptions {
  connectionString: string;
  /** Types to verify. Default: every type in the config. */
  types?: readonly string[];
  /**
   * "projection" (default): events against the legacy rows. "read-model:<name>": each row of
   * that read model against the fold of its events up to the sequence it records.
   */
  target?: string;
  /** Aggregates to check, by canonical id (mode "ids"). */
  ids?: readonly string[];
  /** Check this many random legacy rows (mode "sample"). */
  sample?: number;
  /** Only aggregates with events after the last complete run's cut, and rows updated since (mode "changed"). */
  changedSinceLast?: boolean;
  /** How long to wait for the listener to reach a page's cut. Default 30 s. */
  lagTimeoutMs?: number;
  /** Pages compared at once. Default 2. */
  concurrency?: number;
  /** Legacy rows per page (each page is one snapshot). Default 1,000. */
  pageSize?: number;
  /** Store the run in the history. Default true. */
  record?: boolean;
  /** After each page; a returned promise is waited for. */
  onProgress?: (progress: { aggregateType: string; rows: number; estimatedRows: number }) => void | Promise<void>;
  signal?: AbortSignal;
}

interface TypeContext {
  sql: Sql;
  pool: pg.Pool;
  tables: StoreTables;
  config: ResolvedConfig;
  aggregate: AggregateType;
  runId: string;
  mode: RunMode;
  options: VerifyOptions;
}

/** Validated mode and ids; throws before anything runs on bad options. */
export function verifyMode(options: Pick<VerifyOptions, 'ids' | 'sample' | 'changedSinceLast'>): RunMode {
  const chosen = [options.ids !== undefined, options.sample !== undefined, options.changedSinceLast === true].filter(Boolean).length;
  if (chosen > 1) throw new ValidationError('give at most one of ids, sample and changedSinceLast');
  if (options.sample !== undefined && (!Number.isSafeInteger(options.sample) || options.sample < 1)) {
    throw new ValidationError(`sample must be a whole number from 1, got ${String(options.sample)}`, { path: 'sample' });
  }
  if (options.ids !== undefined && options.ids.length === 0) throw new ValidationError('ids is empty', { path: 'ids' });
  return options.ids ? 'ids' : options.sample !== undefined ? 'sample' : options.changedSinceLast ? 'changed' : 'full';
}

export async function verify(config: ResolvedConfig, input: VerifyOptions): Promise<VerifyReport> {
  const options = { ...input, ids: input.ids ? [...new Set(input.ids)] : undefined };
  const mode = verifyMode(options);
  if (options.types && options.types.length === 0) throw new ValidationError('types is empty: leave it out to verify every type', { path: 'types' });
  const model = readModelTarget(config, options);
  const names = model ? [model.aggregateType] : (options.types ?? [...config.aggregates.keys()]);
  for (const name of names) {
    if (!config.aggregates.has(name)) throw new ValidationError(`unknown aggregate type "${name}"; the config declares ${[...config.aggregates.keys()].join(', ') || 'none'}`);
  }
  const runId = randomUUID();
  const startedAt = new Date().toISOString();
  const pool = new pg.Pool({ connectionString: options.connectionString, options: TEXT_SETTINGS, max: Math.max(2, (options.concurrency ?? 2) + 1) });
  pool.on('error', () => undefined);
  const sql = toSql(pool);
  const tables = storeTables(config.quotedSchema);
  try {
    let restored: string | undefined;
    await checkTransactionIds(sql, tables).catch((error: unknown) => {
      restored = error instanceof Error ? error.message : String(error);
    });
    const types: TypeReport[] = [];
    for (const name of names) {
      const aggregate = config.aggregates.get(name)!;
      const context: TypeContext = { sql, pool, tables, config, aggregate, runId, mode, options };
      const report = restored
        ? incompleteReport(context, restored, model)
        : model
          ? await verifyReadModel(context, model)
          : await verifyType(context);
      if (options.record !== false) report.historyId = await recordTypeRun(sql, tables, runId, report);
      types.push(report);
    }
    return { runId, outcome: worstOutcome(types.map((t) => t.outcome)), types, startedAt, finishedAt: new Date().toISOString() };
  } finally {
    await pool.end();
  }
}

/** The read model named by `target`, checked before anything runs. */
function readModelTarget(config: ResolvedConfig, options: VerifyOptions): ReadModel | undefined {
  const target = options.target ?? 'projection';
  if (target === 'projection') return undefined;
  const name = target.startsWith('read-model:') ? target.slice('read-model:'.length) : undefined;
  const model = name === undefined ? undefined : config.readModels.get(name);
  if (!model) {
    const known = [...config.readModels.keys()].map((n) => `read-model:${n}`);
    throw new ValidationError(`unknown target "${target}": give projection${known.length ? ` or one of ${known.join(', ')}` : ' (the config declares no read models)'}`, { path: 'target' });
  }
  if (options.types && (options.types.length !== 1 || options.types[0] !== model.aggregateType)) {
    throw new ValidationError(`the read model ${model.name} belongs to ${model.aggregateType}, not ${options.types.join(', ')}`, { path: 'target' });
  }
  if (verifyMode(options) !== 'full') throw new ValidationError('a read-model target is verified whole: leave out ids, sample and changedSinceLast', { path: 'target' });
  return model;
}

function baseReport(ctx: TypeContext, model?: ReadModel): TypeReport {
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

function incompleteReport(ctx: TypeContext, reason: string, model?: ReadModel): TypeReport {
  return { ...baseReport(ctx, model), outcome: 'incomplete', reason };
}

/** Stops a type's run: it is incomplete for this reason. */
class Incomplete extends Error {}

async function verifyType(ctx: TypeContext): Promise<TypeReport> {
  const { sql, tables, aggregate } = ctx;
  const report = baseReport(ctx);
  const pageMismatches: Mismatch[][] = [];
  let problem: string | undefined;
  try {
    const [{ today, heads, estimate }] = (await sql.query<{ today: string; heads: string; estimate: string }>(
      `SELECT current_date::text AS today,
              (SELECT count(*) FROM ${tables.heads} WHERE aggregate_type = $1::text)::text AS heads,
              (SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = to_regclass($2::text))::text AS estimate`,
      [aggregate.type, aggregate.table.quoted],
    )) as [{ today: string; heads: string; estimate: string | null }];
    refuseExpired(aggregate, today);
    const found = await comparedColumns(sql, aggregate);
    if ('problem' in found) throw new Incomplete(found.problem);
    const columns = found.columns;
    const streamed = aggregate.capture !== 'app';
    if (streamed) await checkListenerState(ctx);

    const seen = new Set<string>();
    const process = async (page: LegacyPage, index: number) => {
      pageMismatches[index] = await comparePage(ctx, columns, page, report, seen);
    };
    let changed: { since: string; ids: string[] } | undefined;
    if (ctx.mode === 'changed') changed = await changedSince(ctx, report);

    // Pass 1: the legacy rows, page by page; up to `concurrency` pages compared at once.
    const concurrency = Math.max(1, ctx.options.concurrency ?? 2);
    const pageSize = ctx.options.pageSize ?? 1000;
    const inFlight: Array<Promise<void>> = [];
    let failure: unknown;
    let after: string[] | undefined;
    try {
    for (let index = 0; ; index++) {
      if (ctx.options.signal?.aborted) throw new Incomplete('cancelled');
      const selection: PageSelection =
        ctx.mode === 'ids'
          ? { kind: 'ids', ids: ctx.options.ids! }
          : ctx.mode === 'sample'
            ? { kind: 'sample', size: ctx.options.sample! }
            : changed
              ? { kind: 'changed', since: changed.since, ids: changed.ids, after, limit: pageSize }
              : { kind: 'after', key: after, limit: pageSize };
      const page = await readLegacyPage(ctx.pool, aggregate, columns, selection);
      report.cut.pages += 1;
      report.cut.firstSnapshot ??= page.snapshot;
      report.cut.walLsn ??= page.walLsn;
      report.cut.since ??= page.since;
      report.counts.rows += page.rows.length;
      inFlight.push(process(page, index).catch((error: unknown) => void (failure ??= error)));
      if (inFlight.length >= concurrency) await inFlight.shift();
      if (failure) throw failure;
      await ctx.options.onProgress?.({ aggregateType: aggregate.type, rows: report.counts.rows, estimatedRows: Number(estimate ?? 0) });
      const last = page.rows[page.rows.length - 1];
      if (!last || selection.kind === 'ids' || selection.kind === 'sample' || page.rows.length < pageSize) break;
      after = last.key;
    }
    } finally {
      // A failed or cancelled page must not leave others running into the next type or the report.
      await Promise.allSettled(inFlight);
    }
    if (failure) throw failure;

    // Pass 2: aggregates the legacy pages did not show (not for a sample, which picks rows).
    if (ctx.mode !== 'sample') {
      const candidates = ctx.mode === 'ids' ? ctx.options.ids!.filter((id) => !seen.has(id)) : changed ? changed.ids.filter((id) => !seen.has(id)) : undefined;
      pageMismatches.push(await missingInLegacy(ctx, columns, report, seen, candidates, pageSize));
    }
    if (ctx.mode === 'ids') {
      const unknown = ctx.options.ids!.filter((id) => !seen.has(id));
      if (unknown.length > 0) throw new Incomplete(`no legacy row and no events for ${aggregate.type} ${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? ', ...' : ''}: nothing to compare them with`);
    }
    const nothingToDo = (report.counts.rows === 0 && Number(heads) === 0) || (ctx.mode === 'changed' && report.counts.rows === 0 && changed!.ids.length === 0);
    if (report.counts.compared === 0 && !nothingToDo) {
      throw new Incomplete(`nothing was compared (${report.counts.rows} legacy rows, ${heads} aggregates with events)`);
    }
    if (ctx.mode === 'changed' && report.counts.compared === 0) report.warnings.push('no aggregate changed since the last complete run');
    report.outcome = outcomeOf(report.counts, undefined, Number(heads));
  } catch (error) {
    if (!(error instanceof Incomplete)) throw error;
    problem = error.message;
    report.outcome = 'incomplete';
    report.reason = problem;
  }
  return finished(report, pageMismatches.flat());
}

/** The report with its mismatches, counted per class and (ignored ones left out) per field. */
function finished(report: TypeReport, mismatches: Mismatch[]): TypeReport {
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
async function headsAfter(ctx: TypeContext, after: string | undefined, limit: number): Promise<string[]> {
  const rows = await ctx.sql.query<{ id: string }>(
    `SELECT aggregate_id AS id FROM ${ctx.tables.heads} WHERE aggregate_type = $1::text AND ($2::text IS NULL OR aggregate_id > $2::text)
     ORDER BY aggregate_id LIMIT $3::int`,
    [ctx.aggregate.type, after ?? null, limit],
  );
  return rows.map((r) => r.id);
}

/** An expired ignore rule fails every run of its type until it is renewed or removed. */
function refuseExpired(aggregate: AggregateType, today: string): void {
  const expired = expiredRules(aggregate, today);
  if (expired.length === 0) return;
  throw new Incomplete(
    `ignore rule${expired.length > 1 ? 's' : ''} expired: ${expired.map((r) => `"${r.reason}" (${r.field ?? 'whole aggregate'}, last day ${r.expires})`).join('; ')}: renew or remove ${expired.length > 1 ? 'them' : 'it'}`,
  );
}

async function refuseExpiredRules(ctx: TypeContext): Promise<void> {
  const [row] = await ctx.sql.query<{ today: string }>(`SELECT current_date::text AS today`);
  refuseExpired(ctx.aggregate, row!.today);
}

/** A listener or "both" type can be checked only with its opening import done and a listener that has run. */
async function checkListenerState(ctx: TypeContext): Promise<void> {
  const { sql, tables, aggregate, config } = ctx;
  const [row] = await sql.query<{ baseline: string | null; checkpoint: string | null }>(
    `SELECT (SELECT status FROM ${tables.baselines} WHERE aggregate_type = $1::text) AS baseline,
            (SELECT checkpoint_lsn::text FROM ${tables.replicationState} WHERE slot_name = $2::text) AS checkpoint`,
    [aggregate.type, config.replication.slot],
  );
  if (row!.baseline === 'pending') throw new Incomplete(`the baseline import of ${aggregate.type} is pending: let hindsight backfill finish first`);
  if (row!.checkpoint === null) throw new Incomplete(`the listener of slot ${config.replication.slot} has never run: run hindsight backfill and hindsight listen first`);
}

/**
 * For --changed-since-last: the aggregates with events after the last complete run's first
 * snapshot, plus those it found mismatched; and the time from which legacy rows count as
 * changed (the start of the oldest transaction running at that run's first snapshot).
 */
async function changedSince(ctx: TypeContext, report: TypeReport): Promise<{ since: string; ids: string[] }> {
  const last = await lastCompleteRun(ctx.sql, ctx.tables, ctx.aggregate.type, 'projection');
  if (!last || !last.run.cut.firstSnapshot || !last.run.cut.since) {
    throw new Incomplete('--changed-since-last needs an earlier complete full or changed run of this type: run a full verify first');
  }
  const { run } = last;
  if (!ctx.aggregate.verify.updatedAt) {
    report.warnings.push(
      `without verify.updatedAt this run cannot see legacy writes that recorded no event since ${run.cut.since}: only aggregates with new events are checked`,
    );
  }
  // Every event appended after that snapshot has a transaction id at or above its xmin (a superset is fine).
  const rows = await ctx.sql.query<{ id: string }>(
    `SELECT DISTINCT e.aggregate_id AS id FROM ${ctx.tables.events} e
     WHERE e.aggregate_type = $1::text AND e.transaction_id >= pg_snapshot_xmin($2::pg_snapshot)`,
    [ctx.aggregate.type, run.cut.firstSnapshot],
  );
  return { since: run.cut.since!, ids: [...new Set([...rows.map((r) => r.id), ...last.mismatched])] };
}

/** The lag cut after a snapshot, for listener and "both" types. */
async function passCut(ctx: TypeContext, report: TypeReport): Promise<void> {
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

async function comparePage(ctx: TypeContext, columns: readonly ComparedColumn[], page: LegacyPage, report: TypeReport, seen: Set<string>, cutPassed = false): Promise<Mismatch[]> {
  const { aggregate } = ctx;
  if (page.rows.length === 0) return [];
  for (const row of page.rows) seen.add(row.id);
  if (!cutPassed) await passCut(ctx, report);
  const visible = await foldVisible(ctx.sql, ctx.tables, aggregate, page.rows.map((r) => r.id), page.snapshot);
  if ('problem' in visible) throw new Incomplete(visible.problem);
  const withState = page.rows.filter((row) => visible.folds.get(row.id) && !visible.folds.get(row.id)!.folded.deleted);
  const pairs: RowPairs[] = withState.map((row) => ({
    legacy: columns.map((c, k) => renamed(c, row.values[k] ?? null)),
    projected: columns.map((c) => projectedValue(visible.folds.get(row.id)!.folded.state, c.field)),
  }));
  const verdicts = await compareRows(ctx.sql, columns, pairs);
  const verdictOf = new Map(withState.map((row, i) => [row.id, { pairs: pairs[i]!, verdicts: verdicts[i]! }]));

  const mismatches: Mismatch[] = [];
  for (const row of page.rows) {
    const fold = visible.folds.get(row.id);
    const whole = aggregateRule(aggregate, row.id);
    let mismatch: Mismatch | undefined;
    if (!fold) {
      mismatch = {
        aggregateId: row.id,
        kind: 'missing-in-events',
        class: CLASS_OF_MISSING['missing-in-events'],
        fields: [],
        explanation: ['a legacy row no event mentions: it was never imported (hindsight backfill) and no write to it recorded an event'],
      };
    } else if (fold.folded.deleted) {
      mismatch = await deletedButPresent(aggregate, row, fold);
    } else {
      const { pairs: pair, verdicts: verdict } = verdictOf.get(row.id)!;
      const differences: FieldDifference[] = [];
      const ignoredFields: FieldDifference[] = [];
      columns.forEach((column, k) => {
        if (verdict[k]!.equal) return;
        const projected = pair.projected[k]!;
        const difference: FieldDifference = {
          field: column.field,
          column: column.column,
          legacy: row.values[k] ?? null,
          projected: projected.missing ? 'missing' : projected.text,
          ...(verdict[k]!.note ? { note: verdict[k]!.note } : {}),
        };
        (fieldRule(aggregate, row.id, column.field) ? ignoredFields : differences).push(difference);
      });
      if (differences.length > 0) {
        mismatch = { aggregateId: row.id, kind: 'field-mismatch', fields: differences, ...(await explainFieldMismatch(ctx.sql, aggregate, columns, row, fold, differences)) };
      } else if (ignoredFields.length > 0) {
        const rule = fieldRule(aggregate, row.id, ignoredFields[0]!.field)!;
        mismatches.push({
          aggregateId: row.id,
          kind: 'field-mismatch',
          class: 'known divergence',
          fields: ignoredFields,
          explanation: [`ignored: ${rule.reason} (until ${rule.expires})`],
          ignoredBy: { reason: rule.reason, expires: rule.expires },
        });
        report.counts.ignored += 1;
        report.counts.compared += 1;
        continue;
      }
    }
    report.counts.compared += 1;
    if (whole) {
      // Counted as ignored, never as matched, whatever the comparison said.
      report.counts.ignored += 1;
      if (mismatch) mismatches.push({ ...mismatch, class: 'known divergence', explanation: [`ignored: ${whole.reason} (until ${whole.expires})`, ...mismatch.explanation], ignoredBy: { reason: whole.reason, expires: whole.expires } });
      continue;
    }
    if (!mismatch) {
      report.counts.matched += 1;
      continue;
    }
    if (mismatch.kind === 'missing-in-events') report.counts.missingInEvents += 1;
    else report.counts.mismatched += 1;
    mismatches.push(mismatch);
  }
  return mismatches;
}

async function deletedButPresent(aggregate: AggregateType, row: LegacyRow, fold: VisibleFold): Promise<Mismatch> {
  const last = fold.events[fold.events.length - 1]!;
  const later = row.updatedAt !== null && row.updatedAt > fold.lastRecordedAt;
  return {
    aggregateId: row.id,
    kind: 'field-mismatch',
    class: later ? 'legacy drift' : 'missing event',
    fields: [{ field: '(row)', column: '(row)', legacy: 'present', projected: 'deleted' }],
    explanation: [
      `the events end with a delete (event ${last.sequence}, ${last.type}, ${last.occurredAt}) but the legacy row exists` +
        (later ? `: it was written after that (${aggregate.verify.updatedAt} ${row.updatedAt}) by a path that records no event` : ': a re-insert recorded no event'),
    ],
  };
}

/**
 * Pass 2: the type's aggregates (from its heads, in canonical order, or the given ids)
 * that were not among the legacy rows read, checked in a snapshot of their own: a row that
 * is absent while the events visible in that snapshot say it exists is "missing in legacy";
 * a projection marked deleted matches an absent row.
 */
async function missingInLegacy(
  ctx: TypeContext,
  columns: readonly ComparedColumn[],
  report: TypeReport,
  seen: Set<string>,
  candidates: readonly string[] | undefined,
  pageSize: number,
): Promise<Mismatch[]> {
  const mismatches: Mismatch[] = [];
  let after: string | undefined;
  let given = candidates ? [...candidates] : undefined;
  for (;;) {
    let ids: string[];
    if (given) {
      ids = given.slice(0, pageSize);
      given = given.slice(pageSize);
    } else {
      ids = await headsAfter(ctx, after, pageSize);
      after = ids[ids.length - 1];
    }
    if (ids.length === 0) break;
    const unseen = ids.filter((id) => !seen.has(id));
    if (unseen.length > 0) mismatches.push(...(await checkUnseen(ctx, columns, report, seen, unseen)));
    if (given ? given.length === 0 : ids.length < pageSize) break;
  }
  return mismatches;
}

/**
 * Aggregates the legacy pages did not show, in one new snapshot: rows that exist now (made
 * or re-keyed since their page was read) are compared like any page; for absent ones the
 * events visible in that snapshot must end in a delete.
 */
async function checkUnseen(ctx: TypeContext, columns: readonly ComparedColumn[], report: TypeReport, seen: Set<string>, ids: readonly string[]): Promise<Mismatch[]> {
  const { aggregate } = ctx;
  const counts = report.counts;
  const page = await readLegacyPage(ctx.pool, aggregate, columns, { kind: 'ids', ids });
  const snapshot = page.snapshot;
  const present = new Set(page.rows.map((r) => r.id));
  report.counts.rows += page.rows.length;
  await passCut(ctx, report);
  const compared = await comparePage(ctx, columns, page, report, seen, true);
  const absent = ids.filter((id) => !present.has(id));
  if (absent.length === 0) return compared;
  const visible = await foldVisible(ctx.sql, ctx.tables, aggregate, absent, snapshot);
  if ('problem' in visible) throw new Incomplete(visible.problem);
  const mismatches: Mismatch[] = [...compared];
  for (const id of absent) {
    const fold = visible.folds.get(id);
    if (!fold) continue; // neither a row nor an event in this snapshot: it does not exist yet
    seen.add(id);
    counts.compared += 1;
    const whole = aggregateRule(aggregate, id);
    if (fold.folded.deleted) {
      if (whole) counts.ignored += 1;
      else counts.matched += 1;
      continue;
    }
    const last = fold.events[fold.events.length - 1]!;
    const mismatch: Mismatch = {
      aggregateId: id,
      kind: 'missing-in-legacy',
      class: CLASS_OF_MISSING['missing-in-legacy'],
      fields: [],
      explanation: [
        `events say the row exists (last event ${last.sequence}, ${last.type}, ${last.occurredAt}) but the legacy table has none: ` +
          'it was deleted by a path that records no event, or the events describe a row that never existed',
      ],
    };
    if (whole) {
      counts.ignored += 1;
      mismatches.push({ ...mismatch, class: 'known divergence', ignoredBy: { reason: whole.reason, expires: whole.expires } });
    } else {
      counts.missingInLegacy += 1;
      mismatches.push(mismatch);
    }
  }
  return mismatches;
}

/** `--target read-model:<name>`: the rows, page by page, then aggregates missing from it. */
async function verifyReadModel(ctx: TypeContext, model: ReadModel): Promise<TypeReport> {
  const { sql, tables, aggregate } = ctx;
  const report = baseReport(ctx, model);
  const pages: Mismatch[][] = [];
  try {
    if (model.write) throw new Incomplete(`the read model ${model.name} is written by a custom write function: its rows cannot be compared column by column`);
    await refuseExpiredRules(ctx);
    const found = await readModelColumns(sql, model);
    if ('problem' in found) throw new Incomplete(found.problem);
    const pageSize = ctx.options.pageSize ?? 1000;
    const seen = new Set<string>();
    let after: string | undefined;
    for (;;) {
      if (ctx.options.signal?.aborted) throw new Incomplete('cancelled');
      const page = await readModelPage(ctx.pool, tables, model, found, after, pageSize);
      if (!page.checkpoint) throw new Incomplete(`the updater has never run for the read model ${model.name}: run hindsight project first`);
      report.cut.pages += 1;
      report.cut.firstSnapshot ??= page.snapshot;
      report.counts.rows += page.rows.length;
      for (const row of page.rows) seen.add(row.id);
      const folds = await foldUpTo(sql, tables, aggregate, new Map(page.rows.map((r) => [r.id, r.sequence])));
      pages.push(await compareModelRows(sql, model, found, page.rows, folds, report));
      ctx.options.onProgress?.({ aggregateType: aggregate.type, rows: report.counts.rows, estimatedRows: 0 });
      if (page.rows.length < pageSize) break;
      after = page.rows[page.rows.length - 1]!.id;
    }
    pages.push(await missingInReadModel(ctx, model, seen, pageSize, report));
    const [{ heads }] = (await sql.query<{ heads: string }>(`SELECT count(*)::text AS heads FROM ${tables.heads} WHERE aggregate_type = $1::text`, [aggregate.type])) as [{ heads: string }];
    if (report.counts.compared === 0 && Number(heads) > 0) {
      throw new Incomplete(`nothing was compared: ${heads} aggregates have events but the read model has reached none of them`);
    }
    report.outcome = outcomeOf(report.counts, undefined, Number(heads));
  } catch (error) {
    if (!(error instanceof Incomplete)) throw error;
    report.outcome = 'incomplete';
    report.reason = error.message;
  }
  return finished(report, pages.flat());
}

/**
 * Aggregates of the type with no read-model row although events of theirs are at or below
 * the read model's checkpoint (read in the same snapshot as the rows' absence): the updater
 * has passed them, so a row should exist, unless the events end in a delete and the read
 * model removes deleted aggregates.
 */
async function missingInReadModel(ctx: TypeContext, model: ReadModel, seen: Set<string>, pageSize: number, report: TypeReport): Promise<Mismatch[]> {
  const { sql, tables, aggregate } = ctx;
  const mismatches: Mismatch[] = [];
  let after: string | undefined;
  let notReached = 0;
  for (;;) {
    const heads = await headsAfter(ctx, after, pageSize);
    const unseen = heads.filter((id) => !seen.has(id));
    if (unseen.length > 0) {
      const passed = await inSnapshot(ctx.pool, async (client) => {
        const { rows } = await client.query<{ id: string; upto: string }>({
          text: `SELECT e.aggregate_id AS id, max(e.sequence)::text AS upto
                 FROM ${tables.events} e, ${tables.checkpoints} c
                 WHERE c.subscriber = $3::text AND e.aggregate_type = $1::text AND e.aggregate_id = ANY ($2::text[])
                   AND (e.transaction_id, e.global_position) <= (c.transaction_id, c.global_position)
                   AND NOT EXISTS (SELECT 1 FROM ${model.table.quoted} m WHERE m.aggregate_id = e.aggregate_id)
                 GROUP BY e.aggregate_id`,
          values: [aggregate.type, unseen, model.subscriber],
        });
        return rows;
      });
      notReached += unseen.length - passed.length;
      const folds = await foldUpTo(sql, tables, aggregate, new Map(passed.map((p) => [p.id, Number(p.upto)])));
      for (const { id } of passed) {
        const folded = folds.get(id)!;
        report.counts.compared += 1;
        if (folded.deleted && model.onDelete === 'remove') {
          report.counts.matched += 1;
          continue;
        }
        report.counts.mismatched += 1;
        mismatches.push({
          aggregateId: id,
          kind: 'missing-in-read-model',
          class: 'projector bug',
          fields: [],
          explanation: [`the updater's checkpoint is past event ${folded.version} of this aggregate but the read model has no row for it: rebuild the read model (hindsight rebuild ${model.name})`],
        });
      }
    }
    if (heads.length < pageSize) break;
    after = heads[heads.length - 1];
  }
  if (notReached > 0) report.warnings.push(`${notReached} aggregate(s) have events only after the read model's checkpoint: not applied yet, not compared`);
  return mismatches;
}

import { comparedColumns } from './columns.js';
import { comparePage } from './comparePage.js';
import { missingInLegacy } from './headsPass.js';
import { lastCompleteRun } from './history.js';
import { readLegacyPage, type LegacyPage, type PageSelection } from './legacy.js';
import { outcomeOf, type Mismatch, type TypeReport } from './report.js';
import { baseReport, checkListenerState, finished, Incomplete, pace, refuseExpired, type TypeContext } from './typeContext.js';

/** A projection run of one type: the legacy rows page by page, then the heads pass. */

export async function verifyType(ctx: TypeContext): Promise<TypeReport> {
  const report = baseReport(ctx);
  const pageMismatches: Mismatch[][] = [];
  try {
    const { heads, changedIds } = await projectionPasses(ctx, report, pageMismatches);
    concludeType(ctx, report, heads, changedIds);
  } catch (error) {
    if (!(error instanceof Incomplete)) throw error;
    report.outcome = 'incomplete';
    report.reason = error.message;
  }
  return finished(report, pageMismatches.flat());
}

/**
 * Both passes over the type (or over the key range of a chunk, `ctx.range`), adding to the
 * report's counts and cut and to `pageMismatches`; throws Incomplete if the type cannot be checked.
 */
export async function projectionPasses(ctx: TypeContext, report: TypeReport, pageMismatches: Mismatch[][]): Promise<{ heads: number; changedIds?: string[] }> {
  const { sql, tables, aggregate } = ctx;
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
  let after: string[] | undefined = ctx.range?.after;
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
            : { kind: 'after', key: after, limit: pageSize, upTo: ctx.range?.upTo };
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
    await pace(ctx);
  }
  } finally {
    // A failed or cancelled page must not leave others running into the next type or the report.
    await Promise.allSettled(inFlight);
  }
  if (failure) throw failure;

  // Pass 2: aggregates the legacy pages did not show (not for a sample, which picks rows).
  if (ctx.mode !== 'sample') {
    const candidates =
      ctx.mode === 'ids'
        ? ctx.options.ids!.filter((id) => !seen.has(id))
        : changed
          ? changed.ids.filter((id) => !seen.has(id))
          : ctx.range?.absentHeads?.filter((id) => !seen.has(id));
    pageMismatches.push(await missingInLegacy(ctx, columns, report, seen, candidates, pageSize));
  }
  if (ctx.mode === 'ids') {
    const unknown = ctx.options.ids!.filter((id) => !seen.has(id));
    if (unknown.length > 0) throw new Incomplete(`no legacy row and no events for ${aggregate.type} ${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? ', ...' : ''}: nothing to compare them with`);
  }
  return { heads: Number(heads), changedIds: changed?.ids };
}

/** The type's outcome once every pass (or every chunk) has counted, given the aggregates with events. */
export function concludeType(ctx: Pick<TypeContext, 'mode'>, report: TypeReport, heads: number, changedIds: readonly string[] | undefined): void {
  const nothingToDo = (report.counts.rows === 0 && heads === 0) || (ctx.mode === 'changed' && report.counts.rows === 0 && changedIds!.length === 0);
  if (report.counts.compared === 0 && !nothingToDo) {
    throw new Incomplete(`nothing was compared (${report.counts.rows} legacy rows, ${heads} aggregates with events)`);
  }
  if (ctx.mode === 'changed' && report.counts.compared === 0) report.warnings.push('no aggregate changed since the last complete run');
  report.outcome = outcomeOf(report.counts, undefined, heads);
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

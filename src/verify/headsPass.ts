import type { ComparedColumn } from './columns.js';
import { comparePage } from './comparePage.js';
import { CLASS_OF_MISSING } from './explain.js';
import { aggregateRule } from './ignore.js';
import { readLegacyPage } from './legacy.js';
import type { Mismatch, TypeReport } from './report.js';
import { headsAfter, Incomplete, pace, passCut, type TypeContext } from './typeContext.js';
import { foldVisible } from './visibleFolds.js';

/**
 * Pass 2: the type's aggregates (from its heads, in canonical order, or the given ids)
 * that were not among the legacy rows read, checked in a snapshot of their own: a row that
 * is absent while the events visible in that snapshot say it exists is "missing in legacy";
 * a projection marked deleted matches an absent row.
 */
export async function missingInLegacy(
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
    await pace(ctx);
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
  const visible = await foldVisible(ctx.sql, ctx.tables, aggregate, absent, snapshot, true); // rare: explained in full
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

import type { AggregateType } from '../config/resolve.js';
import type { ComparedColumn } from './columns.js';
import { compareRows, projectedValue, type RowPairs } from './compare.js';
import { CLASS_OF_MISSING, explainFieldMismatch, renamed } from './explain.js';
import { aggregateRule, fieldRule } from './ignore.js';
import type { LegacyPage, LegacyRow } from './legacy.js';
import type { FieldDifference, Mismatch, TypeReport } from './report.js';
import { Incomplete, passCut, type TypeContext } from './typeContext.js';
import { foldVisible, type VisibleFold } from './visibleFolds.js';

/** One page of legacy rows against the folds of their events visible in the page's snapshot. */

export async function comparePage(ctx: TypeContext, columns: readonly ComparedColumn[], page: LegacyPage, report: TypeReport, seen: Set<string>, cutPassed = false): Promise<Mismatch[]> {
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
      mismatch = await deletedButPresent(aggregate, row, await detailed(ctx, row.id, page.snapshot, fold));
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
        mismatch = { aggregateId: row.id, kind: 'field-mismatch', fields: differences, ...(await explainFieldMismatch(ctx.sql, aggregate, columns, row, await detailed(ctx, row.id, page.snapshot, fold), differences)) };
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

/** The fold with its events and times, read again in the same snapshot if the page read it lean (explanations need them). */
async function detailed(ctx: TypeContext, id: string, snapshot: string, fold: VisibleFold): Promise<VisibleFold> {
  if (fold.detailed) return fold;
  const again = await foldVisible(ctx.sql, ctx.tables, ctx.aggregate, [id], snapshot, true);
  if ('problem' in again) throw new Incomplete(again.problem);
  return again.folds.get(id)!;
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

import { inSnapshot } from '../db/transaction.js';
import type { ReadModel } from '../readmodel/declaration.js';
import { compareModelRows, foldUpTo, readModelColumns, readModelPage } from './readModelTarget.js';
import { outcomeOf, type Mismatch, type TypeReport } from './report.js';
import { baseReport, finished, headsAfter, Incomplete, refuseExpiredRules, type TypeContext } from './typeContext.js';

/** `--target read-model:<name>`: the rows, page by page, then aggregates missing from it. */
export async function verifyReadModel(ctx: TypeContext, model: ReadModel): Promise<TypeReport> {
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

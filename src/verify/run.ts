import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { ResolvedConfig } from '../config/resolve.js';
import { toSql } from '../db/queryable.js';
import { ValidationError } from '../errors.js';
import { checkTransactionIds } from '../readmodel/restoredClusterGuard.js';
import { TEXT_SETTINGS } from '../replication/backfill.js';
import { storeTables } from '../store/tables.js';
import { recordTypeRun } from './history.js';
import { checkPacing, checkWorkers, readModelTarget, verifyMode, type VerifyOptions } from './options.js';
import { sharedRun } from './chunks/sharedRun.js';
import { verifyType } from './projectionPass.js';
import { verifyReadModel } from './readModelRun.js';
import { worstOutcome, type TypeReport, type VerifyReport } from './report.js';
import { incompleteReport, type TypeContext } from './typeContext.js';

export { verifyMode, type VerifyOptions } from './options.js';

/**
 * `hindsight verify`: for every aggregate of a type, does the state its events produce
 * equal what the legacy row holds? Correct under concurrent writes and a lagging listener
 * (DESIGN.md, "Verification under a lagging listener"): each page of legacy rows is read in
 * a snapshot S of its own; listener and "both" types wait for the listener to pass a cut
 * committed after S; only events whose source transaction S sees are folded. A second pass
 * over the type's heads finds aggregates whose row is gone. Anything that could not be
 * checked makes the type incomplete, never clean.
 */

export async function verify(config: ResolvedConfig, input: VerifyOptions): Promise<VerifyReport> {
  const options = { ...input, ids: input.ids ? [...new Set(input.ids)] : undefined };
  const mode = verifyMode(options);
  if (options.types && options.types.length === 0) throw new ValidationError('types is empty: leave it out to verify every type', { path: 'types' });
  checkPacing(options);
  checkWorkers(options, mode);
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
    if (options.workers !== undefined && !restored) {
      types.push(...(await sharedRun(config, names, runId, startedAt, options)));
      return { runId, outcome: worstOutcome(types.map((t) => t.outcome)), types, startedAt, finishedAt: new Date().toISOString() };
    }
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

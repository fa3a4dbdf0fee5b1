import type pg from 'pg';
import type { AggregateType } from '../../config/resolve.js';
import { toSql, type Sql } from '../../db/queryable.js';
import { inTransaction } from '../../db/transaction.js';
import type { StoreTables } from '../../store/tables.js';
import { recordTypeRun } from '../history.js';
import { concludeType } from '../projectionPass.js';
import type { Mismatch, TypeCounts, TypeReport } from '../report.js';
import { baseReport, finished, Incomplete } from '../typeContext.js';
import type { ChunkResult, TakenChunk } from './takeChunk.js';

/**
 * Reports a chunk done; the worker that reports a type's last chunk also records the run
 * (verify_runs and its mismatches) in the same transaction. The run row is locked first, so
 * of two workers reporting the last two chunks at once the second sees the first's report
 * and exactly one records. A report from a worker whose lease was taken over is dropped.
 * Returns whether the report was kept, and the recorded run's id if this one recorded it.
 */
export async function reportChunk(
  pool: pg.Pool,
  tables: StoreTables,
  aggregate: AggregateType | undefined,
  worker: string,
  chunk: TakenChunk,
  result: ChunkResult,
): Promise<{ kept: boolean; recorded?: number }> {
  return inTransaction(pool, async (client) => {
    const sql = toSql(client);
    const key = [chunk.runId, chunk.aggregateType];
    await sql.query(`SELECT 1 FROM ${tables.verifyChunkRuns} WHERE run_id = $1::uuid AND aggregate_type = $2::text FOR UPDATE`, key);
    const kept = await sql.query(
      `UPDATE ${tables.verifyChunks} SET state = 'done', result = $5::jsonb, reported_at = now(), lease_until = NULL
       WHERE run_id = $1::uuid AND aggregate_type = $2::text AND chunk = $3::int AND worker = $4::text AND state = 'taken'
       RETURNING 1`,
      [...key, chunk.chunk, worker, JSON.stringify(result)],
    );
    if (kept.length === 0) return { kept: false };
    // A worker without the type in its config cannot make the report; one that has it records it.
    const report = aggregate && (await assembleType(sql, tables, aggregate, chunk.runId));
    if (!report) return { kept: true };
    const recorded = await recordTypeRun(sql, tables, chunk.runId, report);
    await sql.query(`UPDATE ${tables.verifyChunkRuns} SET recorded_run = $3::bigint WHERE run_id = $1::uuid AND aggregate_type = $2::text`, [...key, recorded]);
    return { kept: true, recorded };
  });
}

/**
 * The type's report from its chunks, as a single-process run would have made it: counts and
 * pages summed, mismatches in key-range order, the cut of the first chunk (the run's first
 * snapshot). Undefined while a chunk has not reported, or once the run is recorded.
 */
export async function assembleType(sql: Sql, tables: StoreTables, aggregate: AggregateType, runId: string, evenIfRecorded = false): Promise<TypeReport | undefined> {
  const [run] = await sql.query<{ heads: string; started_at: string; recorded_run: string | null }>(
    `SELECT heads::text, to_json(started_at)#>>'{}' AS started_at, recorded_run::text FROM ${tables.verifyChunkRuns} WHERE run_id = $1::uuid AND aggregate_type = $2::text`,
    [runId, aggregate.type],
  );
  if (!run || (run.recorded_run !== null && !evenIfRecorded)) return undefined;
  const chunks = await sql.query<{ chunk: number; result: ChunkResult | null }>(
    `SELECT chunk, result FROM ${tables.verifyChunks} WHERE run_id = $1::uuid AND aggregate_type = $2::text ORDER BY chunk`,
    [runId, aggregate.type],
  );
  if (chunks.some((c) => c.result === null)) return undefined;
  const report = baseReport({ aggregate, mode: 'full' });
  report.startedAt = new Date(run.started_at).toISOString();
  const mismatches: Mismatch[] = [];
  for (const { chunk, result } of chunks) {
    const r = result!;
    for (const name of Object.keys(report.counts) as Array<keyof TypeCounts>) report.counts[name] += r.counts[name] ?? 0;
    report.cut.pages += r.cut.pages;
    report.cut.firstSnapshot ??= r.cut.firstSnapshot;
    report.cut.walLsn ??= r.cut.walLsn;
    report.cut.since ??= r.cut.since;
    report.cut.cutLsn ??= r.cut.cutLsn;
    for (const w of r.warnings) if (!report.warnings.includes(w)) report.warnings.push(w);
    if (r.reason && report.reason === undefined) report.reason = chunks.length > 1 ? `chunk ${chunk + 1} of ${chunks.length}: ${r.reason}` : r.reason;
    mismatches.push(...r.mismatches);
  }
  if (report.reason === undefined) {
    try {
      concludeType({ mode: 'full' }, report, Number(run.heads), undefined);
    } catch (error) {
      if (!(error instanceof Incomplete)) throw error;
      report.reason = error.message;
    }
  }
  if (report.reason !== undefined) report.outcome = 'incomplete';
  if (run.recorded_run !== null) report.historyId = Number(run.recorded_run);
  return finished(report, mismatches);
}

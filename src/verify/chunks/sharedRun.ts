import pg from 'pg';
import type { ResolvedConfig } from '../../config/resolve.js';
import { toSql } from '../../db/queryable.js';
import { inTransaction } from '../../db/transaction.js';
import { TEXT_SETTINGS } from '../../replication/backfill.js';
import { storeTables } from '../../store/tables.js';
import { recordTypeRun } from '../history.js';
import type { VerifyOptions } from '../options.js';
import type { TypeReport } from '../report.js';
import { incompleteReport } from '../typeContext.js';
import { workOnChunks } from './chunkWorkers.js';
import { planChunks } from './planChunks.js';
import { assembleType } from './reportChunk.js';

/**
 * `verify` with `workers`: plans every type's chunks, works on them with `workers` local
 * workers (other processes may take some), and returns the reports the last reporters
 * recorded. If this process stops before every chunk reported (cancelled), each unfinished
 * type is recorded incomplete, and marked recorded so that late reports cannot record it again.
 */
export async function sharedRun(config: ResolvedConfig, names: readonly string[], runId: string, startedAt: string, options: VerifyOptions): Promise<TypeReport[]> {
  const pool = new pg.Pool({ connectionString: options.connectionString, options: TEXT_SETTINGS, max: 2 });
  pool.on('error', () => undefined);
  const sql = toSql(pool);
  const tables = storeTables(config.quotedSchema);
  const pageSize = options.pageSize ?? 1000;
  try {
    for (const name of names) {
      await planChunks(sql, tables, config.aggregates.get(name)!, runId, startedAt, options.chunkRows ?? pageSize * 10, {
        pageSize,
        concurrency: Math.max(1, options.concurrency ?? 2),
        lagTimeoutMs: options.lagTimeoutMs ?? 30_000,
        leaseMs: options.chunkLeaseMs ?? 30_000,
        pauseMs: options.pauseMs ?? 0,
      });
    }
    await workOnChunks(config, { connectionString: options.connectionString, runId, workers: options.workers, signal: options.signal, onChunkTaken: options.onChunkTaken, instance: options.instance });
    const reports: TypeReport[] = [];
    for (const name of names) {
      const aggregate = config.aggregates.get(name)!;
      const report = await assembleType(sql, tables, aggregate, runId, true);
      if (report?.historyId !== undefined) {
        reports.push(report);
        continue;
      }
      const cut = incompleteReport({ aggregate, mode: 'full' }, 'cancelled before every chunk reported');
      cut.startedAt = startedAt;
      cut.historyId = await inTransaction(pool, async (client) => {
        const tx = toSql(client);
        const [run] = await tx.query<{ recorded_run: string | null }>(
          `SELECT recorded_run::text FROM ${tables.verifyChunkRuns} WHERE run_id = $1::uuid AND aggregate_type = $2::text FOR UPDATE`,
          [runId, name],
        );
        if (run?.recorded_run) return Number(run.recorded_run);
        const id = await recordTypeRun(tx, tables, runId, cut);
        await tx.query(`UPDATE ${tables.verifyChunkRuns} SET recorded_run = $3::bigint WHERE run_id = $1::uuid AND aggregate_type = $2::text`, [runId, name, id]);
        return id;
      });
      reports.push(cut);
    }
    return reports;
  } finally {
    await pool.end();
  }
}

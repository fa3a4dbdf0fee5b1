import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { ResolvedConfig } from '../../config/resolve.js';
import { toSql, type Sql } from '../../db/queryable.js';
import { TEXT_SETTINGS } from '../../replication/backfill.js';
import { storeTables, type StoreTables } from '../../store/tables.js';
import { projectionPasses } from '../projectionPass.js';
import { emptyCounts, type Mismatch } from '../report.js';
import { baseReport, Incomplete, type TypeContext } from '../typeContext.js';
import { reportChunk } from './reportChunk.js';
import { openChunks, renewLease, takeChunk, type ChunkResult, type TakenChunk } from './takeChunk.js';

export interface ChunkWorkerOptions {
  connectionString: string;
  /** Take only this run's chunks, and return once all of them have reported. Default: any run's, returning when none is open. */
  runId?: string;
  /** Chunks worked on at once in this process. Default 1. */
  workers?: number;
  /** A chunk taken this many times without a report (its workers keep dying) is reported incomplete. Default 5. */
  maxAttempts?: number;
  /** After a chunk is taken, before it is checked (crash tests kill the process here). */
  onChunkTaken?: (chunk: { runId: string; aggregateType: string; chunk: number; attempts: number }) => void | Promise<void>;
  signal?: AbortSignal;
  /** Names this process in verify_chunks.worker (before a random part per worker). Default host:pid. */
  instance?: string;
}

/**
 * Works on the chunks of shared verify runs (`hindsight verify --workers N`, or any
 * `hindsight run` instance): takes a chunk, checks its key range exactly as a single-process
 * run checks the whole table, renews its lease meanwhile, and reports it. A chunk whose
 * worker died is taken again once its lease runs out. Returns the chunks this process reported.
 */
export async function workOnChunks(config: ResolvedConfig, options: ChunkWorkerOptions): Promise<number> {
  const workers = Math.max(1, options.workers ?? 1);
  const pool = new pg.Pool({ connectionString: options.connectionString, options: TEXT_SETTINGS, max: workers * 4 + 1 });
  pool.on('error', () => undefined);
  const sql = toSql(pool);
  const tables = storeTables(config.quotedSchema);
  let reported = 0;
  const loop = async () => {
    const worker = `${options.instance ?? `${os.hostname()}:${process.pid}`}/${randomUUID().slice(0, 8)}`;
    while (!options.signal?.aborted) {
      const chunk = await takeChunk(sql, tables, worker, options.runId);
      if (chunk) {
        await options.onChunkTaken?.({ runId: chunk.runId, aggregateType: chunk.aggregateType, chunk: chunk.chunk, attempts: chunk.attempts });
        if (await runChunk(config, pool, sql, tables, worker, chunk, options)) reported += 1;
        // The run's pause applies between chunks as between pages: a chunk is often one page.
        if (chunk.options.pauseMs) await sleep(chunk.options.pauseMs, undefined, { signal: options.signal }).catch(() => undefined);
        continue;
      }
      const { open, nextInMs } = await openChunks(sql, tables, options.runId);
      if (open === 0 || options.runId === undefined) return;
      // Chunks still held by other workers: wait for them to report or for a lease to run out.
      await sleep(Math.min(Math.max(nextInMs, 50), 500), undefined, { signal: options.signal }).catch(() => undefined);
    }
  };
  try {
    await Promise.all(Array.from({ length: workers }, loop));
    return reported;
  } finally {
    await pool.end();
  }
}

/** Checks one chunk and reports it; false if its lease was lost or the run was cancelled (then it is handed back). */
async function runChunk(config: ResolvedConfig, pool: pg.Pool, sql: Sql, tables: StoreTables, worker: string, chunk: TakenChunk, options: ChunkWorkerOptions): Promise<boolean> {
  const aggregate = config.aggregates.get(chunk.aggregateType);
  const maxAttempts = options.maxAttempts ?? 5;
  const lost = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, lost.signal]) : lost.signal;
  // Renewed at a third of the lease, so a slow query or two never lets a live chunk be taken over.
  const heartbeat = setInterval(() => {
    renewLease(sql, tables, worker, chunk).then((held) => held || lost.abort(), () => undefined);
  }, Math.max(50, chunk.options.leaseMs / 3));
  const result: ChunkResult = { counts: emptyCounts(), cut: { pages: 0 }, warnings: [], mismatches: [] };
  try {
    if (!aggregate) {
      result.reason = `this worker's config declares no aggregate type "${chunk.aggregateType}": run workers with the config that started the run`;
    } else if (chunk.attempts > maxAttempts) {
      result.reason = `taken ${chunk.attempts - 1} times without a report: its workers died or failed`;
    } else {
      const ctx: TypeContext = {
        sql,
        pool,
        tables,
        config,
        aggregate,
        runId: chunk.runId,
        mode: 'full',
        options: { connectionString: '', pageSize: chunk.options.pageSize, concurrency: chunk.options.concurrency, lagTimeoutMs: chunk.options.lagTimeoutMs, pauseMs: chunk.options.pauseMs, signal },
        range: { after: chunk.after, upTo: chunk.upTo, absentHeads: chunk.absentHeads },
      };
      const report = baseReport(ctx);
      const pages: Mismatch[][] = [];
      try {
        await projectionPasses(ctx, report, pages);
      } catch (error) {
        if (!(error instanceof Incomplete)) throw error;
        result.reason = error.message;
      }
      Object.assign(result, { counts: report.counts, cut: report.cut, warnings: report.warnings, mismatches: pages.flat() });
    }
    if (signal.aborted) {
      await handBack(sql, tables, worker, chunk);
      return false;
    }
    return (await reportChunk(pool, tables, aggregate, worker, chunk, result)).kept;
  } catch (error) {
    // Handed back for another try (counted in attempts); the error itself is the caller's.
    await handBack(sql, tables, worker, chunk).catch(() => undefined);
    throw error;
  } finally {
    clearInterval(heartbeat);
  }
}

async function handBack(sql: Sql, tables: StoreTables, worker: string, chunk: TakenChunk): Promise<void> {
  await sql.query(
    `UPDATE ${tables.verifyChunks} SET state = 'pending', worker = NULL, lease_until = NULL
     WHERE run_id = $1::uuid AND aggregate_type = $2::text AND chunk = $3::int AND worker = $4::text AND state = 'taken'`,
    [chunk.runId, chunk.aggregateType, chunk.chunk, worker],
  );
}

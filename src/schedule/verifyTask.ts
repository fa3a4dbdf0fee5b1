import pg from 'pg';
import type { ResolvedConfig } from '../config/resolve.js';
import { toSql } from '../db/queryable.js';
import { storeTables } from '../store/tables.js';
import type { VerifyReport } from '../verify/report.js';
import { verify } from '../verify/run.js';
import type { ChunkWorkerOptions } from '../verify/chunks/chunkWorkers.js';
import type { LocalChunkWork } from './chunkHelper.js';
import type { ScheduledCheck } from './checks.js';
import { logSchedule } from './scheduleLog.js';
import type { VerifyJob } from './tickTask.js';

export interface CheckRunOptions {
  connectionString: string;
  instance: string;
  signal?: AbortSignal;
  /** After a run finished (clean or not): alerts and metrics listen here. */
  onRun?: (check: ScheduledCheck, report: VerifyReport) => void;
  onLog?: (line: string) => void;
  /** Shared with this process's chunk helper: a full check's run counts as chunk work. */
  local?: LocalChunkWork;
  onChunkTaken?: ChunkWorkerOptions['onChunkTaken'];
}

/**
 * Runs one queued check, unless the previous run of the same check is still going: then
 * the tick is logged as skipped, never run twice at once. "Still going" is a session
 * advisory lock held on a connection of its own for the run's whole length, so a worker
 * killed mid-run frees it with its connection and the next tick runs.
 */
export async function runCheck(config: ResolvedConfig, job: VerifyJob, options: CheckRunOptions): Promise<void> {
  const tables = storeTables(config.quotedSchema);
  const log = options.onLog ?? (() => undefined);
  const check = config.schedules.find((c) => c.id === job.checkId);
  const tick = new Date(job.tick);
  const lock = new pg.Client({ connectionString: options.connectionString });
  lock.on('error', () => undefined);
  await lock.connect();
  try {
    const sql = toSql(lock);
    if (!check) {
      await logSchedule(sql, tables, [{ checkId: job.checkId, tick, event: 'failed', detail: 'the check is no longer in the config', instance: options.instance }]);
      return;
    }
    const [held] = await sql.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(hashtextextended($1::text, 0)) AS locked`, [`hindsight.check:${check.id}`]);
    if (!held!.locked) {
      await logSchedule(sql, tables, [{ checkId: check.id, tick, event: 'skipped', detail: 'the previous run of this check was still going', instance: options.instance }]);
      log(`check ${check.id}: the tick at ${tick.toISOString()} is skipped, the previous run is still going`);
      return;
    }
    await logSchedule(sql, tables, [{ checkId: check.id, tick, event: 'started', instance: options.instance }]);
    log(`check ${check.id}: running for the tick at ${tick.toISOString()}`);
    const shared = check.chunkRows !== undefined;
    if (shared && options.local) options.local.busy += 1;
    try {
      const report = await verify(config, {
        connectionString: options.connectionString,
        types: check.types,
        target: check.target,
        sample: check.sample,
        changedSinceLast: check.mode === 'changed-since-last' || undefined,
        lagTimeoutMs: check.lagTimeoutMs,
        concurrency: check.concurrency,
        pauseMs: check.pauseMs,
        // A full check is a shared run: this instance works on it with one worker, every
        // other instance's chunk helper joins in, and a dead worker's chunk is retaken.
        ...(shared ? { workers: 1, chunkRows: check.chunkRows, chunkLeaseMs: check.chunkLeaseMs, onChunkTaken: options.onChunkTaken, instance: options.instance } : {}),
        signal: options.signal,
      });
      await logSchedule(sql, tables, [{ checkId: check.id, tick, event: 'finished', runId: report.runId, outcome: report.outcome, instance: options.instance }]);
      log(`check ${check.id}: ${report.outcome} (run ${report.runId})`);
      options.onRun?.(check, report);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      await logSchedule(sql, tables, [{ checkId: check.id, tick, event: 'failed', detail, instance: options.instance }]);
      log(`check ${check.id}: failed: ${detail}`);
    } finally {
      if (shared && options.local) options.local.busy -= 1;
    }
  } finally {
    await lock.end().catch(() => undefined); // ends the session, and with it the advisory lock
  }
}

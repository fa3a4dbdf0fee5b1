import { Logger, parseCronItems, run, type Runner, type Task } from 'graphile-worker';
import type { ResolvedConfig } from '../config/resolve.js';
import { quoteIdent } from '../db/identifiers.js';
import type { VerifyReport } from '../verify/report.js';
import type { ChunkWorkerOptions } from '../verify/chunks/chunkWorkers.js';
import { startChunkHelper, type LocalChunkWork } from './chunkHelper.js';
import type { ScheduledCheck } from './checks.js';
import type { ScheduleEntry } from './scheduleLog.js';
import { runTick, TICK_TASK, VERIFY_TASK, type VerifyJob } from './tickTask.js';
import { runCheck } from './verifyTask.js';

/**
 * The scheduled consistency checks, on graphile-worker: a PostgreSQL job queue whose
 * crontab schedules each minute's tick once across every instance (a transaction on its
 * known-crontabs row), and whose jobs any instance may take. hindsight adds what the queue
 * does not know: cron expressions in a time zone, ticks missed while no instance ran, and
 * skipping a tick whose previous run of the same check is still going.
 */

export interface SchedulerOptions {
  connectionString: string;
  /** Names this process in the log. */
  instance: string;
  /** Jobs run at once by this process (the tick and the checks). Default 2. */
  concurrency?: number;
  onRun?: (check: ScheduledCheck, report: VerifyReport) => void;
  /** After a tick found ticks of a check that no instance ran (once across instances, like the tick). */
  onMissed?: (checkId: string, missed: ScheduleEntry[]) => void;
  onLog?: (line: string) => void;
  /** After this process took a chunk of a shared run, before checking it (crash tests kill the process here). */
  onChunkTaken?: ChunkWorkerOptions['onChunkTaken'];
  /** How often the chunk helper looks for chunks nobody works on. Default 2,000 ms. */
  chunkPollMs?: number;
}

export interface Scheduler {
  /** Stops taking jobs; a check in progress is cancelled (its run is stored as incomplete). */
  stop(): Promise<void>;
  /** Settles when the worker has stopped. */
  readonly done: Promise<void>;
}

/** The job queue's own schema, beside hindsight's. */
export function workerSchema(config: ResolvedConfig): string {
  return `${config.schema}_worker`;
}

export async function startScheduler(config: ResolvedConfig, options: SchedulerOptions): Promise<Scheduler> {
  const log = options.onLog ?? (() => undefined);
  const schema = workerSchema(config);
  const local: LocalChunkWork = { busy: 0 };
  const taskList: Record<string, Task> = {
    [TICK_TASK]: async (payload, helpers) => {
      const scheduledAt = new Date((payload as { _cron?: { ts?: string } })._cron?.ts ?? Date.now());
      const entries = await helpers.withPgClient((client) => runTick(config, client as never, scheduledAt, { workerSchema: quoteIdent(schema), instance: options.instance }));
      const missed = new Map<string, ScheduleEntry[]>();
      for (const entry of entries) {
        if (entry.event !== 'missed') continue;
        log(`check ${entry.checkId}: missed the tick at ${entry.tick.toISOString()} (no instance was running)`);
        missed.set(entry.checkId, [...(missed.get(entry.checkId) ?? []), entry]);
      }
      for (const [checkId, list] of missed) options.onMissed?.(checkId, list);
    },
    [VERIFY_TASK]: async (payload, helpers) => {
      await runCheck(config, payload as VerifyJob, { connectionString: options.connectionString, instance: options.instance, signal: helpers.abortSignal, onRun: options.onRun, onLog: log, local, onChunkTaken: options.onChunkTaken });
    },
  };
  const runner: Runner = await run({
    connectionString: options.connectionString,
    schema,
    concurrency: options.concurrency ?? 2,
    noHandleSignals: true, // the CLI owns the process's signals
    pollInterval: 1000,
    taskList,
    parsedCronItems: parseCronItems([
      // Ticks jump the queue: a long check must not delay the next minute's evaluation.
      { task: TICK_TASK, match: '* * * * *', identifier: TICK_TASK, options: { backfillPeriod: 0, maxAttempts: 5, priority: -10 } },
    ]),
    logger: new Logger(() => (level, message) => {
      if (level === 'error' || level === 'warning') log(`scheduler: ${message}`);
    }),
  });
  const helping = new AbortController();
  const helper = startChunkHelper(config, { connectionString: options.connectionString, instance: options.instance, local, signal: helping.signal, pollMs: options.chunkPollMs, onChunkTaken: options.onChunkTaken, onLog: log });
  return {
    done: Promise.all([runner.promise, helper.done]).then(() => undefined),
    stop: async () => {
      helping.abort(); // a chunk in hand is handed back for another worker
      await Promise.all([runner.stop(), helper.done]);
    },
  };
}

import type { PoolClient } from 'pg';
import type { ResolvedConfig } from '../config/resolve.js';
import { toSql } from '../db/queryable.js';
import { storeTables } from '../store/tables.js';
import { dueTicks, wholeMinute } from './dueTicks.js';
import { logSchedule, type ScheduleEntry } from './scheduleLog.js';

export const TICK_TASK = 'hindsight_tick';
export const VERIFY_TASK = 'hindsight_verify';

/** What a queued verify job carries. */
export interface VerifyJob {
  checkId: string;
  tick: string;
  /** Run once on start for a tick no instance was running for (onMissed "run-once"). */
  missed?: boolean;
}

/**
 * The minute tick: the job queue's cron runs it once per minute across every instance
 * (graphile-worker's crontab guarantee). In one transaction it locks each check's row,
 * logs the ticks missed since the row's minute, queues the run due at this minute (and,
 * for onMissed "run-once", one run for the missed ones) and moves the row on; a second
 * run of the same tick finds the row already there and does nothing.
 */
export async function runTick(config: ResolvedConfig, client: PoolClient, scheduledAt: Date, options: { workerSchema: string; instance: string }): Promise<ScheduleEntry[]> {
  const tables = storeTables(config.quotedSchema);
  const sql = toSql(client);
  const minute = wholeMinute(scheduledAt);
  const entries: ScheduleEntry[] = [];
  await client.query('BEGIN');
  try {
    for (const check of config.schedules) {
      await sql.query(
        `INSERT INTO ${tables.scheduleState} (check_id, evaluated_to) VALUES ($1::text, $2::timestamptz - interval '1 minute') ON CONFLICT (check_id) DO NOTHING`,
        [check.id, minute.toISOString()],
      );
      const [state] = await sql.query<{ evaluated_to: string }>(
        `SELECT to_char(evaluated_to AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS evaluated_to FROM ${tables.scheduleState} WHERE check_id = $1::text FOR UPDATE`,
        [check.id],
      );
      const evaluatedTo = new Date(state!.evaluated_to);
      if (evaluatedTo.getTime() >= minute.getTime()) continue; // this minute was evaluated already
      const ticks = dueTicks(check, evaluatedTo, minute);
      const jobs: VerifyJob[] = [];
      for (const tick of ticks.missed) entries.push({ checkId: check.id, tick, event: 'missed', instance: options.instance });
      if (ticks.moreMissed > 0) {
        entries.push({ checkId: check.id, tick: ticks.missed[ticks.missed.length - 1]!, event: 'missed', detail: `and ${ticks.moreMissed} more ticks`, instance: options.instance });
      }
      if (ticks.missed.length > 0 && check.onMissed === 'run-once') jobs.push({ checkId: check.id, tick: ticks.missed[ticks.missed.length - 1]!.toISOString(), missed: true });
      if (ticks.due) jobs.push({ checkId: check.id, tick: ticks.due.toISOString() });
      for (const job of jobs) {
        await sql.query(`SELECT ${options.workerSchema}.add_job($1::text, $2::json, max_attempts => 1)`, [VERIFY_TASK, JSON.stringify(job)]);
        entries.push({ checkId: check.id, tick: new Date(job.tick), event: 'queued', detail: job.missed ? 'run once for missed ticks' : undefined, instance: options.instance });
      }
      await sql.query(`UPDATE ${tables.scheduleState} SET evaluated_to = $2::timestamptz, updated_at = now() WHERE check_id = $1::text`, [check.id, minute.toISOString()]);
    }
    await logSchedule(sql, tables, entries);
    await client.query('COMMIT');
    return entries;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

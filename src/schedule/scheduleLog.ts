import type { Sql } from '../db/queryable.js';
import type { StoreTables } from '../store/tables.js';

export type ScheduleEvent = 'queued' | 'started' | 'finished' | 'failed' | 'skipped' | 'missed';

export interface ScheduleEntry {
  checkId: string;
  tick: Date;
  event: ScheduleEvent;
  runId?: string;
  outcome?: string;
  detail?: string;
  instance?: string;
}

/** Appends entries to the schedule log, in one statement. */
export async function logSchedule(sql: Sql, tables: StoreTables, entries: readonly ScheduleEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await sql.query(
    `INSERT INTO ${tables.scheduleLog} (check_id, tick, event, run_id, outcome, detail, instance)
     SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::text[])`,
    [
      entries.map((e) => e.checkId),
      entries.map((e) => e.tick.toISOString()),
      entries.map((e) => e.event),
      entries.map((e) => e.runId ?? null),
      entries.map((e) => e.outcome ?? null),
      entries.map((e) => e.detail ?? null),
      entries.map((e) => e.instance ?? null),
    ],
  );
}

export interface ScheduleCounts {
  checkId: string;
  event: ScheduleEvent;
  count: number;
}

/** How many of each event every check has logged (the metrics' tick counters). */
export async function scheduleCounts(sql: Sql, tables: StoreTables): Promise<ScheduleCounts[]> {
  const rows = await sql.query<{ check_id: string; event: ScheduleEvent; n: string }>(
    `SELECT check_id, event, count(*)::text AS n FROM ${tables.scheduleLog} GROUP BY 1, 2 ORDER BY 1, 2`,
  );
  return rows.map((r) => ({ checkId: r.check_id, event: r.event, count: Number(r.n) }));
}

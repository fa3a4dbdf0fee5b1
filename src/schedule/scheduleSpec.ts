import { Cron } from 'croner';
import { z } from 'zod';

/**
 * One scheduled consistency check, as the config declares it (per type under
 * `aggregates[].verify.schedule`, or for every type under the top-level `verify.schedule`).
 * Ticks are whole minutes: a five-field cron expression, evaluated in `timezone`.
 */
export const scheduleSpec = z
  .object({
    /** Names the check in the log, the metrics and the console. Default: derived from what it checks. */
    name: z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, { message: 'letters, digits, _ . : - only, at most 100' }).optional(),
    /** Minute hour day-of-month month day-of-week, e.g. "30 2 * * *". */
    cron: z.string().superRefine((cron, ctx) => {
      const problem = cronProblem(cron);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
    /** full (default), changed-since-last, or sample (with `sample`). */
    mode: z.enum(['full', 'changed-since-last', 'sample']).default('full'),
    /** Rows checked by a sample run. */
    sample: z.number().int().positive().optional(),
    /** "projection" (default) or "read-model:<name>". */
    target: z.string().min(1).optional(),
    /** An IANA zone the cron expression is read in. Default UTC. */
    timezone: z
      .string()
      .refine((tz) => isTimeZone(tz), { message: 'an IANA time zone such as Europe/Berlin or UTC' })
      .default('UTC'),
    /** A tick no instance was running for: "record" it as missed (default), or "run-once" on the next start as well. */
    onMissed: z.enum(['record', 'run-once']).default('record'),
    /** Seconds a listener or both type waits for the listener to reach its cut. Default 30. */
    lagTimeout: z.number().positive().optional(),
    /** Pages of legacy rows compared at once. Default 1: a check beside live traffic takes one core at most. */
    concurrency: z.number().int().min(1).max(64).default(1),
    /** Milliseconds to wait after each page of 1,000 rows (and each chunk), leaving the database to the writers. Default 0. */
    pauseMs: z.number().int().min(0).max(60_000).default(0),
    /** Full projection checks: legacy rows per chunk that any instance may take. Default 10,000. */
    chunkRows: z.number().int().min(1).optional(),
    /** Full projection checks: seconds before a chunk whose instance stopped renewing it (it died) is retaken. Default 30. */
    chunkLease: z.number().min(0.1).max(3600).optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    if (spec.mode === 'sample' && spec.sample === undefined) ctx.addIssue({ code: 'custom', path: ['sample'], message: 'mode "sample" needs sample: <rows>' });
    if (spec.mode !== 'sample' && spec.sample !== undefined) ctx.addIssue({ code: 'custom', path: ['sample'], message: 'sample goes with mode "sample" only' });
    if (spec.target && spec.target !== 'projection' && spec.mode !== 'full') {
      ctx.addIssue({ code: 'custom', path: ['mode'], message: 'a read-model target is verified whole: mode "full"' });
    }
    if ((spec.chunkRows !== undefined || spec.chunkLease !== undefined) && (spec.mode !== 'full' || (spec.target ?? 'projection') !== 'projection')) {
      ctx.addIssue({ code: 'custom', path: ['chunkRows'], message: 'only full projection checks are split into chunks: leave chunkRows and chunkLease out' });
    }
  });

export type ScheduleSpec = z.output<typeof scheduleSpec>;

function cronProblem(cron: string): string | undefined {
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5) return `a cron expression has five fields (minute hour day-of-month month day-of-week), got ${fields.length} in ${JSON.stringify(cron)}`;
  try {
    new Cron(cron, { paused: true });
    return undefined;
  } catch (error) {
    return `not a valid cron expression ${JSON.stringify(cron)}: ${error instanceof Error ? error.message : String(error)}`;
  }
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

import { Cron } from 'croner';
import type { ScheduledCheck } from './checks.js';

/** At most this many missed ticks are listed one by one; more are summed up in one entry. */
const MAX_LISTED_MISSES = 100;

export interface DueTicks {
  /** The check's tick at this minute, if it has one: run it. */
  due: Date | undefined;
  /** Its ticks after `evaluatedTo` and before this minute: no instance ran then. */
  missed: Date[];
  /** Missed ticks beyond MAX_LISTED_MISSES (a long outage with a frequent schedule). */
  moreMissed: number;
}

/**
 * Which of a check's ticks fall in (evaluatedTo, minute]: the one at `minute` is due, the
 * earlier ones were missed. Pure, so the minute tick (the job queue's exactly-once cron) is
 * the only clock: `minute` is the tick's scheduled time, never the time it happened to run.
 */
export function dueTicks(check: Pick<ScheduledCheck, 'cron' | 'timezone'>, evaluatedTo: Date, minute: Date): DueTicks {
  const cron = new Cron(check.cron, { timezone: check.timezone, paused: true });
  const result: DueTicks = { due: undefined, missed: [], moreMissed: 0 };
  let cursor = evaluatedTo;
  for (;;) {
    const next = cron.nextRun(cursor);
    if (!next || next.getTime() > minute.getTime()) return result;
    if (next.getTime() === minute.getTime()) result.due = next;
    else if (result.missed.length < MAX_LISTED_MISSES) result.missed.push(next);
    else result.moreMissed += 1;
    cursor = next;
  }
}

/** The start of the minute `at` falls in. */
export function wholeMinute(at: Date): Date {
  return new Date(Math.floor(at.getTime() / 60_000) * 60_000);
}

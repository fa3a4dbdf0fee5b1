import type { ScheduledCheck } from '../schedule/checks.js';
import type { ScheduleEntry } from '../schedule/scheduleLog.js';
import type { TypeReport, VerifyReport } from '../verify/report.js';
import type { AlertInput } from './alerter.js';

/**
 * The alerts a finished scheduled check raises: one per type whose outcome needs a person
 * (mismatches, or incomplete: something could not be checked), linked to its stored run
 * on the console when the config names the console's address.
 */
export function runAlerts(check: ScheduledCheck, report: VerifyReport, consoleUrl: string | undefined): AlertInput[] {
  const alerts: AlertInput[] = [];
  for (const type of report.types) {
    if (type.outcome !== 'mismatches' && type.outcome !== 'incomplete') continue;
    const readModel = type.target.startsWith('read-model:') ? type.target.slice('read-model:'.length) : undefined;
    alerts.push({
      kind: type.outcome === 'mismatches' ? 'verify.mismatches' : 'verify.incomplete',
      type: type.aggregateType,
      ...(readModel ? { readModel } : {}),
      check: check.id,
      run: {
        runId: report.runId,
        historyId: type.historyId,
        outcome: type.outcome,
        counts: { ...type.counts },
        classCounts: { ...type.classCounts } as Record<string, number>,
      },
      detail: describe(check, type),
      ...(consoleUrl && type.historyId !== undefined ? { link: `${consoleUrl}/verify/run?id=${type.historyId}` } : {}),
    });
  }
  return alerts;
}

function describe(check: ScheduledCheck, type: TypeReport): string {
  const against = type.target === 'projection' ? 'its events' : type.target;
  if (type.outcome === 'incomplete') return `check ${check.id}: ${type.aggregateType} against ${against} is incomplete: ${type.reason ?? 'part of it could not be checked'}`;
  const c = type.counts;
  const wrong = c.mismatched + c.missingInEvents + c.missingInLegacy;
  const classes = Object.entries(type.classCounts)
    .filter(([, n]) => (n ?? 0) > 0)
    .map(([name, n]) => `${n} ${name}`)
    .join(', ');
  return `check ${check.id}: ${wrong} of ${c.compared} ${type.aggregateType} aggregates differ from ${against}${classes ? ` (${classes})` : ''}`;
}

/** One alert for the ticks of one check that no instance ran, however many there were. */
export function missedAlert(checkId: string, missed: readonly ScheduleEntry[]): AlertInput | undefined {
  if (missed.length === 0) return undefined;
  const ticks = missed.map((m) => m.tick.getTime());
  const first = new Date(Math.min(...ticks)).toISOString();
  // runTick lists 100 ticks and sums up the rest in one more entry, "and <n> more ticks", on the last listed tick.
  const more = missed.map((m) => /^and (\d+) more ticks$/.exec(m.detail ?? '')?.[1]).find((n) => n !== undefined);
  const count = new Set(ticks).size + Number(more ?? 0);
  return {
    kind: 'schedule.missed',
    check: checkId,
    detail: `check ${checkId}: ${count === 1 ? `the tick at ${first} was` : `${count} ticks since ${first} were`} missed: no instance was running`,
  };
}

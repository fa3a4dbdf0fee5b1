import type { StoredRun } from './history.js';
import type { VerifyReport } from './report.js';

/**
 * The last run per type in the Prometheus text exposition format, for a node exporter's
 * textfile collector (or any scraper): with system cron running `hindsight verify` and its
 * exit code, a scheduled check that alarms.
 */
export function verifyMetrics(report: VerifyReport, lastClean: ReadonlyMap<string, StoredRun | undefined>): string {
  const gauges: Array<[string, string, (t: VerifyReport['types'][number]) => number | undefined]> = [
    ['hindsight_verify_matched', 'Aggregates that matched in the last run.', (t) => t.counts.matched],
    ['hindsight_verify_mismatched', 'Aggregates whose fields differed in the last run (ignored ones excluded).', (t) => t.counts.mismatched],
    ['hindsight_verify_missing_in_events', 'Legacy rows no event mentions, in the last run.', (t) => t.counts.missingInEvents],
    ['hindsight_verify_missing_in_legacy', 'Aggregates with events but no legacy row, in the last run.', (t) => t.counts.missingInLegacy],
    ['hindsight_verify_ignored', 'Aggregates covered by an ignore rule in the last run.', (t) => t.counts.ignored],
    ['hindsight_verify_incomplete', '1 when the last run could not check everything.', (t) => (t.outcome === 'incomplete' ? 1 : 0)],
    ['hindsight_verify_last_run_timestamp_seconds', 'When the last run finished.', (t) => Date.parse(t.finishedAt) / 1000],
    [
      'hindsight_verify_last_clean_timestamp_seconds',
      'When the last clean, complete, full run finished (absent before the first).',
      (t) => {
        const run = lastClean.get(`${t.aggregateType}\u0000${t.target}`);
        return run ? Date.parse(run.finishedAt) / 1000 : undefined;
      },
    ],
  ];
  const lines: string[] = [];
  for (const [name, help, value] of gauges) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const type of report.types) {
      const v = value(type);
      if (v === undefined) continue;
      lines.push(`${name}{type="${label(type.aggregateType)}",target="${label(type.target)}",mode="${type.mode}"} ${v}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

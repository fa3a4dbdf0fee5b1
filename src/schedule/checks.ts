import type { ScheduleSpec } from './scheduleSpec.js';

/** A scheduled consistency check, resolved from the config: what to verify, and when. */
export interface ScheduledCheck {
  /** Stable across restarts while the config says the same: the log and the metrics key on it. */
  id: string;
  /** The types it verifies; undefined: every type of the config. */
  types: readonly string[] | undefined;
  mode: 'full' | 'changed-since-last' | 'sample';
  sample: number | undefined;
  target: string;
  cron: string;
  timezone: string;
  onMissed: 'record' | 'run-once';
  lagTimeoutMs: number | undefined;
  concurrency: number;
  pauseMs: number;
  /**
   * Full projection checks are shared runs: split into key ranges of this many legacy rows
   * that every `hindsight run` instance takes from; undefined for the other checks, which
   * run whole in the instance that took the tick's job.
   */
  chunkRows: number | undefined;
  chunkLeaseMs: number | undefined;
}

/** Legacy rows per chunk of a scheduled full check, unless its spec says otherwise. */
export const DEFAULT_CHUNK_ROWS = 10_000;

/** The checks of one schedule list; `type` is undefined for the top-level one (every type). */
export function resolveChecks(specs: readonly ScheduleSpec[], type: string | undefined): ScheduledCheck[] {
  return specs.map((spec) => {
    const target = spec.target ?? 'projection';
    return {
      id: spec.name ?? `${type ?? '*'}/${spec.mode}${spec.sample ? `-${spec.sample}` : ''}/${target}/${spec.cron.trim().split(/\s+/).join(' ')}${spec.timezone === 'UTC' ? '' : `@${spec.timezone}`}`,
      types: type === undefined ? undefined : [type],
      mode: spec.mode,
      sample: spec.sample,
      target,
      cron: spec.cron.trim().split(/\s+/).join(' '),
      timezone: spec.timezone,
      onMissed: spec.onMissed,
      lagTimeoutMs: spec.lagTimeout === undefined ? undefined : spec.lagTimeout * 1000,
      concurrency: spec.concurrency,
      pauseMs: spec.pauseMs,
      chunkRows: spec.mode === 'full' && target === 'projection' ? (spec.chunkRows ?? DEFAULT_CHUNK_ROWS) : undefined,
      chunkLeaseMs: spec.chunkLease === undefined ? undefined : Math.round(spec.chunkLease * 1000),
    };
  });
}

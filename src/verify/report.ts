/** What `verify` finds, per aggregate type and for the whole run. */

export type MismatchKind = 'field-mismatch' | 'missing-in-events' | 'missing-in-legacy' | 'missing-in-read-model';
export type MismatchClass = 'missing event' | 'projector bug' | 'legacy drift' | 'known divergence';
export type Outcome = 'clean' | 'mismatches' | 'incomplete' | 'empty';
export type RunMode = 'full' | 'sample' | 'ids' | 'changed';

export interface FieldDifference {
  field: string;
  column: string;
  /** The legacy column's text (null: NULL). */
  legacy: string | null;
  /** The projected value's text; `missing` when the state has no such field. */
  projected: string | null | 'missing';
  note?: string;
}

export interface Mismatch {
  aggregateId: string;
  kind: MismatchKind;
  class: MismatchClass;
  fields: FieldDifference[];
  /** Sentences, most telling first. */
  explanation: string[];
  /** Where row images show the projection stopped matching the row. */
  firstDivergence?: { sequence: number; eventType: string; occurredAt: string };
  /** The ignore rule that covers it (class "known divergence"). */
  ignoredBy?: { reason: string; expires: string };
}

export interface TypeCounts {
  /** Legacy rows read (or read-model rows, for a read-model target). */
  rows: number;
  /** Aggregates compared: matched + mismatched + missing in events + ignored. */
  compared: number;
  matched: number;
  mismatched: number;
  missingInEvents: number;
  missingInLegacy: number;
  ignored: number;
}

export interface TypeReport {
  aggregateType: string;
  /** "projection" or "read-model:<name>". */
  target: string;
  mode: RunMode;
  outcome: Outcome;
  /** Why the type is incomplete, or what the run could not see. */
  reason?: string;
  warnings: string[];
  counts: TypeCounts;
  /** Mismatches per state field. */
  fieldCounts: Record<string, number>;
  /** Mismatches (ignored ones included) per class. */
  classCounts: Partial<Record<MismatchClass, number>>;
  mismatches: Mismatch[];
  /** firstSnapshot and since: where the next --changed-since-last run starts from. */
  cut: { firstSnapshot?: string; walLsn?: string; cutLsn?: string; since?: string; pages: number };
  projectorVersion: string;
  configHash: string;
  startedAt: string;
  finishedAt: string;
  /** The id of its row in the run history. */
  historyId?: number;
}

export interface VerifyReport {
  runId: string;
  outcome: Outcome;
  types: TypeReport[];
  startedAt: string;
  finishedAt: string;
}

export function emptyCounts(): TypeCounts {
  return { rows: 0, compared: 0, matched: 0, mismatched: 0, missingInEvents: 0, missingInLegacy: 0, ignored: 0 };
}

/** A type's outcome from its counts: empty only when neither side had anything. */
export function outcomeOf(counts: TypeCounts, problem: string | undefined, aggregatesWithEvents: number): Outcome {
  if (problem) return 'incomplete';
  if (counts.mismatched + counts.missingInEvents + counts.missingInLegacy > 0) return 'mismatches';
  if (counts.rows === 0 && aggregatesWithEvents === 0 && counts.compared === 0) return 'empty';
  return 'clean';
}

/** The run's outcome: the worst of its types (incomplete, then mismatches, then clean; empty only if all are). */
export function worstOutcome(outcomes: readonly Outcome[]): Outcome {
  for (const outcome of ['incomplete', 'mismatches', 'clean'] as const) if (outcomes.includes(outcome)) return outcome;
  return 'empty';
}

/** 0 clean (or empty), 1 mismatches, 2 incomplete: for scripts and cron. */
export function exitCodeOf(outcome: Outcome): 0 | 1 | 2 {
  return outcome === 'incomplete' ? 2 : outcome === 'mismatches' ? 1 : 0;
}

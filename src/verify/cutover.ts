import type { AggregateType, ResolvedConfig } from '../config/resolve.js';
import { pollUntil } from '../db/pollUntil.js';
import type { Sql } from '../db/queryable.js';
import { DatabaseError, GateClosedError, ValidationError } from '../errors.js';
import type { ReadModel } from '../readmodel/declaration.js';
import { utcMicros } from '../store/eventRow.js';
import { projectStatus } from '../readmodel/status.js';
import type { StoreTables } from '../store/tables.js';
import { configHash, recentRuns, type StoredRun } from './history.js';
import { expiredRules } from './ignore.js';

/**
 * The cut-over gate: reads of a type move from the legacy columns to a read model only
 * after the stored verification runs say, for long enough, that the events tell the truth
 * (projection = legacy) and that the read model shows them (read model = projection).
 */

export interface GateOptions {
  /** Consecutive clean, complete, full runs needed of each check. Default 3. */
  runs?: number;
  /** The days those runs must span. Default 7. */
  days?: number;
  /** The read model reads move to (default: the type's only one). */
  readModel?: string;
  /** Listener types: the most WAL the listener may be behind. Default 16 MiB. */
  maxListenerLagBytes?: number;
  /** The newest run of each check must have finished within this many hours. Default 48. */
  maxAgeHours?: number;
}

export interface ChecklistItem {
  check: string;
  ok: boolean;
  detail: string;
}

export interface CutoverStatus {
  aggregateType: string;
  readModel: string;
  /** Where reads come from now. */
  source: 'legacy' | 'read-model';
  switchedAt: string | null;
  checklist: ChecklistItem[];
  passed: boolean;
}

export function gateReadModel(config: ResolvedConfig, aggregateType: string, name?: string): { aggregate: AggregateType; model: ReadModel } {
  const aggregate = config.aggregates.get(aggregateType);
  if (!aggregate) throw new ValidationError(`unknown aggregate type "${aggregateType}"; the config declares ${[...config.aggregates.keys()].join(', ') || 'none'}`);
  if (aggregate.readModels.length === 0) throw new ValidationError(`${aggregateType} has no read model to move reads to: declare one under readModels`);
  if (name === undefined && aggregate.readModels.length > 1) {
    throw new ValidationError(`${aggregateType} has several read models (${aggregate.readModels.map((m) => m.name).join(', ')}): name the one reads move to`);
  }
  const model = name === undefined ? aggregate.readModels[0]! : aggregate.readModels.find((m) => m.name === name);
  if (!model) throw new ValidationError(`${aggregateType} has no read model "${name}" (it has ${aggregate.readModels.map((m) => m.name).join(', ')})`);
  return { aggregate, model };
}

export async function cutoverStatus(sql: Sql, tables: StoreTables, config: ResolvedConfig, aggregateType: string, options: GateOptions = {}): Promise<CutoverStatus> {
  const { aggregate, model } = gateReadModel(config, aggregateType, options.readModel);
  const needed = options.runs ?? 3;
  const days = options.days ?? 7;
  const checklist: ChecklistItem[] = [];
  const [now] = await sql.query<{ today: string }>(`SELECT current_date::text AS today`);
  for (const [target, hash] of [
    ['projection', configHash(aggregate)],
    [`read-model:${model.name}`, configHash(aggregate, model)],
  ] as const) {
    const runs = await recentRuns(sql, tables, { types: [aggregateType], target, limit: 1000 });
    checklist.push(streakItem(aggregate, target, hash, runs, needed, days, options.maxAgeHours ?? 48));
  }
  const expired = expiredRules(aggregate, now!.today);
  checklist.push({
    check: 'no expired ignore rules',
    ok: expired.length === 0,
    detail: expired.length === 0 ? `${aggregate.verify.ignore.length} rule(s), none expired` : expired.map((r) => `"${r.reason}" ended ${r.expires}`).join('; '),
  });
  checklist.push(await listenerItem(sql, tables, config, aggregate, options.maxListenerLagBytes ?? 16 * 1024 * 1024));
  const status = (await projectStatus(sql, tables, config, [model.name])).readModels[0]!;
  checklist.push({
    check: `read model ${model.name} caught up`,
    ok: status.state === 'caught-up',
    detail: `${status.state}${status.reason ? ` (${status.reason})` : ''}, ${status.lag.events} event(s) behind`,
  });
  const [row] = await sql.query<{ source: string; read_model: string | null; switched_at: string }>(
    `SELECT source, read_model, ${utcMicros('switched_at')} AS switched_at FROM ${tables.cutover} WHERE aggregate_type = $1::text`,
    [aggregateType],
  );
  return {
    aggregateType,
    readModel: model.name,
    source: row?.source === 'read-model' ? 'read-model' : 'legacy',
    switchedAt: row?.switched_at ?? null,
    checklist,
    passed: checklist.every((item) => item.ok),
  };
}

/**
 * The streak of one check, from its runs newest first: full runs that are clean (with at
 * least one aggregate matched, so a run where everything was ignored does not count), of
 * this projector version and declaration. Any run that found mismatches, whatever its mode,
 * breaks it, and so does a full run that was incomplete or checked something else; other
 * sample, ids and changed runs neither count nor break it. The newest must be recent.
 */
function streakItem(aggregate: AggregateType, target: string, hash: string, runs: readonly StoredRun[], needed: number, days: number, maxAgeHours: number): ChecklistItem {
  const check = `${needed} consecutive clean, complete, full runs of ${target} spanning ${days} days`;
  const streak: StoredRun[] = [];
  let broken: string | undefined;
  for (const run of runs) {
    if (run.outcome === 'mismatches') broken = `a ${run.mode} run (${run.finishedAt}) found mismatches`;
    else if (run.mode !== 'full') continue;
    else if (run.outcome !== 'clean') broken = `the full run of ${run.finishedAt} was ${run.outcome}`;
    else if (run.projectorVersion !== aggregate.projectionVersion || run.configHash !== hash) broken = `the full run of ${run.finishedAt} checked another projector version or declaration`;
    else if (run.counts.matched === 0) broken = `the full run of ${run.finishedAt} matched nothing (everything ignored or empty)`;
    if (broken) break;
    streak.push(run);
  }
  if (streak.length === 0) return { check, ok: false, detail: broken ?? 'no full run stored' };
  const newest = streak[0]!;
  const ageHours = (Date.now() - Date.parse(newest.finishedAt)) / 3_600_000;
  const spanDays = (Date.parse(newest.finishedAt) - Date.parse(streak[streak.length - 1]!.startedAt)) / 86_400_000;
  const ok = streak.length >= needed && spanDays >= days && ageHours <= maxAgeHours;
  const stale = ageHours > maxAgeHours ? `; the newest is ${ageHours.toFixed(0)} hours old (at most ${maxAgeHours})` : '';
  const before = broken ? `; before them ${broken}` : '';
  return { check, ok, detail: `${streak.length} clean in a row, spanning ${spanDays.toFixed(1)} days (oldest ${streak[streak.length - 1]!.startedAt})${stale}${before}` };
}

async function listenerItem(sql: Sql, tables: StoreTables, config: ResolvedConfig, aggregate: AggregateType, maxBytes: number): Promise<ChecklistItem> {
  const check = 'listener caught up';
  if (aggregate.capture === 'app') return { check, ok: true, detail: 'not needed: the app writes this type\'s events' };
  const [row] = await sql.query<{ behind: string | null }>(
    `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), checkpoint_lsn)::text AS behind FROM ${tables.replicationState} WHERE slot_name = $1::text`,
    [config.replication.slot],
  );
  if (!row || row.behind === null) return { check, ok: false, detail: `the listener of slot ${config.replication.slot} has never run` };
  const behind = Number(row.behind);
  return { check, ok: behind <= maxBytes, detail: `${behind} bytes of WAL behind (at most ${maxBytes})` };
}

/** Moves reads of a type to its read model: refused unless the gate passes, or forced with a reason (recorded). */
export async function cutoverSwitch(
  sql: Sql,
  tables: StoreTables,
  config: ResolvedConfig,
  aggregateType: string,
  options: GateOptions & { force?: boolean; reason?: string } = {},
): Promise<CutoverStatus> {
  if (options.force && !options.reason?.trim()) throw new ValidationError('a forced switch needs --reason: say why the gate is overridden (it is recorded)', { path: 'reason' });
  const status = await cutoverStatus(sql, tables, config, aggregateType, options);
  if (!status.passed && !options.force) {
    const failing = status.checklist.filter((i) => !i.ok).map((i) => `${i.check}: ${i.detail}`);
    throw new GateClosedError(`the cut-over gate of ${aggregateType} is closed:\n  - ${failing.join('\n  - ')}\n(--force --reason "..." overrides it, and is recorded)`);
  }
  const [row] = await sql.query<{ switched_at: string }>(
    `WITH log AS (
       INSERT INTO ${tables.cutoverLog} (aggregate_type, action, read_model, forced, reason, checklist)
       VALUES ($1::text, 'switch', $2::text, $3::boolean, $4::text, $5::jsonb))
     INSERT INTO ${tables.cutover} (aggregate_type, source, read_model, switched_at) VALUES ($1::text, 'read-model', $2::text, now())
     ON CONFLICT (aggregate_type) DO UPDATE SET source = 'read-model', read_model = excluded.read_model, switched_at = now()
     RETURNING ${utcMicros('switched_at')} AS switched_at`,
    [aggregateType, status.readModel, !status.passed, options.reason ?? null, JSON.stringify(status.checklist)],
  );
  // The checklist just evaluated is the one recorded: no second evaluation.
  return { ...status, source: 'read-model', switchedAt: row!.switched_at };
}

/** Moves reads of a type back to the legacy columns (always allowed; recorded). */
export async function cutoverRevert(sql: Sql, tables: StoreTables, config: ResolvedConfig, aggregateType: string, options: { reason?: string; readModel?: string } = {}): Promise<CutoverStatus> {
  gateReadModel(config, aggregateType, options.readModel);
  await sql.query(
    `WITH log AS (
       INSERT INTO ${tables.cutoverLog} (aggregate_type, action, reason) VALUES ($1::text, 'revert', $2::text))
     INSERT INTO ${tables.cutover} (aggregate_type, source, read_model, switched_at) VALUES ($1::text, 'legacy', NULL, now())
     ON CONFLICT (aggregate_type) DO UPDATE SET source = 'legacy', read_model = NULL, switched_at = now()`,
    [aggregateType, options.reason ?? null],
  );
  return cutoverStatus(sql, tables, config, aggregateType, options);
}

/** Where the app should read a type from now. */
export async function readSource(sql: Sql, tables: StoreTables, aggregateType: string): Promise<{ source: 'legacy' | 'read-model'; readModel: string | null }> {
  const [row] = await sql.query<{ source: string; read_model: string | null }>(`SELECT source, read_model FROM ${tables.cutover} WHERE aggregate_type = $1::text`, [aggregateType]);
  return row?.source === 'read-model' ? { source: 'read-model', readModel: row.read_model } : { source: 'legacy', readModel: null };
}

/**
 * Read-your-writes on a read model: resolves once the read model's updater has passed the
 * aggregate's event at `sequence` (its checkpoint is at or past that event, so the row
 * reflects it, or a later one); rejects after `timeoutMs` (default 5 s).
 */
export async function waitForReadModel(
  sql: Sql,
  tables: StoreTables,
  model: ReadModel,
  target: { aggregateId: string; sequence: number },
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const reached = await pollUntil(async () => {
    const [row] = await sql.query<{ event: boolean; passed: boolean | null }>(
      `SELECT e.event_id IS NOT NULL AS event,
              (SELECT (e.transaction_id, e.global_position) <= (c.transaction_id, c.global_position) FROM ${tables.checkpoints} c WHERE c.subscriber = $4::text) AS passed
       FROM (SELECT 1) one LEFT JOIN ${tables.events} e ON e.aggregate_type = $1::text AND e.aggregate_id = $2::text AND e.sequence = $3::bigint`,
      [model.aggregateType, target.aggregateId, String(target.sequence), model.subscriber],
    );
    if (!row!.event) throw new ValidationError(`${model.aggregateType} ${target.aggregateId} has no event ${target.sequence}`);
    return row!.passed === true;
  }, timeoutMs);
  if (!reached) {
    throw new DatabaseError(
      `the read model ${model.name} did not reach ${model.aggregateType} ${target.aggregateId} event ${target.sequence} within ${timeoutMs} ms: is hindsight project running? (see hindsight project --status)`,
    );
  }
}

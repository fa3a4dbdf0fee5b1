import pg from 'pg';
import { ensureReadModelTables } from './readmodel/ensureTables.js';
import type { EnsureResult } from './readmodel/ensureTable.js';
import { contextToMetadata, currentContext, withContext, type CaptureContext } from './capture/context.js';
import { recordContext } from './capture/recordContext.js';
import { waitForAppended } from './capture/waitForAppended.js';
import { cutoverRevert, cutoverStatus, cutoverSwitch, readSource, waitForReadModel, type CutoverStatus, type GateOptions } from './verify/cutover.js';
import { recentRuns, type StoredRun } from './verify/history.js';
import { ValidationError } from './errors.js';
import type { Recorder } from './capture/recorder.js';
import { runInTransaction, type IsolationLevel, type TransactionSource } from './capture/runInTransaction.js';
import { wrapServiceFunction, type ServiceFunction, type WrapOptions } from './capture/wrap.js';
import { aggregateTypeOf, resolveConfig, type ResolvedConfig } from './config/resolve.js';
import type { ConfigInput } from './config/schema.js';
import { byCanonicalId, byKey, keyParameters } from './db/canonicalKey.js';
import { describeDatabaseError } from './db/describeError.js';
import { toSql, type Db } from './db/queryable.js';
import { history, type Ledger } from './projection/history.js';
import { project, type ProjectAt, type Projection } from './projection/project.js';
import { snapshotAggregates, type SnapshotProgress } from './projection/snapshotAggregates.js';
import { append, type AppendInput, type AppendResult } from './store/append.js';
import { audit, type AuditOptions, type AuditReport } from './store/audit.js';
import { migrate, type MigrateResult } from './store/migrate.js';
import { readAggregate, readHead, type AggregateRange } from './store/readAggregate.js';
import { readAll, type GlobalCheckpoint, type GlobalPage, type GlobalReadOptions } from './store/readAll.js';
import { loadCheckpoint, saveCheckpoint, type SubscriberCheckpoint } from './store/checkpoints.js';
import { inAggregateOrder, type AggregateRun, type AppliedUpTo } from './store/aggregateOrder.js';
import { projectStatus, type ProjectStatus } from './readmodel/status.js';
import { storeTables } from './store/tables.js';
import type { AggregateIdInput, StoredEvent } from './types.js';
import { toTimestampParam } from './time.js';

/** Times as Dates or ISO-8601 text with an offset; `from` inclusive, `to` exclusive. */
export interface TimeRange {
  from?: Date | string;
  to?: Date | string;
}

/** Checks and normalises caller times before they reach SQL (text without an offset would follow the session's TimeZone). */
function timeParams(value: object | undefined, keys: ReadonlyArray<string>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(value ?? {}) };
  for (const key of keys) {
    if (out[key] !== undefined) out[key] = toTimestampParam(out[key] as Date | string, key);
  }
  return out;
}

export interface TransactionOptions {
  /** Merged over the context in effect (withContext) for this transaction's events. */
  context?: CaptureContext;
  /** For transactions hindsight opens itself. Default: the server's default (read committed). */
  isolationLevel?: IsolationLevel;
}

/** hindsight bound to a config. It never owns a connection: every call takes the caller's handle. */
export interface Hindsight {
  readonly config: ResolvedConfig;
  /** Appends events to one aggregate in the caller's transaction (or as one statement), with the context's metadata. */
  append(db: Db, input: AppendInput): Promise<AppendResult>;
  /** Runs `fn` in a transaction with a recorder: the app's writes and its events commit together or not at all. */
  transaction<T>(db: TransactionSource, fn: (tx: Recorder) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** Wraps an existing `(db, ...args) => result` service function so that it also records events, atomically. */
  wrap<A extends unknown[], R>(fn: ServiceFunction<A, R>, options: WrapOptions<A, R>): (db: TransactionSource, ...args: A) => Promise<R>;
  /** Runs `fn` with context (actor, reason, correlation id...) for every event recorded inside it. */
  withContext<T>(context: CaptureContext, fn: () => T): T;
  /**
   * For listener types: records the context in the caller's transaction (a logical message),
   * so the events the listener makes from that transaction's row changes carry it.
   */
  recordContext(db: Db, context?: CaptureContext): Promise<void>;
  /** Capture "both": resolves once the listener has appended these staged events (read-your-writes); rejects after `timeoutMs` (default 5 s). */
  waitForAppended(db: Db, eventIds: readonly string[], options?: { timeoutMs?: number }): Promise<void>;
  /** Where reads of a type come from now: the legacy columns, or (after `hindsight cutover switch`) a read model. */
  readSource(db: Db, aggregateType: string): Promise<{ source: 'legacy' | 'read-model'; readModel: string | null }>;
  /**
   * Read-your-writes on a read model: resolves once its updater has applied the aggregate's
   * event at `sequence` (an append returns it); rejects after `timeoutMs` (default 5 s).
   */
  waitForReadModel(db: Db, readModel: string, target: { aggregateId: AggregateIdInput; sequence: number }, options?: { timeoutMs?: number }): Promise<void>;
  /** Stored verification runs, newest first (`hindsight verify --history`). */
  verifyRuns(db: Db, filter?: { types?: readonly string[]; target?: string; limit?: number }): Promise<StoredRun[]>;
  /** The cut-over gate's checklist for a type (`hindsight cutover status`). */
  cutoverStatus(db: Db, aggregateType: string, options?: GateOptions): Promise<CutoverStatus>;
  /** Moves reads of a type to its read model; throws a GateClosedError while the gate is closed, unless forced with a reason. */
  cutoverSwitch(db: Db, aggregateType: string, options?: GateOptions & { force?: boolean; reason?: string }): Promise<CutoverStatus>;
  /** Moves reads of a type back to the legacy columns. */
  cutoverRevert(db: Db, aggregateType: string, options?: { reason?: string; readModel?: string }): Promise<CutoverStatus>;
  /** An aggregate's events in sequence order, optionally a sequence or time range. */
  readAggregate(db: Db, aggregateType: string, aggregateId: AggregateIdInput, range?: TimeRange & Omit<AggregateRange, 'from' | 'to'>): Promise<StoredEvent[]>;
  /**
   * The gap-safe global read for subscribers: pass the returned checkpoint back to go on.
   * Optionally only some aggregate types, event types, or events that occurred in [from, to).
   */
  readAll(db: Db, options?: Omit<GlobalReadOptions, 'from' | 'to'> & TimeRange): Promise<GlobalPage>;
  /** A subscriber's stored checkpoint, if any. */
  checkpoint(db: Db, subscriber: string): Promise<SubscriberCheckpoint | undefined>;
  /** Stores a subscriber's checkpoint; call it in the transaction of the work it covers. */
  saveCheckpoint(db: Db, subscriber: string, position: GlobalCheckpoint): Promise<void>;
  /**
   * The per-aggregate order contract for a page of the global read: per aggregate, the
   * contiguous events after what the subscriber has applied, read from the store where
   * the page skipped ahead.
   */
  inAggregateOrder(db: Db, events: readonly StoredEvent[], appliedUpTo: AppliedUpTo): Promise<AggregateRun[]>;
  /** Per read model: checkpoint, lag, state; and the open transaction holding readers back. */
  projectStatus(db: Db, readModels?: readonly string[]): Promise<ProjectStatus>;
  /** Projected state now, at a sequence, or as of a time. */
  project(
    db: Db,
    aggregateType: string,
    aggregateId: AggregateIdInput,
    at?: { asOf?: Date | string; atSequence?: number; snapshots?: boolean },
  ): Promise<Projection>;
  /** The ledger: events that occurred in [from, to) with the fields each changed. */
  history(db: Db, aggregateType: string, aggregateId: AggregateIdInput, range?: TimeRange): Promise<Ledger>;
  /** Writes snapshots at the current version of every aggregate of a type, or of one. */
  snapshot(db: Db, aggregateType: string, options?: { aggregateId?: AggregateIdInput; onProgress?: (p: SnapshotProgress) => void }): Promise<SnapshotProgress>;
  /** Checks hash chains, sequences and heads. */
  audit(db: Db, options?: Omit<AuditOptions, 'aggregateId'> & { aggregateId?: AggregateIdInput }): Promise<AuditReport>;
  /** An aggregate's current version (the sequence of its last event; 0 when it has none), for read-decide-append loops. */
  version(db: Db, aggregateType: string, aggregateId: AggregateIdInput): Promise<number>;
  /** The canonical id (as stored in events.aggregate_id) of an aggregate, computed by the database. */
  canonicalId(db: Db, aggregateType: string, aggregateId: AggregateIdInput): Promise<string>;
  /**
   * Creates or upgrades hindsight's schema (and the app roles' grants) in the database at
   * `connectionString`, and creates or extends the read-model tables of the config.
   */
  migrate(connectionString: string): Promise<MigrateResult & { readModels: Record<string, EnsureResult> }>;
}

function isResolved(config: ConfigInput | ResolvedConfig): config is ResolvedConfig {
  return (config as ResolvedConfig).aggregates instanceof Map;
}

export function createHindsight(config: ConfigInput | ResolvedConfig): Hindsight {
  const resolved = isResolved(config) ? config : resolveConfig(config);
  const tables = storeTables(resolved.quotedSchema);
  const typed = (aggregateType: string, aggregateId: AggregateIdInput) => {
    const aggregate = aggregateTypeOf(resolved, aggregateType);
    return { aggregate, ref: byKey(aggregate.key, keyParameters(aggregate.type, aggregate.key, aggregateId)) };
  };
  const reading = async <T>(doing: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      throw describeDatabaseError(error, doing);
    }
  };

  const appendWith = async (db: Db, input: AppendInput, context: CaptureContext): Promise<AppendResult> => {
    const aggregate = aggregateTypeOf(resolved, input?.aggregateType);
    return reading(`append to ${aggregate.type}`, () =>
      append(toSql(db), tables, aggregate, input, contextToMetadata(context)),
    );
  };

  const transaction: Hindsight['transaction'] = (db, fn, options = {}) => {
    const context = { ...currentContext(), ...(options.context ?? {}) };
    // Inside the transaction the merged context is the one in effect, so a plain
    // hs.append(tx.db, ...) in the app's code carries it too.
    return withContext(context, () => runInTransaction(
      db,
      (txDb) => {
        const recorder: Recorder = {
          db: txDb,
          context,
          append: (input) => appendWith(txDb, input, context),
          record: (aggregateType, aggregateId, type, payload, opts = {}) => {
            const { expectedVersion, ...event } = opts;
            return appendWith(txDb, { aggregateType, aggregateId, expectedVersion, events: [{ ...event, type, payload }] }, context);
          },
        };
        return fn(recorder);
      },
      { isolationLevel: options.isolationLevel },
    ));
  };

  return {
    config: resolved,
    append: async (db, input) => appendWith(db, input, currentContext()),
    transaction,
    wrap: (fn, options) => wrapServiceFunction(transaction, fn, options),
    withContext,
    waitForAppended: (db, eventIds, options) => waitForAppended(toSql(db), tables, eventIds, options),
    recordContext: async (db, context) => {
      try {
        await recordContext(toSql(db), context);
      } catch (error) {
        throw describeDatabaseError(error, 'record context');
      }
    },
    readAggregate: async (db, aggregateType, aggregateId, range) => {
      const { aggregate, ref } = typed(aggregateType, aggregateId);
      const checked = timeParams(range, ['from', 'to']) as AggregateRange;
      return reading('read aggregate', () => readAggregate(toSql(db), tables, aggregate, ref, checked));
    },
    readAll: async (db, options) => {
      const checked = timeParams(options, ['from', 'to']) as GlobalReadOptions;
      return reading('read events', () => readAll(toSql(db), tables, checked));
    },
    checkpoint: async (db, subscriber) => reading('read checkpoint', () => loadCheckpoint(toSql(db), tables, subscriber)),
    saveCheckpoint: async (db, subscriber, position) => reading('save checkpoint', () => saveCheckpoint(toSql(db), tables, subscriber, position)),
    inAggregateOrder: async (db, events, appliedUpTo) =>
      reading('read events', () =>
        inAggregateOrder(events, appliedUpTo, (key, from, to) =>
          readAggregate(toSql(db), tables, aggregateTypeOf(resolved, key.aggregateType), byCanonicalId(key.aggregateId), { fromSequence: from, toSequence: to }),
        ),
      ),
    projectStatus: async (db, readModels) => reading('read status', () => projectStatus(toSql(db), tables, resolved, readModels)),
    project: async (db, aggregateType, aggregateId, at) => {
      const { aggregate, ref } = typed(aggregateType, aggregateId);
      const checked = timeParams(at, ['asOf']) as ProjectAt;
      return reading('project', () => project(toSql(db), tables, aggregate, ref, checked));
    },
    history: async (db, aggregateType, aggregateId, range) => {
      const { aggregate, ref } = typed(aggregateType, aggregateId);
      const checked = timeParams(range, ['from', 'to']) as { from?: string; to?: string };
      return reading('read history', () => history(toSql(db), tables, aggregate, ref, checked));
    },
    snapshot: async (db, aggregateType, options = {}) => {
      const aggregate = aggregateTypeOf(resolved, aggregateType);
      const only = options.aggregateId === undefined ? undefined : typed(aggregateType, options.aggregateId).ref;
      return reading('snapshot', () => snapshotAggregates(toSql(db), tables, aggregate, { only, onProgress: options.onProgress }));
    },
    audit: async (db, options = {}) => {
      const { aggregateId, ...rest } = options;
      let canonical: string | undefined;
      if (aggregateId !== undefined) {
        if (!rest.aggregateType) throw new TypeError('audit: aggregateId needs aggregateType');
        const { aggregate, ref } = typed(rest.aggregateType, aggregateId);
        canonical = (await reading('audit', () => readHead(toSql(db), tables, aggregate, ref))).aggregateId;
      }
      return reading('audit', () => audit(toSql(db), tables, { ...rest, aggregateId: canonical }));
    },
    version: async (db, aggregateType, aggregateId) => {
      const { aggregate, ref } = typed(aggregateType, aggregateId);
      return (await reading('read version', () => readHead(toSql(db), tables, aggregate, ref))).version;
    },
    canonicalId: async (db, aggregateType, aggregateId) => {
      const { aggregate, ref } = typed(aggregateType, aggregateId);
      return (await reading('canonical id', () => readHead(toSql(db), tables, aggregate, ref))).aggregateId;
    },
    readSource: (db, aggregateType) => {
      aggregateTypeOf(resolved, aggregateType);
      return reading('read the cut-over state', () => readSource(toSql(db), tables, aggregateType));
    },
    verifyRuns: (db, filter) => reading('read the verification history', () => recentRuns(toSql(db), tables, filter)),
    cutoverStatus: (db, aggregateType, options) => cutoverStatus(toSql(db), tables, resolved, aggregateType, options),
    cutoverSwitch: (db, aggregateType, options) => cutoverSwitch(toSql(db), tables, resolved, aggregateType, options),
    cutoverRevert: (db, aggregateType, options) => cutoverRevert(toSql(db), tables, resolved, aggregateType, options),
    waitForReadModel: async (db, readModel, target, options) => {
      const model = resolved.readModels.get(readModel);
      if (!model) throw new ValidationError(`unknown read model "${readModel}"; the config declares ${[...resolved.readModels.keys()].join(', ') || 'none'}`);
      const { aggregate, ref } = typed(model.aggregateType, target.aggregateId);
      const head = await reading('canonical id', () => readHead(toSql(db), tables, aggregate, ref));
      return waitForReadModel(toSql(db), tables, model, { aggregateId: head.aggregateId, sequence: target.sequence }, options);
    },
    migrate: async (connectionString) => {
      const result = await migrate({ connectionString, schema: resolved.schema, appRoles: resolved.appRoles });
      const pool = new pg.Pool({ connectionString, max: 1 });
      pool.on('error', () => undefined);
      try {
        const ensured = await reading('create read-model tables', () => ensureReadModelTables(pool, tables, [...resolved.readModels.values()]));
        return { ...result, readModels: Object.fromEntries(ensured) };
      } finally {
        await pool.end();
      }
    },
  };
}

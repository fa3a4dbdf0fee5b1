/**
 * hindsight's public API. Everything a user imports is listed here.
 */

// Config
export { defineConfig } from './config/schema.js';
export type { ConfigInput } from './config/schema.js';
export { loadConfig } from './config/load.js';
export { resolveConfig } from './config/resolve.js';
export type { ResolvedConfig, AggregateType } from './config/resolve.js';

// Events and projectors
export { defineEvent } from './events/defineEvent.js';
export type { EventDefinition, DefineEventOptions, Upcaster } from './events/defineEvent.js';
export type { JsonValue } from './events/json.js';
export type { RowImage } from './events/genericEvents.js';
export { defineProjector } from './projection/defineProjector.js';
export type { ProjectorDefinition, DefineProjectorOptions, Handler } from './projection/defineProjector.js';

// The bound API: append, capture, reads, projection, audit
export { createHindsight } from './hindsight.js';
export type { Hindsight, TransactionOptions } from './hindsight.js';
export type { AppendInput, AppendResult, NewEvent } from './store/append.js';
export type { Recorder } from './capture/recorder.js';
export type { WrapOptions, ServiceFunction } from './capture/wrap.js';
export type { IsolationLevel, TransactionSource } from './capture/runInTransaction.js';
export { withContext, currentContext } from './capture/context.js';
export type { CaptureContext } from './capture/context.js';
export { retryOnConflict, isRetryableConflict } from './capture/retry.js';
export type { RetryOptions } from './capture/retry.js';
export type { GlobalCheckpoint, GlobalPage, GlobalReadOptions } from './store/readAll.js';
export type { SubscriberCheckpoint } from './store/checkpoints.js';
export type { AggregateKey, AggregateRun, AppliedUpTo } from './store/aggregateOrder.js';
export type { TimeRange } from './hindsight.js';

// Projections at scale: snapshots, read models, the updater
export type { StateCodec } from './projection/stateCodec.js';
export type { SnapshotProgress } from './projection/snapshotAggregates.js';
export type { ReadModelInput, ReadModelWrite, ReadModelWriteInput } from './readmodel/declaration.js';
export { createUpdater } from './readmodel/updater.js';
export type { Updater, UpdaterOptions, ReadModelRun } from './readmodel/updater.js';
export type { ProjectStatus, ReadModelStatus, HorizonHolder } from './readmodel/status.js';
export { START_OF_LOG } from './store/readAll.js';
export type { AggregateRange } from './store/readAggregate.js';
export type { Projection, ProjectAt } from './projection/project.js';
export type { Ledger, LedgerEntry, FieldChange } from './projection/history.js';
export type { AuditReport, AuditProblem } from './store/audit.js';
export type { Db, PgQueryable, KnexLike } from './db/queryable.js';

// Capture what the app misses: the logical-replication listener and the baseline
export { listen, runListener } from './replication/listener.js';
export type { ListenerOptions } from './replication/listener.js';
export { backfill } from './replication/backfill.js';
export type { BackfillOptions, BackfillResult } from './replication/backfill.js';
export { setupReplication, replicationStatus, teardownReplication, preflight } from './replication/setup.js';
export type { SetupResult, ReplicationStatus, PreflightProblem } from './replication/setup.js';

// Verification
export { verify } from './verify/run.js';
export type { VerifyOptions } from './verify/run.js';
export { workOnChunks } from './verify/chunks/chunkWorkers.js';
export type { ChunkWorkerOptions } from './verify/chunks/chunkWorkers.js';
export type { StoredRun } from './verify/history.js';
export { verifyMetrics } from './verify/metrics.js';
export { exitCodeOf } from './verify/report.js';
export type { CutoverStatus, ChecklistItem, GateOptions } from './verify/cutover.js';
export type { VerifyReport, TypeReport, Mismatch, MismatchClass, MismatchKind, FieldDifference, Outcome, RunMode, TypeCounts } from './verify/report.js';

// Schema and the embedded server
export { migrate } from './store/migrate.js';
export type { MigrateOptions, MigrateResult } from './store/migrate.js';
export { startEmbeddedServer, stopEmbeddedServer, embeddedServerStatus } from './db/embedded/server.js';
export type { EmbeddedServer, EmbeddedServerOptions } from './db/embedded/server.js';
export { redactUrl } from './db/redactUrl.js';

// Types and errors
export type {
  AggregateIdInput,
  CaptureMode,
  EventMetadata,
  EventSource,
  ExpectedVersion,
  StoredEvent,
} from './types.js';
export {
  HindsightError,
  ConfigError,
  ValidationError,
  ConcurrencyError,
  NotFoundError,
  DatabaseError,
  EmbeddedServerError,
  UsageError,
  RestoredClusterError,
  GateClosedError,
  isHindsightError,
  isConfigError,
  isValidationError,
  isConcurrencyError,
  isNotFoundError,
  isDatabaseError,
  isEmbeddedServerError,
  isUsageError,
  isRestoredClusterError,
  isGateClosedError,
} from './errors.js';

import { createHash, randomUUID } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import { aggregateTypeOf, type ResolvedConfig } from '../config/resolve.js';
import { describeDatabaseError } from '../db/describeError.js';
import { quoteIdent, type TableName } from '../db/identifiers.js';
import { toSql, type Sql } from '../db/queryable.js';
import { inTransaction } from '../db/transaction.js';
import { SQLSTATE, sqlStateOf } from '../db/sqlState.js';
import { ConfigError, DatabaseError } from '../errors.js';
import { byCanonicalId } from '../db/canonicalKey.js';
import { foldInto, initialFold, type Folded } from '../projection/fold.js';
import { foldedAtMany, type FoldTarget } from '../projection/foldedAtMany.js';
import { deleteCheckpoint, loadCheckpoint, saveCheckpoint } from '../store/checkpoints.js';
import { START_OF_LOG, type GlobalCheckpoint } from '../store/readAll.js';
import { readAggregateForFold } from '../store/readForFold.js';
import { copyEvents, type CopiedEvent } from '../store/copyEvents.js';
import { writeRows, type RowChange } from './writeRows.js';
import { SEQUENCE_COLUMN, type ReadModel } from './declaration.js';
import { storeTables, type StoreTables } from '../store/tables.js';
import { ensureReadModelTable, shadowName } from './ensureTable.js';
import { releaseLease, renewLeases, tryAcquireLease, verifyLease } from './leases.js';
import { processBatch, StateCache, type BatchContext } from './processBatch.js';
import { checkTransactionIds } from './restoredClusterGuard.js';
import { swapTables } from './swapTables.js';
import { checkout } from '../db/checkout.js';

/**
 * Rebuilds a read model without downtime: builds a shadow table from the start of the
 * log while the live table keeps serving reads and its updater keeps writing; then, in
 * one transaction that locks the live read model's lease row (its updater's commits find
 * it locked, write nothing and try again) under a lock_timeout, catches the shadow up and swaps it in with the checkpoint,
 * carrying over grants, indexes and dependent views. Readers see the old table until the
 * commit and the complete new one after it. Resumable after a crash from its own
 * checkpoint; cancellable.
 */

export interface RebuildOptions {
  connectionString: string;
  /** Events per COPY chunk, each read in its own transaction. Default 250,000. */
  batchSize?: number;
  /**
   * Milliseconds between flushes of the built rows with the rebuild's checkpoint (at the
   * end of a chunk): what a crash can cost. Default 10 s; sooner when 250,000 rows wait.
   */
  checkpointEveryMs?: number;
  /** How long the swap may wait for locks. Default 5 s. */
  lockTimeoutMs?: number;
  /** Stops the build after the current batch, leaving it resumable. */
  signal?: AbortSignal;
  onProgress?: (progress: RebuildProgress) => void;
  onLog?: (line: string) => void;
}

export interface RebuildProgress {
  readModel: string;
  events: number;
  /** Events of the type in the log when the rebuild started (for an ETA); 0 until counted. */
  total: number;
  seconds: number;
}

export interface RebuildResult {
  readModel: string;
  /** 'swapped', or 'interrupted' (stopped by the signal; run again to resume). */
  outcome: 'swapped' | 'interrupted';
  resumed: boolean;
  /** Events folded into the rebuilt table, including those of an interrupted earlier run. */
  events: number;
  /** Of those, folded by this run (less than `events` when it resumed). */
  eventsThisRun: number;
  rows: number;
  seconds: number;
  eventsPerSecond: number;
}

const LEASE_TTL_MS = 30_000;

export async function rebuildReadModel(config: ResolvedConfig, name: string, options: RebuildOptions): Promise<RebuildResult> {
  const model = readModelOf(config, name);
  const tables = storeTables(config.quotedSchema);
  const shadow = shadowTable(model.table);
  const subscriber = rebuildSubscriber(model);
  const owner = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 3 });
  pool.on('error', () => undefined);
  const sql = toSql(pool);
  const started = Date.now();
  try {
    await checkTransactionIds(sql, tables);
    if (!(await tryAcquireLease(sql, tables, subscriber, owner, LEASE_TTL_MS))) {
      throw new DatabaseError(`another rebuild of ${model.name} is running (its lease is held); wait for it, or cancel it with --cancel`);
    }
    // Renewal only extends a lease still ours: a rebuild paused past its lease never takes it back from another.
    const renew = setInterval(() => void renewLeases(sql, tables, [subscriber], owner, LEASE_TTL_MS).catch(() => undefined), LEASE_TTL_MS / 3);
    try {
      const fingerprint = rebuildFingerprint(config, model);
      const existing = await loadCheckpoint(sql, tables, subscriber);
      const builtBy = await shadowFingerprint(sql, shadow);
      // Resume only a shadow built by this same projector and declaration; anything else starts over.
      const resumed = Boolean(existing && builtBy === fingerprint);
      if (!resumed) {
        await startShadow(pool, tables, model, shadow, subscriber, fingerprint);
        options.onLog?.(`${model.name}: building ${shadow.quoted} from the start of the log`);
      } else {
        await ensureReadModelTable(sql, tables, model, shadow);
        options.onLog?.(`${model.name}: resuming the rebuild into ${shadow.quoted}`);
      }
      // The count is for the ETA only: it runs beside the build rather than before it (0 until known).
      let total = 0;
      void sql
        .query<{ total: string }>(`SELECT count(*)::text AS total FROM ${tables.events} WHERE aggregate_type = $1::text`, [model.aggregateType])
        .then(([row]) => (total = Number(row!.total)), () => undefined);
      const context: BatchContext = {
        pool,
        tables,
        aggregate: aggregateTypeOf(config, model.aggregateType),
        model,
        cache: new StateCache(500_000),
        batchSize: 5000, // the swap's catch-up pages
        target: { table: shadow, subscriber, mayCommit: (client) => verifyLease(toSql(client), tables, subscriber, owner) },
      };
      const earlier = resumed ? (existing?.eventsApplied ?? 0) : 0;
      let events = earlier;
      let rows = 0;
      const building = await buildShadow(context, resumed ? existing!.position : START_OF_LOG, {
        signal: options.signal,
        chunk: options.batchSize ?? COPY_CHUNK,
        checkpointEveryMs: options.checkpointEveryMs ?? 10_000,
        onApplied: (applied) => {
          events += applied;
          options.onProgress?.({ readModel: model.name, events, total, seconds: (Date.now() - started) / 1000 });
        },
      });
      rows += building.rows;
      if (building.interrupted) {
        return { readModel: model.name, outcome: 'interrupted', resumed, events, eventsThisRun: events - earlier, rows, ...rate(events - earlier, started) };
      }
      // Statistics before the table serves queries; outside the swap, which holds locks.
      await sql.query(`ANALYZE ${shadow.quoted}`);
      const swapped = await swapWithRetries(pool, tables, model, shadow, subscriber, { ...context, owner }, options.lockTimeoutMs ?? 5000, options.onLog);
      events += swapped.events;
      rows += swapped.rows;
      options.onLog?.(`${model.name}: swapped in the rebuilt table (${events} events)`);
      return { readModel: model.name, outcome: 'swapped', resumed, events, eventsThisRun: events - earlier, rows, ...rate(events - earlier, started) };
    } finally {
      clearInterval(renew);
      await releaseLease(sql, tables, subscriber, owner).catch(() => undefined);
    }
  } catch (error) {
    throw describeDatabaseError(error, `rebuild ${model.name}`);
  } finally {
    await pool.end().catch(() => undefined);
  }
}

/**
 * Events per COPY chunk, by default: each chunk is one read-only transaction, so none
 * holds a snapshot for long. The built rows are flushed with the checkpoint at the end of
 * a chunk when the checkpoint interval has passed or this many rows wait (memory). In an
 * interleaved log most aggregates change in every stretch of events, so the rarer the
 * flush, the fewer times each row is written.
 */
const COPY_CHUNK = 250_000;
const FLUSH_ROWS = 250_000;
/** Past this many aggregates in memory, states are dropped after a flush and read back as needed. */
const MAX_STATES = 1_000_000;

/**
 * Builds the shadow from `position` up to the current end of the log. It streams the
 * log with COPY (see store/copyEvents.ts), folds each aggregate's events in order as they
 * arrive, keeps every touched state in memory and writes each changed row once per flush
 * (see COPY_CHUNK), with the rebuild's checkpoint, so a crash resumes from the last flush. An event that cannot be folded in stream order (its aggregate's state must
 * be read back first, or an earlier sequence comes later: the per-aggregate order
 * contract) waits until the end of its chunk, when its aggregate is folded from the store.
 */
async function buildShadow(
  ctx: BatchContext,
  position: GlobalCheckpoint,
  options: { signal?: AbortSignal; chunk: number; checkpointEveryMs: number; onApplied(events: number): void },
): Promise<{ rows: number; interrupted: boolean }> {
  const sql = toSql(ctx.pool);
  const { aggregate, tables } = ctx;
  const applied = await allAppliedSequences(sql, tables, ctx.target.table); // what a resumed shadow already holds
  const states = new Map<string, Building>();
  let dirty: Array<[string, Building]> = [];
  const waiting = new Map<string, number>(); // aggregate -> highest sequence seen out of order
  let pendingEvents = 0;
  let rows = 0;
  let lastFlush = Date.now();
  const flush = async () => {
    const changes: RowChange[] = dirty.map(([id, built]) => ({ aggregateId: id, sequence: built.version, state: built.state, deleted: built.deleted }));
    await inTransaction(ctx.pool, async (client) => {
      await client.query('SET LOCAL synchronous_commit = off'); // derived data: see processBatch
      if (!(await ctx.target.mayCommit(client))) throw new DatabaseError(`the rebuild of ${ctx.model.name} lost its lease to another rebuild`);
      // An aggregate never written to this shadow has no row there: those go in with COPY.
      await writeRows(toSql(client), client, tables, ctx.model, ctx.target.table, changes, { client, isAbsent: (id) => !applied.has(id) });
      await saveCheckpoint(toSql(client), tables, ctx.target.subscriber, position, pendingEvents);
    });
    for (const [id, built] of dirty) {
      built.dirty = false;
      applied.set(id, built.version);
    }
    rows += changes.length;
    dirty = [];
    pendingEvents = 0;
    lastFlush = Date.now();
    if (states.size > MAX_STATES) states.clear();
  };
  const markDirty = (id: string, built: Building) => {
    if (built.dirty) return;
    built.dirty = true;
    dirty.push([id, built]);
  };
  const reader = await checkout(ctx.pool);
  try {
    for (;;) {
      if (options.signal?.aborted) {
        await flush();
        return { rows, interrupted: true };
      }
      let folded = 0;
      let last: CopiedEvent | undefined;
      // Called a million times a rebuild: one map lookup and an in-place fold in the common case.
      const read = await copyEvents(reader, tables, aggregate.type, position, options.chunk, (event) => {
        last = event;
        const id = event.aggregateId;
        if (waiting.size !== 0 && waiting.has(id)) {
          waiting.set(id, Math.max(waiting.get(id)!, event.sequence));
          return;
        }
        let built = states.get(id);
        if (built === undefined) {
          const at = applied.get(id) ?? 0;
          if (event.sequence <= at) return;
          if (at !== 0 || event.sequence !== 1) {
            waiting.set(id, event.sequence); // needs its state read back, or an earlier sequence first
            return;
          }
          built = building(initialFold(aggregate));
          states.set(id, built);
        } else if (event.sequence !== built.version + 1) {
          if (event.sequence > built.version) waiting.set(id, event.sequence);
          return;
        }
        foldInto(aggregate, built, event);
        markDirty(id, built);
        folded += 1;
      });
      if (last) position = { transactionId: last.transactionId, globalPosition: last.globalPosition };
      // The aggregates that had to wait, folded through the highest sequence seen: one held in
      // memory from its state, the rest (all of them when a rebuild resumes) from the store
      // together, from their snapshots (see foldedAtMany), not two queries each.
      const fromStore: FoldTarget[] = [];
      for (const [id, target] of waiting) {
        const known = states.get(id);
        const at = known?.version ?? applied.get(id) ?? 0;
        if (target <= at) continue;
        folded += target - at;
        if (!known) {
          fromStore.push({ aggregateId: id, sequence: target });
          continue;
        }
        for (const event of await readAggregateForFold(sql, tables, aggregate, byCanonicalId(id), at + 1, target)) foldInto(aggregate, known, event);
        markDirty(id, known);
      }
      for (const [id, state] of await foldedAtMany(sql, tables, aggregate, fromStore)) {
        const built = building(state);
        states.set(id, built);
        markDirty(id, built);
      }
      waiting.clear();
      pendingEvents += folded;
      options.onApplied(folded);
      const caughtUp = read < options.chunk;
      if (caughtUp || dirty.length >= FLUSH_ROWS || Date.now() - lastFlush >= options.checkpointEveryMs) await flush();
      if (caughtUp) {
        // The swap's catch-up folds on from these instead of from the store.
        for (const [id, built] of states) ctx.cache.set(id, { state: built.state, version: built.version, deleted: built.deleted });
        return { rows, interrupted: false };
      }
    }
  } finally {
    reader.release();
  }
}

/** An aggregate's state as the rebuild folds it, in place; `dirty` until flushed. */
interface Building extends Folded {
  dirty: boolean;
}

/** Written out rather than spread: a spread costs 2 µs here, a third of a second per 100,000 aggregates. */
function building(folded: Folded): Building {
  return { state: folded.state, version: folded.version, deleted: folded.deleted, dirty: false };
}

/** Every sequence a read-model table reflects (rows and tombstones), for a resumed rebuild. */
async function allAppliedSequences(sql: Sql, tables: StoreTables, table: TableName): Promise<Map<string, number>> {
  const rows = await sql.query<{ aggregate_id: string; sequence: string }>(
    `SELECT aggregate_id, max(sequence)::text AS sequence FROM (
       SELECT aggregate_id, ${SEQUENCE_COLUMN} AS sequence FROM ${table.quoted}
       UNION ALL
       SELECT aggregate_id, sequence FROM ${tables.tombstones} WHERE table_oid = to_regclass($1::text)::oid
     ) s GROUP BY aggregate_id`,
    [table.quoted],
  );
  return new Map(rows.map((r) => [r.aggregate_id, Number(r.sequence)]));
}

/**
 * The swap can lose a deadlock to a query that locks the read model and a view on it in
 * the other order, or time out behind a long one: both leave everything as it was, so it
 * is tried again a few times.
 */
async function swapWithRetries(...args: [...Parameters<typeof swap>, ((line: string) => void)?]): Promise<{ events: number; rows: number }> {
  const [pool, tables, model, shadow, subscriber, context, lockTimeoutMs, onLog] = args;
  for (let attempt = 1; ; attempt++) {
    try {
      return await swap(pool, tables, model, shadow, subscriber, context, lockTimeoutMs);
    } catch (error) {
      const state = sqlStateOf(error) ?? (error as DatabaseError).sqlState;
      const retryable = state === SQLSTATE.DEADLOCK_DETECTED || state === SQLSTATE.LOCK_NOT_AVAILABLE;
      if (!retryable || attempt >= 3) throw error;
      onLog?.(`${model.name}: the swap ${state === SQLSTATE.DEADLOCK_DETECTED ? 'lost a deadlock' : 'timed out on its locks'}; retrying`);
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

/** The final catch-up and the swap, in one transaction holding the live read model's lease row. */
async function swap(
  pool: pg.Pool,
  tables: StoreTables,
  model: ReadModel,
  shadow: TableName,
  subscriber: string,
  context: BatchContext & { owner: string },
  lockTimeoutMs: number,
): Promise<{ events: number; rows: number }> {
  const client = await checkout(pool);
  try {
    await client.query('BEGIN');
    await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
    // A client that hangs or vanishes must not keep the read model locked.
    await client.query(`SET LOCAL idle_in_transaction_session_timeout = ${Math.max(10_000, Math.round(lockTimeoutMs) * 4)}`);
    const tx = toSql(client);
    if (!(await verifyLease(tx, tables, subscriber, context.owner))) {
      throw new DatabaseError(`the rebuild of ${model.name} lost its lease to another rebuild; nothing was swapped`);
    }
    // Lock the live read model's lease row (made if no updater ever ran): its updater's
    // commits lock it too, so none can land between this catch-up and the swap, and one
    // prepared before it finds its checkpoint moved and writes nothing.
    await tx.query(
      `INSERT INTO ${tables.leases} AS l (name, owner, expires_at) VALUES ($1::text, 'rebuild', clock_timestamp())
       ON CONFLICT (name) DO UPDATE SET expires_at = l.expires_at RETURNING 1`,
      [model.subscriber],
    );
    let events = 0;
    let rows = 0;
    const inside: BatchContext = { ...context, client };
    let position = (await loadCheckpoint(tx, tables, subscriber))?.position ?? START_OF_LOG;
    for (;;) {
      const result = await processBatch(inside, position);
      events += result.applied;
      rows += result.rows;
      position = result.checkpoint;
      if (result.scanned === 0) break;
    }
    await swapTables(tx, tables, model, shadow);
    // The live checkpoint becomes the shadow's, which is at or past it.
    await tx.query(
      `INSERT INTO ${tables.checkpoints} (subscriber, transaction_id, global_position, events_applied, updated_at)
       SELECT $1::text, transaction_id, global_position, events_applied, now() FROM ${tables.checkpoints} WHERE subscriber = $2::text
       ON CONFLICT (subscriber) DO UPDATE SET transaction_id = excluded.transaction_id, global_position = excluded.global_position,
         events_applied = excluded.events_applied, updated_at = now(), failed_at = NULL, failure = NULL`,
      [model.subscriber, subscriber],
    );
    await deleteCheckpoint(tx, tables, subscriber);
    await tx.query(`DELETE FROM ${tables.leases} WHERE name = $1::text AND owner = 'rebuild'`, [model.subscriber]);
    await client.query('COMMIT');
    return { events, rows };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (sqlStateOf(error) === SQLSTATE.LOCK_NOT_AVAILABLE) {
      throw new DatabaseError(
        `the swap of ${model.name} could not get its locks within ${lockTimeoutMs} ms (long queries on the read model, or a busy updater); ` +
          'the rebuilt table is kept: run the rebuild again to resume and retry the swap',
        { sqlState: SQLSTATE.LOCK_NOT_AVAILABLE, cause: error },
      );
    }
    throw error;
  } finally {
    client.release();
  }
}

/** Drops a rebuild's shadow table and checkpoint. */
export async function cancelRebuild(config: ResolvedConfig, name: string, connectionString: string): Promise<boolean> {
  const model = readModelOf(config, name);
  const tables = storeTables(config.quotedSchema);
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const sql = toSql(client);
    const shadow = shadowTable(model.table);
    const existed = await tableExists(sql, shadow);
    await client.query('BEGIN');
    if (existed) await dropShadow(sql, tables, shadow);
    await deleteCheckpoint(sql, tables, rebuildSubscriber(model));
    await sql.query(`DELETE FROM ${tables.leases} WHERE name = $1::text`, [rebuildSubscriber(model)]);
    await client.query('COMMIT');
    return existed;
  } finally {
    await client.end();
  }
}

/** What the shadow is built from: the projection version and the read model's declaration. */
function rebuildFingerprint(config: ResolvedConfig, model: ReadModel): string {
  const aggregate = aggregateTypeOf(config, model.aggregateType);
  const declaration = JSON.stringify([aggregate.projectionVersion, model.columns, model.indexes, model.onDelete, Boolean(model.write)]);
  return `hindsight rebuild ${createHash('sha256').update(declaration).digest('hex').slice(0, 16)}`;
}

/** The fingerprint a shadow was built with (its table comment), or undefined when there is no shadow. */
async function shadowFingerprint(sql: Sql, shadow: TableName): Promise<string | undefined> {
  const [row] = await sql.query<{ comment: string | null }>(`SELECT obj_description(to_regclass($1::text), 'pg_class') AS comment`, [shadow.quoted]);
  return row?.comment ?? undefined;
}

/** A fresh shadow and no rebuild checkpoint, in one transaction, so a crash cannot leave one without the other. */
async function startShadow(pool: pg.Pool, tables: StoreTables, model: ReadModel, shadow: TableName, subscriber: string, fingerprint: string): Promise<void> {
  const client = await checkout(pool);
  try {
    await client.query('BEGIN');
    const tx = toSql(client);
    if (await tableExists(tx, shadow)) await dropShadow(tx, tables, shadow);
    await deleteCheckpoint(tx, tables, subscriber);
    await ensureReadModelTable(tx, tables, model, shadow);
    await tx.query(`COMMENT ON TABLE ${shadow.quoted} IS ${quoteLiteral(fingerprint)}`);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** Drops a shadow table with its tombstones (keyed by its oid, which a later table may reuse). */
async function dropShadow(sql: Sql, tables: StoreTables, shadow: TableName): Promise<void> {
  await sql.query(`DELETE FROM ${tables.tombstones} WHERE table_oid = to_regclass($1::text)::oid`, [shadow.quoted]);
  await sql.query(`DROP TABLE ${shadow.quoted}`);
}

/** A fingerprint is hex and fixed text: quoting it as a literal is safe (COMMENT takes no parameters). */
function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

function readModelOf(config: ResolvedConfig, name: string): ReadModel {
  const model = config.readModels.get(name);
  if (!model) {
    const known = [...config.readModels.keys()];
    throw new ConfigError(`unknown read model "${name}"; ${known.length ? `the config declares: ${known.join(', ')}` : 'the config declares none'}`);
  }
  return model;
}

export function shadowTable(table: TableName): TableName {
  const name = shadowName(table.name);
  return { schema: table.schema, name, quoted: table.schema ? `${quoteIdent(table.schema)}.${quoteIdent(name)}` : quoteIdent(name) };
}

export function rebuildSubscriber(model: ReadModel): string {
  return `rebuild:${model.name}`;
}

async function tableExists(sql: Sql, table: TableName): Promise<boolean> {
  const [row] = await sql.query<{ found: boolean }>(`SELECT to_regclass($1::text) IS NOT NULL AS found`, [table.quoted]);
  return Boolean(row?.found);
}

function rate(events: number, started: number): { seconds: number; eventsPerSecond: number } {
  const seconds = (Date.now() - started) / 1000;
  return { seconds, eventsPerSecond: seconds > 0 ? events / seconds : 0 };
}

import pg from 'pg';
import type { AggregateType, ResolvedConfig } from '../config/resolve.js';
import { describeDatabaseError } from '../db/describeError.js';
import { quoteIdent } from '../db/identifiers.js';
import { inTransaction } from '../db/transaction.js';
import { toSql, type Sql } from '../db/queryable.js';
import { DatabaseError, UsageError } from '../errors.js';
import type { ManyRow } from '../store/appendMany.js';
import { appendOpening } from '../store/appendOpening.js';
import { appendEvents } from '../store/appendEvents.js';
import { newEventId } from '../store/eventId.js';
import { isConcurrencyError } from '../errors.js';
import { storeTables, type StoreTables } from '../store/tables.js';
import { listenerTypes } from './setup.js';

/**
 * The baseline: every existing legacy row's opening event (`<table>.imported`, sequence 1),
 * consistent with the listener. The slot is created with an exported snapshot; the rows
 * are read inside that snapshot (a read-only transaction on its own connection) while the
 * events are written in separate batch transactions. The snapshot shows exactly the
 * transactions committed before the slot's consistent point, and the slot streams exactly
 * those after it, so a row changed during the backfill is imported with its value before
 * the change and then streamed as the change: never twice, never missed. The listener
 * holds the stream while a baseline is pending.
 */

/**
 * Session settings that fix how values print as text: the import's reader and the
 * listener's stream must print a timestamp the same way (both connections use them).
 */
export const TEXT_SETTINGS = '-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=1';

export interface BackfillOptions {
  connectionString: string;
  /** Rows per page and per write transaction. Default 1,000. */
  batchSize?: number;
  /** How long slot creation may wait for running write transactions. Default 30 s. */
  slotWaitMs?: number;
  onProgress?: (progress: { aggregateType: string; rows: number }) => void;
  onLog?: (line: string) => void;
}

export interface BackfillResult {
  slot: string;
  consistentPoint: string;
  imported: Array<{ aggregateType: string; rows: number }>;
}

export async function backfill(config: ResolvedConfig, options: BackfillOptions): Promise<BackfillResult> {
  const tables = storeTables(config.quotedSchema);
  const types = listenerTypes(config);
  if (types.length === 0) throw new UsageError('no aggregate type has capture "listener" or "both": there is nothing to backfill');
  const slot = config.replication.slot;
  const writer = new pg.Pool({ connectionString: options.connectionString, max: 2 });
  writer.on('error', () => undefined);
  const sql = toSql(writer);
  try {
    const [state] = await sql.query(`SELECT 1 FROM ${tables.replicationState} WHERE slot_name = $1::text`, [slot]);
    const done = await sql.query<{ type: string }>(`SELECT aggregate_type AS type FROM ${tables.baselines}`);
    if (state || done.length > 0) {
      const missing = types.filter((t) => !done.some((d) => d.type === t.type)).map((t) => t.type);
      if (missing.length === 0 && state) return { slot, consistentPoint: '', imported: [] };
      throw new UsageError(
        missing.length > 0
          ? `the slot ${slot} already streams; adding ${missing.join(', ')} to it needs a chunked re-backfill while writes continue, which hindsight does not have yet`
          : `a baseline was imported but the slot ${slot} is gone (dropped or lost): re-backfill and verify are required, which hindsight does not do yet`,
      );
    }
    const [{ exists } = { exists: false }] = await sql.query<{ exists: boolean }>(`SELECT true AS exists FROM pg_replication_slots WHERE slot_name = $1::text`, [slot]);
    if (exists) throw new UsageError(`a slot named ${slot} already exists but hindsight has no record of it: drop it, or choose another replication.slot`);

    // Marks the baselines pending first: a listener started meanwhile holds the stream.
    await sql.query(`INSERT INTO ${tables.baselines} (aggregate_type, slot_name, status) SELECT unnest($1::text[]), $2::text, 'pending'`, [
      types.map((t) => t.type),
      slot,
    ]);
    const replication = new pg.Client({ connectionString: options.connectionString, replication: 'database', options: TEXT_SETTINGS } as pg.ClientConfig);
    replication.on('error', () => undefined);
    await replication.connect();
    try {
      options.onLog?.(`creating slot ${slot}: waits for every running write transaction in the cluster to finish`);
      const created = await createSlot(replication, sql, slot, options.slotWaitMs ?? 30_000);
      const reader = new pg.Client({ connectionString: options.connectionString, options: TEXT_SETTINGS });
      await reader.connect();
      const imported: BackfillResult['imported'] = [];
      let snapshot = '';
      try {
        await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        await reader.query(`SET TRANSACTION SNAPSHOT '${created.snapshot.replace(/'/g, "''")}'`);
        snapshot = (await reader.query<{ snapshot: string }>(`SELECT pg_current_snapshot()::text AS snapshot`)).rows[0]!.snapshot;
        for (const type of types) {
          const { rows } = await importType(toSql(reader), writer, tables, type, options);
          imported.push({ aggregateType: type.type, rows });
        }
        await reader.query('COMMIT');
      } finally {
        await reader.end().catch(() => undefined);
      }
      // The baseline and the listener's starting point commit together.
      await inTransaction(writer, async (client) => {
        // The checkpoint is inclusive ("appended up to and including this commit"), and a
        // commit record may start exactly at the consistent point: that one is streamed, not in the snapshot.
        await client.query(`INSERT INTO ${tables.replicationState} (slot_name, consistent_point, checkpoint_lsn) VALUES ($1::text, $2::pg_lsn, $2::pg_lsn - 1)`, [
          slot,
          created.consistentPoint,
        ]);
        await client.query(
          `UPDATE ${tables.baselines} SET status = 'done', consistent_point = $2::pg_lsn, snapshot = $3::pg_snapshot, completed_at = now() WHERE slot_name = $1::text`,
          [slot, created.consistentPoint, snapshot],
        );
      });
      return { slot, consistentPoint: created.consistentPoint, imported };
    } catch (error) {
      // Nothing half-done stays behind: no slot, no pending baseline (the imported events
      // stay, as events do; a new backfill then stops at them with a clear error).
      await replication.end().catch(() => undefined);
      await sql.query(`SELECT pg_drop_replication_slot($1::text) FROM pg_replication_slots WHERE slot_name = $1::text AND NOT active`, [slot]).catch(() => undefined);
      await sql.query(`DELETE FROM ${tables.baselines} WHERE slot_name = $1::text AND status = 'pending'`, [slot]).catch(() => undefined);
      throw error;
    } finally {
      await replication.end().catch(() => undefined);
    }
  } catch (error) {
    throw describeDatabaseError(error, 'backfill');
  } finally {
    await writer.end().catch(() => undefined);
  }
}

/**
 * CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT (the spelling PostgreSQL 14 to 18 accept).
 * It waits for every running write transaction in the cluster; past `waitMs` it gives up
 * and names them.
 */
async function createSlot(replication: pg.Client, sql: Sql, slot: string, waitMs: number): Promise<{ consistentPoint: string; snapshot: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void sql
        .query<{ pid: string; datname: string; age: string }>(
          `SELECT pid::text, coalesce(datname, '?') AS datname, round(extract(epoch FROM now() - xact_start))::text AS age
           FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() ORDER BY xact_start LIMIT 5`,
        )
        .then(
          (rows) => rows.map((r) => `pid ${r.pid} in database ${r.datname}, open ${r.age} s`).join('; '),
          () => 'could not list them',
        )
        .then((blockers) => reject(new DatabaseError(`creating slot ${slot} waited ${waitMs / 1000} s for running write transactions to finish (${blockers}); end them and run backfill again`)));
    }, waitMs);
  });
  try {
    const result = await Promise.race([
      replication.query(`CREATE_REPLICATION_SLOT ${quoteIdent(slot)} LOGICAL pgoutput EXPORT_SNAPSHOT`),
      timeout,
    ]);
    const row = result.rows[0] as { consistent_point: string; snapshot_name: string };
    return { consistentPoint: row.consistent_point, snapshot: row.snapshot_name };
  } finally {
    clearTimeout(timer);
  }
}

/** Imports one type's rows, read in key order from the snapshot, in write batches of their own. */
async function importType(
  reader: Sql,
  writer: pg.Pool,
  tables: StoreTables,
  type: AggregateType,
  options: BackfillOptions,
  onExisting: 'refuse' | 'skip' = 'refuse',
): Promise<{ rows: number; skipped: number }> {
  const batchSize = options.batchSize ?? 1000;
  const keys = type.key.map((k) => k.quoted);
  const keyList = keys.join(', ');
  const occurredAt = new Date().toISOString(); // imports take the import time
  // Every column as its text output, as pgoutput sends it (both connections print times in UTC, ISO).
  const columns = (
    await reader.query<{ name: string }>(
      `SELECT attname AS name FROM pg_attribute WHERE attrelid = to_regclass($1::text) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
      [type.table.quoted],
    )
  )
    .map((c) => c.name)
    .filter((name) => !type.columns || type.columns.has(name));
  const asJson = (names: string[]) => `json_build_array(${names.map((n) => `${n}::text`).join(', ')})::text`;
  let after: string[] | undefined;
  let rows = 0;
  let skipped = 0;
  for (;;) {
    const where = after ? `WHERE (${keyList}) > (${type.key.map((k, i) => `$${i + 1}::text::${k.type.sql}`).join(', ')})` : '';
    const page = (
      await reader.query<{ keys: string; values: string }>(
        `SELECT ${asJson(keys)} AS keys, ${columns.length > 0 ? asJson(columns.map(quoteIdent)) : `'[]'`} AS values
         FROM ${type.table.quoted} t ${where} ORDER BY ${keyList} LIMIT ${batchSize}`,
        after ?? [],
      )
    ).map((row) => ({ keys: JSON.parse(row.keys) as string[], values: JSON.parse(row.values) as Array<string | null> }));
    if (page.length === 0) return { rows, skipped };
    await inTransaction(writer, async (client) => {
      const events = page.map((row): ManyRow => ({
        key: row.keys,
        eventId: newEventId(),
        type: `${type.tableLabel}.imported`,
        schemaVersion: type.events.get(`${type.tableLabel}.imported`)?.version ?? 1,
        payload: JSON.stringify({ after: Object.fromEntries(columns.map((name, i) => [name, row.values[i]!])) }),
        metadata: JSON.stringify({ reason: 'baseline import' }),
        occurredAt,
        source: 'import',
        sourceCommitLsn: null,
        sourceOrdinal: null,
        sourceXid: null,
      }));
      if (onExisting === 'skip') {
        // An app type: an aggregate the app already wrote to keeps its history (expected version "none").
        for (const event of events) {
          try {
            await appendEvents(toSql(client), tables, type, event.key, event.key.join(', '), [event], 0);
          } catch (error) {
            if (!isConcurrencyError(error)) throw error;
            skipped += 1;
          }
        }
      } else {
        // A type's opening event is sequence 1; a head already there means events came before the baseline.
        const { existing } = await appendOpening(toSql(client), tables, type, events);
        if (existing !== undefined) throw new DatabaseError(`aggregate ${type.type} ${existing} already has events: a baseline import must come first`);
      }
      await client.query(`UPDATE ${tables.baselines} SET rows_imported = rows_imported + $2::bigint WHERE aggregate_type = $1::text`, [type.type, page.length]);
    });
    rows += page.length;
    options.onProgress?.({ aggregateType: type.type, rows });
    after = page[page.length - 1]!.keys;
  }
}

/**
 * The opening events of an `app` type (no listener): its rows read in one REPEATABLE READ
 * snapshot, in key order, each imported with expected version "none", so an aggregate the
 * app has already written to is skipped and keeps its history. Safe to run again. Writes
 * made between this import and the wrappers going live are seen only by verification.
 */
export async function importAppType(
  config: ResolvedConfig,
  aggregateType: string,
  options: BackfillOptions,
): Promise<{ aggregateType: string; rows: number; skipped: number }> {
  const type = config.aggregates.get(aggregateType);
  if (!type) throw new UsageError(`unknown aggregate type ${aggregateType}`);
  if (type.capture !== 'app') throw new UsageError(`${aggregateType} has capture "${type.capture}": its baseline comes from "hindsight backfill" without a type`);
  const tables = storeTables(config.quotedSchema);
  const writer = new pg.Pool({ connectionString: options.connectionString, max: 2 });
  writer.on('error', () => undefined);
  const reader = new pg.Client({ connectionString: options.connectionString, options: TEXT_SETTINGS });
  try {
    await reader.connect();
    await toSql(writer).query(
      `INSERT INTO ${tables.baselines} (aggregate_type, status) VALUES ($1::text, 'pending')
       ON CONFLICT (aggregate_type) DO UPDATE SET status = 'pending', rows_imported = 0, started_at = now(), completed_at = NULL`,
      [type.type],
    );
    await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const result = await importType(toSql(reader), writer, tables, type, options, 'skip');
    await reader.query('COMMIT');
    await toSql(writer).query(`UPDATE ${tables.baselines} SET status = 'done', completed_at = now() WHERE aggregate_type = $1::text`, [type.type]);
    return { aggregateType: type.type, ...result };
  } catch (error) {
    throw describeDatabaseError(error, `import ${aggregateType}`);
  } finally {
    await reader.end().catch(() => undefined);
    await writer.end().catch(() => undefined);
  }
}

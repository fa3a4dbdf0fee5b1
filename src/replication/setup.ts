import pg from 'pg';
import type { AggregateType, ResolvedConfig } from '../config/resolve.js';
import { describeDatabaseError } from '../db/describeError.js';
import { quoteIdent } from '../db/identifiers.js';
import { toSql, type Sql } from '../db/queryable.js';
import { ConfigError, DatabaseError } from '../errors.js';
import { storeTables } from '../store/tables.js';

/**
 * `hindsight replication setup | status | teardown`: the publication of the mapped legacy
 * tables and their replica identity, checked first; the slot's health; removal. Setup
 * never creates the slot: the first backfill does, with the snapshot its import reads.
 */

/** The aggregate types whose events the listener writes ("listener" and "both"). */
export function listenerTypes(config: ResolvedConfig): AggregateType[] {
  return [...config.aggregates.values()].filter((a) => a.capture !== 'app');
}

/** The insert-only publication of the staging table, needed when a type has capture "both". */
export function stagingPublication(config: ResolvedConfig): string | undefined {
  return [...config.aggregates.values()].some((a) => a.capture === 'both') ? `${config.replication.publication}_staging` : undefined;
}

/** Each listener type's legacy table by its oid (as pgoutput names relations). */
export async function tableOids(sql: Sql, types: readonly AggregateType[]): Promise<Map<number, AggregateType>> {
  const byOid = new Map<number, AggregateType>();
  for (const type of types) {
    const [row] = await sql.query<{ oid: string | null }>(`SELECT to_regclass($1::text)::oid::text AS oid`, [type.table.quoted]);
    if (!row?.oid) throw new ConfigError(`the table ${type.tableLabel} of aggregate type ${type.type} does not exist`);
    byOid.set(Number(row.oid), type);
  }
  return byOid;
}

export interface PreflightProblem {
  check: string;
  problem: string;
  fix: string;
}

/** What would stop logical replication of the listener types' tables, each with what to do. */
export async function preflight(sql: Sql, config: ResolvedConfig): Promise<PreflightProblem[]> {
  const problems: PreflightProblem[] = [];
  const types = listenerTypes(config);
  if (types.length === 0) {
    problems.push({ check: 'config', problem: 'no aggregate type has capture "listener" or "both"', fix: 'set capture: "listener" (or "both") on the types whose tables legacy code writes' });
    return problems;
  }
  const [server] = await sql.query<{ wal_level: string; max_slots: string; used_slots: string; max_senders: string; used_senders: string; can_replicate: boolean }>(
    `SELECT current_setting('wal_level') AS wal_level,
            current_setting('max_replication_slots') AS max_slots,
            (SELECT count(*) FROM pg_replication_slots)::text AS used_slots,
            current_setting('max_wal_senders') AS max_senders,
            (SELECT count(*) FROM pg_stat_replication)::text AS used_senders,
            (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS can_replicate`,
  );
  const s = server!;
  if (s.wal_level !== 'logical') {
    problems.push({ check: 'wal_level', problem: `wal_level is ${s.wal_level}`, fix: 'set wal_level = logical in postgresql.conf (or ALTER SYSTEM) and restart the server' });
  }
  const [slotExists] = await sql.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1::text`, [config.replication.slot]);
  if (!slotExists && Number(s.used_slots) >= Number(s.max_slots)) {
    problems.push({ check: 'slots', problem: `all ${s.max_slots} replication slots are in use`, fix: 'raise max_replication_slots (restart needed) or drop an unused slot' });
  }
  if (Number(s.used_senders) >= Number(s.max_senders)) {
    problems.push({ check: 'senders', problem: `all ${s.max_senders} WAL senders are in use`, fix: 'raise max_wal_senders (restart needed)' });
  }
  if (!s.can_replicate) {
    problems.push({ check: 'replication right', problem: 'the connecting role has neither REPLICATION nor superuser', fix: 'ALTER ROLE <role> REPLICATION, or connect as a role that has it' });
  }
  for (const type of types) {
    const [table] = await sql.query<{ owner: boolean | null; oid: string | null }>(
      `SELECT c.oid::text AS oid, pg_has_role(current_user, c.relowner, 'USAGE') AS owner
       FROM pg_class c WHERE c.oid = to_regclass($1::text)`,
      [type.table.quoted],
    );
    if (!table?.oid) {
      problems.push({ check: `table ${type.tableLabel}`, problem: 'does not exist', fix: `create it, or fix "table" of aggregate type ${type.type}` });
      continue;
    }
    if (!table.owner) {
      problems.push({ check: `table ${type.tableLabel}`, problem: 'the connecting role does not own it', fix: 'run setup as the table owner: publications and replica identity need ownership' });
    }
    if (type.replicaIdentity === 'default') {
      // Once published, UPDATE and DELETE on a table without a replica identity fail: the legacy app would break.
      const [identity] = await sql.query<{ usable: boolean }>(
        `SELECT c.relreplident = 'f' OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
                OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)) AS usable
         FROM pg_class c WHERE c.oid = $1::oid`,
        [table.oid],
      );
      if (!identity?.usable) {
        problems.push({
          check: `table ${type.tableLabel}`,
          problem: 'has no primary key, so with replicaIdentity "default" its UPDATEs and DELETEs would fail once published',
          fix: `add a primary key, or use replicaIdentity "full" on ${type.type}`,
        });
      }
    }
    const columns = await sql.query<{ name: string; type: string }>(
      `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped`,
      [table.oid],
    );
    const names = new Set(columns.map((c) => c.name));
    for (const key of type.key) {
      const column = columns.find((c) => c.name === key.column);
      if (!column) {
        problems.push({ check: `table ${type.tableLabel}`, problem: `has no key column "${key.column}"`, fix: `fix "key" of aggregate type ${type.type}` });
      } else if (sameType(column.type) !== sameType(key.type.sql)) {
        // The stream sends the column's own text; the wrappers cast to the declared type: they must agree.
        problems.push({
          check: `table ${type.tableLabel}`,
          problem: `key column "${key.column}" is ${column.type} but the config declares ${key.type.sql}, so ids from row changes and from the app could differ`,
          fix: `declare the key as ${column.type}`,
        });
      }
    }
    for (const column of [...(type.columns?.keys() ?? []), ...type.mappings.flatMap((rule) => [rule.column, ...rule.payload.map(([, c]) => c)])]) {
      if (!names.has(column)) problems.push({ check: `table ${type.tableLabel}`, problem: `has no column "${column}"`, fix: `fix "columns" of aggregate type ${type.type}` });
    }
  }
  return problems;
}

/** A type name as format_type prints it and as a config declares it, made comparable. */
function sameType(name: string): string {
  return name.toLowerCase().replace(/\s+/g, ' ').replace(/^character varying/, 'varchar').replace(/^int4$|^int$/, 'integer').replace(/^int8$/, 'bigint').replace(/^int2$/, 'smallint');
}

export interface SetupResult {
  publication: string;
  tables: string[];
  /** Tables whose replica identity was set to FULL by this run. */
  madeFull: string[];
  warnings: string[];
}

/**
 * Checks, then creates (or updates) the publication on exactly the listener types' tables
 * and sets their replica identity. DDL on live tables runs under `lock_timeout`.
 */
export async function setupReplication(config: ResolvedConfig, options: { connectionString: string; lockTimeoutMs?: number }): Promise<SetupResult> {
  const client = new pg.Client(options.connectionString);
  await client.connect();
  const sql = toSql(client);
  try {
    const problems = await preflight(sql, config);
    if (problems.length > 0) {
      throw new DatabaseError(`replication setup found problems; nothing was changed:\n${problems.map((p) => `  - ${p.check}: ${p.problem}. Fix: ${p.fix}`).join('\n')}`);
    }
    const types = listenerTypes(config);
    const publication = quoteIdent(config.replication.publication);
    const tableList = types.map((t) => t.table.quoted).join(', ');
    const warnings: string[] = [];
    const madeFull: string[] = [];
    await client.query('BEGIN');
    await client.query(`SELECT set_config('lock_timeout', $1::text, true)`, [`${options.lockTimeoutMs ?? 5000}ms`]);
    const [existing] = await sql.query(`SELECT 1 FROM pg_publication WHERE pubname = $1::text`, [config.replication.publication]);
    await client.query(existing ? `ALTER PUBLICATION ${publication} SET TABLE ${tableList}` : `CREATE PUBLICATION ${publication} FOR TABLE ${tableList}`);
    const staging = stagingPublication(config);
    if (staging) {
      // Its own publication, inserts only: the listener reads staged events from the stream, and their deletion is not streamed.
      const [has] = await sql.query(`SELECT 1 FROM pg_publication WHERE pubname = $1::text`, [staging]);
      if (!has) await client.query(`CREATE PUBLICATION ${quoteIdent(staging)} FOR TABLE ${storeTables(config.quotedSchema).stagedEvents} WITH (publish = 'insert')`);
    }
    for (const type of types) {
      const [row] = await sql.query<{ identity: string }>(`SELECT relreplident AS identity FROM pg_class WHERE oid = to_regclass($1::text)`, [type.table.quoted]);
      if (type.replicaIdentity === 'full') {
        if (row!.identity !== 'f') {
          await client.query(`ALTER TABLE ${type.table.quoted} REPLICA IDENTITY FULL`);
          madeFull.push(type.tableLabel);
          warnings.push(
            `${type.tableLabel}: REPLICA IDENTITY FULL logs the whole old row of every UPDATE and DELETE (more WAL); set replicaIdentity: "default" on ${type.type} to opt out (updates then carry no before-values)`,
          );
        }
      } else if (row!.identity === 'n') {
        throw new DatabaseError(`${type.tableLabel} has REPLICA IDENTITY NOTHING: its updates and deletes cannot be decoded; give it a primary key or use replicaIdentity: "full"`);
      }
    }
    await client.query('COMMIT');
    return { publication: config.replication.publication, tables: types.map((t) => t.tableLabel), madeFull, warnings };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw describeDatabaseError(error, 'replication setup');
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface ReplicationStatus {
  slot: string;
  /** present, missing or lost (wal_status). */
  health: 'ok' | 'missing' | 'lost';
  active: boolean;
  confirmedLsn: string | null;
  checkpointLsn: string | null;
  lagBytes: number | null;
  /** Seconds since the listener last wrote its checkpoint. */
  checkpointAgeSeconds: number | null;
  retainedWalBytes: number | null;
  walStatus: string | null;
  pendingBaselines: string[];
  /** Capture "both": app events staged but not yet in the stream, and how long the oldest has waited (the listener's lag for app events). */
  staged: { waiting: number; oldestSeconds: number | null };
  /** Row changes whose mapped event failed its schema and were recorded as generic events: in the last 24 hours, and ever. */
  mappingFallbacks: { lastDay: number; total: number };
}

/** The slot's health, on PostgreSQL 14 to 18 (only columns every one of them has). */
export async function replicationStatus(sql: Sql, config: ResolvedConfig): Promise<ReplicationStatus> {
  const tables = storeTables(config.quotedSchema);
  const slot = config.replication.slot;
  const [row] = await sql.query<{ active: boolean; confirmed: string | null; lag: string | null; retained: string | null; wal_status: string | null }>(
    `SELECT active, confirmed_flush_lsn::text AS confirmed,
            pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint::text AS lag,
            pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text AS retained, wal_status
     FROM pg_replication_slots WHERE slot_name = $1::text`,
    [slot],
  );
  const [state] = await sql.query<{ checkpoint: string; age: string }>(
    `SELECT checkpoint_lsn::text AS checkpoint, extract(epoch FROM now() - updated_at)::text AS age FROM ${tables.replicationState} WHERE slot_name = $1::text`,
    [slot],
  );
  const pending = await sql.query<{ type: string }>(`SELECT aggregate_type AS type FROM ${tables.baselines} WHERE status = 'pending' ORDER BY 1`);
  const [staged] = await sql.query<{ waiting: string; oldest: string | null }>(
    `SELECT count(*)::text AS waiting, extract(epoch FROM now() - min(staged_at))::text AS oldest FROM ${tables.stagedEvents}`,
  );
  const [fallbacks] = await sql.query<{ day: string; total: string }>(
    `SELECT count(*) FILTER (WHERE recorded_at > now() - interval '24 hours')::text AS day, count(*)::text AS total
     FROM ${tables.events} WHERE (metadata->>'mapping_error') IS NOT NULL`,
  );
  return {
    slot,
    health: !row ? 'missing' : row.wal_status === 'lost' ? 'lost' : 'ok',
    active: row?.active ?? false,
    confirmedLsn: row?.confirmed ?? null,
    checkpointLsn: state?.checkpoint ?? null,
    lagBytes: row?.lag == null ? null : Number(row.lag),
    checkpointAgeSeconds: state ? Number(state.age) : null,
    retainedWalBytes: row?.retained == null ? null : Number(row.retained),
    walStatus: row?.wal_status ?? null,
    pendingBaselines: pending.map((p) => p.type),
    staged: { waiting: Number(staged!.waiting), oldestSeconds: staged!.oldest === null ? null : Number(staged!.oldest) },
    mappingFallbacks: { lastDay: Number(fallbacks!.day), total: Number(fallbacks!.total) },
  };
}

/** Drops the slot and the publication and forgets the listener's position. */
export async function teardownReplication(sql: Sql, config: ResolvedConfig, options: { force?: boolean } = {}): Promise<{ droppedSlot: boolean; droppedPublication: boolean }> {
  const tables = storeTables(config.quotedSchema);
  const { slot, publication } = config.replication;
  const [staged] = await sql.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${tables.stagedEvents}`);
  if (Number(staged!.n) > 0 && !options.force) {
    throw new DatabaseError(
      `${staged!.n} staged app events are not in the stream yet (capture "both"); run the listener until they are appended, or give --force to drop them with the slot`,
    );
  }
  const [active] = await sql.query<{ active: boolean }>(`SELECT active FROM pg_replication_slots WHERE slot_name = $1::text`, [slot]);
  if (active?.active) throw new DatabaseError(`the slot ${slot} is in use by a running listener: stop it first`);
  if (active) await sql.query(`SELECT pg_drop_replication_slot($1::text)`, [slot]);
  const [pub] = await sql.query(`SELECT 1 FROM pg_publication WHERE pubname = $1::text`, [publication]);
  if (pub) await sql.query(`DROP PUBLICATION ${quoteIdent(publication)}`);
  await sql.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(`${publication}_staging`)}`);
  await sql.query(`DELETE FROM ${tables.replicationState} WHERE slot_name = $1::text`, [slot]);
  return { droppedSlot: Boolean(active), droppedPublication: Boolean(pub) };
}

import type { ResolvedConfig } from '../config/resolve.js';
import type { Sql } from '../db/queryable.js';
import { loadCheckpoints, type SubscriberCheckpoint } from '../store/checkpoints.js';
import { utcMicros } from '../store/eventRow.js';
import type { StoreTables } from '../store/tables.js';
import { leaseHolders, type LeaseHolder } from './leases.js';

export type ReadModelState = 'caught-up' | 'behind' | 'stalled' | 'failed' | 'never-run';

export interface ReadModelStatus {
  readModel: string;
  aggregateType: string;
  table: string;
  state: ReadModelState;
  /** Why it is stalled or failed. */
  reason: string | null;
  checkpoint: SubscriberCheckpoint | null;
  /** Events of its type after the checkpoint (visible or not yet), and how long the oldest has waited. */
  lag: { events: number; seconds: number };
  /** The newest event of its type that it has not applied (its highest position, and the latest recording time among them); null when caught up. */
  head: { globalPosition: number; recordedAt: string } | null;
  lease: LeaseHolder | null;
}

/** The transaction holding every gap-safe reader back: the oldest one with a transaction id, in any database of the cluster. */
export interface HorizonHolder {
  pid: number | null;
  database: string | null;
  user: string | null;
  state: string | null;
  ageSeconds: number;
  transactionId: string;
  /** A prepared (two-phase) transaction has no pid; its gid names it. */
  preparedGid: string | null;
  query: string | null;
}

export interface ProjectStatus {
  readModels: ReadModelStatus[];
  horizon: HorizonHolder | null;
}

/** A read model with lag that has not moved for this long is stalled. */
const STALL_SECONDS = 60;

export async function projectStatus(sql: Sql, tables: StoreTables, config: ResolvedConfig, names?: readonly string[]): Promise<ProjectStatus> {
  const models = [...config.readModels.values()].filter((m) => !names?.length || names.includes(m.name));
  const subscribers = models.map((m) => m.subscriber);
  const [checkpoints, leases] = await Promise.all([loadCheckpoints(sql, tables, subscribers), leaseHolders(sql, tables, subscribers)]);
  const readModels: ReadModelStatus[] = [];
  for (const model of models) {
    const checkpoint = checkpoints.get(model.subscriber) ?? null;
    const position = checkpoint?.position ?? { transactionId: '0', globalPosition: 0 };
    // One range read from the checkpoint: the newest event of the type is looked for only
    // among those it has not applied, as looking before the checkpoint would walk back
    // through every other type's events (seconds on a log of 10,000,000).
    const [lag] = await sql.query<{ events: string; seconds: string | null; newest: string | null; recorded_at: string | null }>(
      `SELECT count(*)::text AS events, extract(epoch FROM now() - min(e.recorded_at))::text AS seconds,
              max(e.global_position)::text AS newest, ${utcMicros('max(e.recorded_at)')} AS recorded_at
       FROM ${tables.events} e
       WHERE e.aggregate_type = $1::text AND (e.transaction_id, e.global_position) > ($2::xid8, $3::bigint)`,
      [model.aggregateType, position.transactionId, String(position.globalPosition)],
    );
    const lease = leases.get(model.subscriber) ?? null;
    const events = Number(lag!.events);
    const seconds = Math.max(0, Number(lag!.seconds ?? 0));
    const sinceUpdate = checkpoint ? (Date.now() - Date.parse(checkpoint.updatedAt)) / 1000 : Infinity;
    let state: ReadModelState;
    let reason: string | null = null;
    if (checkpoint?.failedAt) {
      state = 'failed';
      reason = String(checkpoint.failure?.message ?? 'a handler failed');
    } else if (!checkpoint) {
      state = events > 0 ? 'never-run' : 'caught-up';
    } else if (events === 0) {
      state = 'caught-up';
    } else if (!lease || lease.expired) {
      state = 'stalled';
      reason = 'no updater holds its lease';
    } else if (seconds > STALL_SECONDS && sinceUpdate > STALL_SECONDS) {
      state = 'stalled';
      reason = `no progress for ${Math.round(sinceUpdate)} s`;
    } else {
      state = 'behind';
    }
    readModels.push({
      readModel: model.name,
      aggregateType: model.aggregateType,
      table: model.table.quoted,
      state,
      reason,
      checkpoint,
      lag: { events, seconds },
      head: lag!.newest !== null ? { globalPosition: Number(lag!.newest), recordedAt: lag!.recorded_at! } : null,
      lease,
    });
  }
  return { readModels, horizon: await horizonHolder(sql) };
}

async function horizonHolder(sql: Sql): Promise<HorizonHolder | null> {
  const [session] = await sql.query<{ pid: number; datname: string | null; usename: string | null; state: string | null; age: string; xid: string; xid_age: number; query: string | null }>(
    `SELECT pid, datname, usename, state, extract(epoch FROM now() - xact_start)::text AS age, backend_xid::text AS xid,
            age(backend_xid) AS xid_age, left(query, 200) AS query
     FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
     ORDER BY age(backend_xid) DESC LIMIT 1`,
  );
  const [prepared] = await sql.query<{ gid: string; database: string; age: string; xid: string; xid_age: number }>(
    `SELECT gid, database, extract(epoch FROM now() - prepared)::text AS age, transaction::text AS xid, age(transaction) AS xid_age
     FROM pg_prepared_xacts ORDER BY age(transaction) DESC LIMIT 1`,
  );
  const fromSession = session && {
    pid: session.pid,
    database: session.datname,
    user: session.usename,
    state: session.state,
    ageSeconds: Number(session.age ?? 0),
    transactionId: session.xid,
    preparedGid: null,
    query: session.query,
  };
  if (!prepared) return fromSession ?? null;
  const fromPrepared = {
    pid: null,
    database: prepared.database,
    user: null,
    state: 'prepared',
    ageSeconds: Number(prepared.age),
    transactionId: prepared.xid,
    preparedGid: prepared.gid,
    query: null,
  };
  if (!fromSession) return fromPrepared;
  return prepared.xid_age > session.xid_age ? fromPrepared : fromSession;
}

import pg from 'pg';
import type { ResolvedConfig } from '../config/resolve.js';
import { describeDatabaseError } from '../db/describeError.js';
import { toSql } from '../db/queryable.js';
import { SQLSTATE, sqlStateOf } from '../db/sqlState.js';
import { DatabaseError } from '../errors.js';
import { storeTables } from '../store/tables.js';
import { CONTEXT_PREFIX } from '../capture/recordContext.js';
import { formatLsn, parseLsn, type PgoutputMessage, type Relation } from './pgoutput.js';
import { appendGroup } from './appendGroup.js';
import { contextMetadata, type SourceTransaction } from './sourceTransaction.js';
import { TextPgoutput } from './textPgoutput.js';
import { readyCheckpoint, stagingTableOid } from './listenerStart.js';
import { TEXT_SETTINGS } from './backfill.js';
import { listenerTypes, stagingPublication, tableOids } from './setup.js';

/**
 * The listener: streams the slot with pgoutput and turns the row changes of legacy
 * tables into events, one source transaction at a time, in commit order.
 *
 * - Each source transaction is buffered from BEGIN to COMMIT as its raw messages (a
 *   200,000-row UPDATE stays bytes, not objects) and decoded when its group is written.
 * - Consecutive transactions are grouped (up to `maxGroupChanges` changes or about
 *   `maxGroupMs`) and appended in one transaction together with the checkpoint: the
 *   commit LSN through which every source transaction has been appended. Only after that
 *   commits (synchronously: it is what the slot's position will rest on) is the slot
 *   acknowledged up to it. A crash anywhere replays from the slot's confirmed position,
 *   and transactions at or below the checkpoint are skipped, so nothing is lost or doubled.
 * - The package's own acknowledgements are off (both the per-message one and its timer,
 *   which would confirm what was merely received) and a failing handler stops the stream.
 * - Transactions that produce no event (PostgreSQL 14 sends every transaction, the
 *   listener's own included) never cause a write; their position is acknowledged once
 *   nothing is in flight, and so is a keepalive's, so an idle slot does not pin WAL.
 */

export interface ListenerOptions {
  connectionString: string;
  /** Stops the listener: the group in hand is written, then the stream closes. */
  signal?: AbortSignal;
  /** Changes per written group, at most (a larger source transaction is still one group). Default 5,000. */
  maxGroupChanges?: number;
  /** How long a group may wait for more transactions. Default 50 ms. */
  maxGroupMs?: number;
  /** A transactional heartbeat message every this many ms while idle, so the slot can advance. Default 10 s; 0 = off. */
  heartbeatMs?: number;
  onLog?: (line: string) => void;
  /**
   * For crash tests: called at the two points where a crash matters most, while a source
   * transaction is being buffered and after a group committed but before the slot is
   * acknowledged. The CLI wires it to HINDSIGHT_LISTENER_FAILPOINT (see README, tests).
   */
  failpoint?: (point: 'buffering' | 'committed-unacknowledged') => void;
  /** After each group is committed and acknowledged (tests, metrics). */
  onCommitted?: (info: { checkpointLsn: string; transactions: number; events: number }) => void;
  /** Each change of what the listener is doing (health checks, metrics). */
  onState?: (state: ListenerState) => void;
}

/**
 * streaming: connected to the slot; holding: waiting for a baseline backfill to commit;
 * standby: another listener holds the slot; reconnecting: the connection was lost.
 */
export type ListenerState = 'starting' | 'holding' | 'streaming' | 'standby' | 'reconnecting' | 'stopped';

export const HEARTBEAT_PREFIX = 'hindsight.heartbeat';
export const CUT_PREFIX = 'hindsight.cut';

export async function runListener(config: ResolvedConfig, options: ListenerOptions): Promise<void> {
  const tables = storeTables(config.quotedSchema);
  const { slot, publication } = config.replication;
  const types = listenerTypes(config);
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 2 });
  pool.on('error', () => undefined);
  const sql = toSql(pool);
  const log = options.onLog ?? (() => undefined);
  const maxGroupChanges = options.maxGroupChanges ?? 5000;
  const maxGroupMs = options.maxGroupMs ?? 50;

  try {
    const byTable = await tableOids(sql, types);
    const staging = stagingPublication(config);
    const stagingOid = staging ? await stagingTableOid(sql, tables, staging) : undefined;
    let checkpoint = await readyCheckpoint(sql, tables, slot, options.signal, log, () => options.onState?.('holding'));
    if (options.signal?.aborted) return;
    const relations = new Map<number, Relation>();
    let open: SourceTransaction | undefined;
    let group: SourceTransaction[] = [];
    let groupChanges = 0;
    let groupTimer: NodeJS.Timeout | undefined;
    let work: Promise<void> = Promise.resolve();
    let failure: unknown;

    // Imported here: every importer of hindsight (an app, the CLI's short commands) loads
    // this module, and only a running listener needs the package (issue 15).
    const { LogicalReplicationService } = await import('pg-logical-replication');
    const service = new LogicalReplicationService(
      { connectionString: options.connectionString, options: TEXT_SETTINGS },
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
    );
    const fail = (error: unknown) => {
      failure ??= error;
      void service.stop().catch(() => undefined);
    };
    service.on('error', fail);

    /**
     * Groups are committed without waiting for the WAL flush (their events are visible at
     * once); the slot is acknowledged up to a group's source position only once the server
     * has flushed the group's commit, so a server crash can lose the group and its
     * checkpoint together but never the stream behind them. The checkpoint found at start
     * may itself be unflushed: it waits like a group.
     */
    const startWal = (await sql.query<{ lsn: string }>(`SELECT pg_current_wal_insert_lsn()::text AS lsn`))[0]!.lsn;
    const unflushed: Array<{ wal: bigint; source: bigint }> = [{ wal: parseLsn(startWal), source: checkpoint }];
    let acknowledged = '0/0';
    const acknowledge = async (lsn: string) => {
      acknowledged = lsn;
      await service.acknowledge(lsn);
    };
    const acknowledgeDurable = async () => {
      if (unflushed.length === 0) return;
      const flushed = parseLsn((await sql.query<{ lsn: string }>(`SELECT pg_current_wal_flush_lsn()::text AS lsn`))[0]!.lsn);
      let upTo: bigint | undefined;
      while (unflushed.length > 0 && unflushed[0]!.wal <= flushed) upTo = unflushed.shift()!.source;
      if (upTo !== undefined) await acknowledge(formatLsn(upTo));
    };
    // Data messages wait in the package's queue while keepalives are handled at once: a
    // keepalive may be acknowledged only when every message that arrived has been handled.
    let arrived = 0;
    let handled = 0;
    /** Nothing received is unwritten or unflushed; `inHand` messages are the caller's own, being handled. */
    const settled = (inHand = 0) => !open && group.length === 0 && unflushed.length === 0 && arrived === handled + inHand;

    /** Writes the group and its checkpoint in one transaction, then acknowledges what is durable. */
    const writeGroup = async () => {
      clearTimeout(groupTimer);
      groupTimer = undefined;
      const writing = group;
      group = [];
      groupChanges = 0;
      if (writing.length === 0) return;
      const last = writing[writing.length - 1]!;
      const result = await appendGroup(pool, tables, slot, { byTable, aggregates: config.aggregates }, writing, checkpoint);
      checkpoint = last.commitLsn;
      unflushed.push({ wal: result.wal, source: last.commitLsn });
      options.failpoint?.('committed-unacknowledged');
      await acknowledgeDurable();
      options.onCommitted?.({ checkpointLsn: formatLsn(last.commitLsn), transactions: writing.length, events: result.events });
    };
    const enqueue = (task: () => Promise<void>) => {
      work = work.then(() => (failure ? undefined : task())).catch(fail);
      return work;
    };

    service.on('data', async (_lsn: string, message: PgoutputMessage | { tag: 'raw'; raw: Buffer; relationOid: number; code: string }) => {
      try {
        if (failure) return;
        switch (message.tag) {
          case 'begin':
            open = { xid: message.xid, commitLsn: message.finalLsn, endLsn: 0n, commitTime: message.commitTime, changes: [], contexts: [], checkpointNow: false };
            return;
          case 'relation':
            relations.set(message.relation.oid, message.relation);
            return;
          case 'raw': {
            if (!open) throw new Error('pgoutput sent a row change outside a transaction');
            const relation = relations.get(message.relationOid);
            if (!relation) throw new Error(`pgoutput sent a change for relation ${message.relationOid} before describing it`);
            if (byTable.has(relation.oid)) open.changes.push({ raw: message.raw, relation });
            else if (relation.oid === stagingOid && message.code === 'I') open.changes.push({ staged: message.raw, relation });
            options.failpoint?.('buffering');
            return;
          }
          case 'truncate': {
            if (!open) throw new Error('pgoutput sent TRUNCATE outside a transaction');
            for (const oid of message.relationOids) {
              const relation = relations.get(oid);
              if (relation && byTable.has(oid)) open.changes.push({ truncate: true, relation });
            }
            return;
          }
          case 'commit': {
            if (!open) throw new Error('pgoutput sent COMMIT without BEGIN');
            const done = { ...open, commitLsn: message.commitLsn, endLsn: message.endLsn };
            open = undefined;
            if (done.commitLsn <= checkpoint) return; // already appended before a restart
            if (done.changes.length === 0 && !done.checkpointNow) {
              // Nothing to append; the position is acknowledged once nothing is pending.
              const at = formatLsn(done.commitLsn); // captured now: later commits may be pending when the task runs
              if (settled(1)) await enqueue(async () => void (settled(1) && (await acknowledge(at))));
              return;
            }
            group.push(done);
            groupChanges += done.changes.length;
            // A marker (a verifier's lag cut, a heartbeat) is checkpointed at once.
            if (groupChanges >= maxGroupChanges || done.checkpointNow) await enqueue(writeGroup);
            else groupTimer ??= setTimeout(() => void enqueue(writeGroup), maxGroupMs);
            return;
          }
          case 'message':
            if (open && message.transactional && message.prefix === CONTEXT_PREFIX) {
              open.contexts.push({ from: open.changes.length, metadata: contextMetadata(message.content) });
            } else if (open && message.transactional && (message.prefix === CUT_PREFIX || message.prefix === HEARTBEAT_PREFIX)) {
              // A cut is waited on by a verifier. A heartbeat is checkpointed too, so the
              // checkpoint's age says how long ago the listener last proved it streams
              // (replication status alarms past --max-checkpoint-age), busy or idle.
              open.checkpointNow = true;
            }
            return;
          default:
            return; // origin and type messages carry nothing hindsight uses
        }
      } catch (error) {
        fail(error);
      } finally {
        handled += 1;
      }
    });
    service.on('heartbeat', (lsn: string, _time: number, shouldRespond: boolean) => {
      // A keepalive's position is where the next record will start, and the package reports
      // position + 1 as flushed: acknowledge one less, or a commit written exactly there would
      // be skipped after a restart. Only when nothing received is unwritten or unflushed.
      if (settled()) {
        const upTo = formatLsn(parseLsn(lsn) - 1n);
        void enqueue(async () => {
          if (settled()) await acknowledge(upTo);
        });
      } else if (shouldRespond && acknowledged !== '0/0') {
        // Answered at once (a long write must not let wal_sender_timeout drop us) with a durable position.
        void service.acknowledge(acknowledged).catch(() => undefined);
      }
    });

    const heartbeatMs = options.heartbeatMs ?? 10_000;
    const heartbeat =
      heartbeatMs > 0
        ? setInterval(() => {
            if (settled()) void pool.query(`SELECT pg_logical_emit_message(true, $1::text, '')`, [HEARTBEAT_PREFIX]).catch(() => undefined);
          }, heartbeatMs)
        : undefined;
    // Acknowledges committed groups as the WAL writer flushes them (within wal_writer_delay).
    let flushCheckQueued = false;
    const flushWatch = setInterval(() => {
      if (unflushed.length === 0 || flushCheckQueued) return;
      flushCheckQueued = true;
      void enqueue(acknowledgeDurable).finally(() => (flushCheckQueued = false));
    }, 100);
    const onAbort = () => void enqueue(writeGroup).finally(() => service.stop().catch(() => undefined));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort(); // aborted while starting up

    log(`listening on slot ${slot} (publication ${publication}) from ${formatLsn(checkpoint)}`);
    options.onState?.('streaming');
    try {
      await service.subscribe(new TextPgoutput(staging ? `${publication},${staging}` : publication, () => (arrived += 1)) as never, slot, '0/0');
    } catch (error) {
      if (!failure && !options.signal?.aborted) throw error;
    } finally {
      clearInterval(heartbeat);
      clearInterval(flushWatch);
      clearTimeout(groupTimer);
      options.signal?.removeEventListener('abort', onAbort);
      await work.catch(() => undefined);
      await service.stop().catch(() => undefined);
    }
    if (failure) throw failure;
  } catch (error) {
    if (sqlStateOf(error) === SQLSTATE.OBJECT_IN_USE) {
      throw new DatabaseError(`the slot ${slot} is in use by another listener (SQLSTATE 55006)`, { sqlState: SQLSTATE.OBJECT_IN_USE });
    }
    throw describeDatabaseError(error, 'listen');
  } finally {
    await pool.end().catch(() => undefined);
  }
}

/** Errors after which the listener reconnects rather than stops: the server went away, or another listener holds the slot. */
function retryable(error: unknown): 'standby' | 'reconnect' | undefined {
  const state = sqlStateOf(error) ?? (error as { sqlState?: string })?.sqlState;
  if (state === SQLSTATE.OBJECT_IN_USE) return 'standby';
  if (state === SQLSTATE.ADMIN_SHUTDOWN || state === SQLSTATE.CANNOT_CONNECT_NOW) return 'reconnect';
  const message = error instanceof Error ? error.message : String(error);
  return /ECONNREFUSED|ECONNRESET|EPIPE|Connection terminated|terminating connection|the database system is (starting up|shutting down)/i.test(message) ? 'reconnect' : undefined;
}

/**
 * Runs the listener until the signal: after a lost connection or a server restart it
 * reconnects with backoff and resumes from its checkpoint; while another listener holds
 * the slot (SQLSTATE 55006) it waits as a standby and takes over when that one stops.
 * Any other error (a change it cannot turn into events) stops it, naming the source
 * transaction: nothing is skipped.
 */
export async function listen(config: ResolvedConfig, options: ListenerOptions & { maxBackoffMs?: number }): Promise<void> {
  const log = options.onLog ?? (() => undefined);
  let delay = 250;
  let standby = false;
  options.onState?.('starting');
  try {
    await supervise();
  } finally {
    options.onState?.('stopped');
  }

  async function supervise(): Promise<void> {
    for (;;) {
      if (options.signal?.aborted) return;
      try {
        await runListener(config, {
          ...options,
          onCommitted: (info) => {
            delay = 250;
            options.onCommitted?.(info);
          },
        });
        if (options.signal?.aborted) return;
        // The server ended the stream without an error (a walsender leaves this way when the
        // server shuts down): the connection is gone all the same, so say so and reconnect.
        log(`the server ended the replication stream (shutting down?); reconnecting in ${delay} ms`);
        standby = false;
        options.onState?.('reconnecting');
      } catch (error) {
        if (options.signal?.aborted) return;
        const kind = retryable(error);
        if (!kind) throw error;
        if (kind === 'standby' && !standby) log(`the slot ${config.replication.slot} is in use by another listener: waiting as a standby`);
        if (kind === 'reconnect') log(`lost the connection (${error instanceof Error ? error.message : String(error)}); reconnecting in ${delay} ms`);
        standby = kind === 'standby';
        options.onState?.(standby ? 'standby' : 'reconnecting');
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          options.signal?.removeEventListener('abort', wake);
          resolve();
        }, delay);
        options.signal?.addEventListener('abort', wake, { once: true });
      });
      delay = Math.min(delay * 2, options.maxBackoffMs ?? 5000);
    }
  }
}

import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { AggregateType, ResolvedConfig } from '../config/resolve.js';
import { describeDatabaseError } from '../db/describeError.js';
import { toSql, type Sql } from '../db/queryable.js';
import { inTransaction } from '../db/transaction.js';
import { SQLSTATE, sqlStateOf } from '../db/sqlState.js';
import { DatabaseError } from '../errors.js';
import { appendMany, type ManyRow } from '../store/appendMany.js';
import { storeTables, type StoreTables } from '../store/tables.js';
import { CONTEXT_PREFIX } from '../capture/recordContext.js';
import { decodePgoutput, formatLsn, parseLsn, pgTimestampToIso, type PgoutputMessage, type Relation } from './pgoutput.js';
import { rowEvents, type RowChange, type RowEvent } from './rowEvents.js';
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

/** One source transaction, as received. */
interface SourceTransaction {
  xid: number;
  commitLsn: bigint;
  endLsn: bigint;
  commitTime: bigint;
  /** Row changes (raw I/U/D messages) and truncations, in WAL order, each with its relation as it was then. */
  changes: Array<{ raw: Buffer; relation: Relation } | { truncate: true; relation: Relation } | { staged: Buffer; relation: Relation }>;
  /** Context messages (metadata JSON) and the index of the first change each applies to. */
  contexts: Array<{ from: number; metadata: string }>;
  /** Holds a `hindsight.cut` marker or a heartbeat: its commit is checkpointed at once, even with no events. */
  checkpointNow: boolean;
}

/** Events per append statement. */
const SLICE_EVENTS = 2000;

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

/**
 * The plugin object pg-logical-replication drives: START_REPLICATION with pgoutput in
 * text mode, and our own decoder. Row changes stay raw until their group is written.
 */
class TextPgoutput {
  readonly name = 'pgoutput';
  constructor(
    private readonly publication: string,
    /** Called as each message arrives (before it waits in the package's queue). */
    private readonly onArrival: () => void,
  ) {}

  start(client: pg.Client, slotName: string, lastLsn: string): Promise<unknown> {
    // Names are plain identifiers (checked in the config): the command takes no parameters.
    return client.query(
      `START_REPLICATION SLOT "${slotName}" LOGICAL ${lastLsn} (proto_version '1', publication_names '${this.publication}', messages 'true')`,
    );
  }

  parse(buffer: Buffer): unknown {
    this.onArrival();
    const code = buffer[0];
    if (code === 0x49 /* I */ || code === 0x55 /* U */ || code === 0x44 /* D */) {
      return { tag: 'raw', raw: Buffer.from(buffer), relationOid: buffer.readUInt32BE(1), code: String.fromCharCode(code) };
    }
    return decodePgoutput(buffer);
  }
}

/**
 * The checkpoint to resume from, once the slot exists and no baseline of it is pending
 * (until then the stream is held, never consumed: see backfill.ts).
 */
async function readyCheckpoint(sql: Sql, tables: StoreTables, slot: string, signal: AbortSignal | undefined, log: (line: string) => void, onHold: () => void): Promise<bigint> {
  let said = false;
  for (;;) {
    // One query: this slot's checkpoint (none before its first backfill commits) and its pending baselines.
    const [state] = await sql.query<{ checkpoint_lsn: string | null; pending: string }>(
      `SELECT (SELECT checkpoint_lsn::text FROM ${tables.replicationState} WHERE slot_name = $1::text) AS checkpoint_lsn,
              (SELECT count(*) FROM ${tables.baselines} WHERE slot_name = $1::text AND status = 'pending')::text AS pending`,
      [slot],
    );
    if (state!.pending === '0') {
      if (state!.checkpoint_lsn !== null) return parseLsn(state!.checkpoint_lsn);
      throw new DatabaseError(`the slot ${slot} has not been created by a backfill yet: run "hindsight replication setup", then "hindsight backfill"`);
    }
    if (!said) {
      log('a baseline backfill is in progress: holding the stream until it commits');
      onHold();
    }
    said = true;
    if (signal?.aborted) return 0n;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Appends a group of source transactions and moves the checkpoint, in one transaction. */
async function appendGroup(
  pool: pg.Pool,
  tables: StoreTables,
  slot: string,
  source: { byTable: ReadonlyMap<number, AggregateType>; aggregates: ReadonlyMap<string, AggregateType> },
  group: readonly SourceTransaction[],
  checkpoint: bigint,
): Promise<{ events: number; wal: bigint }> {
  try {
    const events = await inTransaction(pool, async (client) => {
      const sql = toSql(client);
      let events = 0;
      // Visible at once; the slot is acknowledged only after the WAL is flushed past this commit.
      await client.query('SET LOCAL synchronous_commit = off');
      const [state] = await sql.query<{ checkpoint_lsn: string; next_xid: string }>(
        `SELECT checkpoint_lsn::text AS checkpoint_lsn, pg_current_xact_id()::text AS next_xid
         FROM ${tables.replicationState} WHERE slot_name = $1::text FOR UPDATE`,
        [slot],
      );
      if (!state) throw new DatabaseError(`the replication state of slot ${slot} is gone (was it torn down?)`);
      const durable = parseLsn(state.checkpoint_lsn);
      if (durable !== checkpoint) {
        throw new DatabaseError(`the checkpoint of slot ${slot} moved from ${formatLsn(checkpoint)} to ${formatLsn(durable)} under this listener: is another listener writing?`);
      }
      const nextXid = BigInt(state.next_xid);
      // Events go out in slices of one statement each, per aggregate type, in stream order.
      let slice: { aggregate: AggregateType; rows: ManyRow[] } | undefined;
      const flush = async () => {
        if (slice) await appendMany(sql, tables, slice.aggregate, slice.rows);
        slice = undefined;
      };
      const push = async (aggregate: AggregateType, row: ManyRow) => {
        if (slice && (slice.aggregate !== aggregate || slice.rows.length >= SLICE_EVENTS)) await flush();
        slice ??= { aggregate, rows: [] };
        slice.rows.push(row);
        events += 1;
      };
      const stagedIds: string[] = [];
      for (const transaction of group) {
        const sourceXid = widenXid(transaction.xid, nextXid).toString();
        const occurredAt = pgTimestampToIso(transaction.commitTime);
        const commitLsn = formatLsn(transaction.commitLsn);
        // Staged app events (capture "both") stand for their aggregates' row changes in this transaction.
        const staged = new Map<number, StagedEvent>();
        const covered = new Set<string>();
        for (const [index, change] of transaction.changes.entries()) {
          if (!('staged' in change)) continue;
          const event = stagedEvent(change.relation, decodePgoutput(change.staged), source.aggregates);
          staged.set(index, event);
          covered.add(`${event.aggregate.type}\u0000${event.aggregateId}`);
        }
        if (staged.size > 0) {
          // A staged id already appended (staged again after its row was deleted) is the same event: not appended twice.
          const ids = [...staged.values()].map((e) => e.eventId);
          const present = await sql.query<{ event_id: string }>(`SELECT event_id::text FROM ${tables.events} WHERE event_id = ANY($1::uuid[])`, [ids]);
          for (const { event_id: id } of present) {
            for (const [index, event] of staged) if (event.eventId === id) staged.set(index, { ...event, alreadyAppended: true });
          }
        }
        let ordinal = 0;
        for (const [index, change] of transaction.changes.entries()) {
          const event = staged.get(index);
          if (event?.alreadyAppended) {
            stagedIds.push(event.eventId);
            continue;
          }
          if (event) {
            await push(event.aggregate, {
              key: event.aggregate.key.length === 1 ? [event.aggregateId] : (JSON.parse(event.aggregateId) as string[]),
              eventId: event.eventId,
              type: event.type,
              schemaVersion: event.schemaVersion,
              payload: event.payload,
              metadata: event.metadata,
              occurredAt: event.occurredAt,
              source: 'app',
              sourceCommitLsn: commitLsn,
              sourceOrdinal: ordinal++,
              sourceXid: event.transactionId,
            });
            stagedIds.push(event.eventId);
            continue;
          }
          if ('staged' in change) continue;
          const metadata = contextAt(transaction, index);
          const aggregate = source.byTable.get(change.relation.oid)!;
          if ('truncate' in change) await flush(); // it reads the heads the slice would move
          const changeEvents = 'truncate' in change ? await truncateEvents(sql, tables, aggregate) : rowEvents(aggregate, change.relation, toRowChange(decodePgoutput(change.raw)));
          for (const event of changeEvents) {
            if (aggregate.capture === 'both' && covered.has(`${aggregate.type}\u0000${canonicalFromText(event.key)}`)) continue; // the app's events say it
            await push(aggregate, {
              key: event.key,
              eventId: randomUUID(),
              type: event.type,
              schemaVersion: aggregate.events.get(event.type)?.version ?? 1,
              payload: JSON.stringify(event.payload),
              metadata: event.metadata ? JSON.stringify({ ...(JSON.parse(metadata) as object), ...event.metadata }) : metadata,
              occurredAt,
              source: 'replication',
              sourceCommitLsn: commitLsn,
              sourceOrdinal: ordinal++,
              sourceXid,
            });
          }
        }
      }
      await flush();
      if (stagedIds.length > 0) await sql.query(`DELETE FROM ${tables.stagedEvents} WHERE event_id = ANY($1::uuid[])`, [stagedIds]);
      await sql.query(`UPDATE ${tables.replicationState} SET checkpoint_lsn = $2::pg_lsn, updated_at = now() WHERE slot_name = $1::text`, [
        slot,
        formatLsn(group[group.length - 1]!.commitLsn),
      ]);
      return events;
    });
    // At or past this group's commit record (WAL positions are cluster-wide): once flushed up to here, the group is durable.
    const wal = (await toSql(pool).query<{ lsn: string }>(`SELECT pg_current_wal_insert_lsn()::text AS lsn`))[0]!.lsn;
    return { events, wal: parseLsn(wal) };
  } catch (error) {
    const first = group[0]!;
    throw describeDatabaseError(error, `append the events of source transaction ${first.xid} (commit ${formatLsn(first.commitLsn)})`);
  }
}

/** A context message's metadata; anyone can emit one, so a malformed one is noted, never fatal. */
function contextMetadata(content: Buffer): string {
  const text = content.toString('utf8');
  try {
    const parsed: unknown = JSON.parse(text);
    // Kept as sent (re-serialising would round big numbers); jsonb refuses \u0000.
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && !text.includes('\\u0000')) return text;
  } catch {
    // falls through
  }
  return JSON.stringify({ context_error: `a ${CONTEXT_PREFIX} message that is not a JSON object was ignored` });
}

/**
 * The context of a row change: the latest context message before it in its transaction;
 * for changes before the first message, the first one's; none, an empty object.
 */
function contextAt(transaction: SourceTransaction, index: number): string {
  let found = transaction.contexts[0]?.metadata ?? '{}';
  for (const context of transaction.contexts) {
    if (context.from > index) break;
    found = context.metadata;
  }
  return found;
}

interface StagedEvent {
  aggregate: AggregateType;
  alreadyAppended?: boolean;
  aggregateId: string;
  eventId: string;
  type: string;
  schemaVersion: number;
  payload: string;
  metadata: string;
  occurredAt: string;
  transactionId: string;
}

/** A staging-table INSERT as the event it holds, appended unchanged (no re-validation). */
function stagedEvent(relation: Relation, message: PgoutputMessage, aggregates: ReadonlyMap<string, AggregateType>): StagedEvent {
  if (message.tag !== 'insert') throw new Error(`expected an INSERT into the staging table, got ${message.tag}`);
  const value = (name: string): string => {
    const index = relation.columns.findIndex((c) => c.name === name);
    const found = index === -1 ? undefined : message.after[index];
    if (typeof found !== 'string') throw new Error(`a staged event has no ${name}`);
    return found;
  };
  const type = value('aggregate_type');
  const aggregate = aggregates.get(type);
  if (!aggregate) throw new Error(`a staged event (${value('event_id')}) is for aggregate type ${type}, which the config no longer declares`);
  return {
    aggregate,
    aggregateId: value('aggregate_id'),
    eventId: value('event_id'),
    type: value('event_type'),
    schemaVersion: Number(value('schema_version')),
    payload: value('payload'),
    metadata: value('metadata'),
    occurredAt: value('occurred_at'),
    transactionId: value('transaction_id'),
  };
}

/**
 * The canonical id of a row change from its key columns' text: the text itself for one
 * column; for several, jsonb's text form of the array of texts (as canonicalKeySql builds it).
 */
function canonicalFromText(key: readonly string[]): string {
  return key.length === 1 ? key[0]! : `[${key.map((part) => JSON.stringify(part)).join(', ')}]`;
}

/** The staging table's oid, once its insert-only publication is in place (replication setup makes it). */
async function stagingTableOid(sql: Sql, tables: StoreTables, publication: string): Promise<number> {
  const [row] = await sql.query<{ insert_only: boolean; oid: string }>(
    `SELECT p.pubinsert AND NOT p.pubupdate AND NOT p.pubdelete AS insert_only, to_regclass($2::text)::oid::text AS oid
     FROM pg_publication p WHERE p.pubname = $1::text`,
    [publication, tables.stagedEvents],
  );
  if (!row?.insert_only) {
    throw new DatabaseError(`capture "both" needs the insert-only publication ${publication} of the staging table: run "hindsight replication setup"`);
  }
  return Number(row.oid);
}

/**
 * TRUNCATE of a legacy table: a `<table>.deleted` (reason "truncate") for every aggregate
 * of the type whose last event is not already a deletion.
 */
async function truncateEvents(sql: Sql, tables: StoreTables, aggregate: AggregateType): Promise<RowEvent[]> {
  const deleted = `${aggregate.tableLabel}.deleted`;
  const rows = await sql.query<{ aggregate_id: string }>(
    `SELECT h.aggregate_id FROM ${tables.heads} h
     JOIN ${tables.events} e ON e.aggregate_type = h.aggregate_type AND e.aggregate_id = h.aggregate_id AND e.sequence = h.version
     WHERE h.aggregate_type = $1::text AND e.event_type <> $2::text
     ORDER BY h.aggregate_id`,
    [aggregate.type, deleted],
  );
  // The canonical id is the key's text (one column) or a JSON array of the keys' texts.
  return rows.map((r) => ({
    key: aggregate.key.length === 1 ? [r.aggregate_id] : (JSON.parse(r.aggregate_id) as string[]),
    type: deleted,
    payload: { reason: 'truncate' },
  }));
}

function toRowChange(message: PgoutputMessage): RowChange {
  if (message.tag === 'insert') return { kind: 'insert', after: message.after };
  if (message.tag === 'update') return { kind: 'update', before: message.before, beforeIsKeyOnly: message.beforeIsKeyOnly, after: message.after };
  if (message.tag === 'delete') return { kind: 'delete', before: message.before, beforeIsKeyOnly: message.beforeIsKeyOnly };
  throw new Error(`expected a row change, got a ${message.tag} message`);
}

/**
 * A BEGIN message's 32-bit xid as the full transaction id, widened against a later full
 * xid (the listener's own): the latest full id with those low 32 bits. Never
 * `(epoch << 32) | xid`, which is wrong for a transaction from before the last wraparound.
 */
export function widenXid(xid: number, next: bigint): bigint {
  const low = next & 0xffffffffn;
  const back = (low - BigInt(xid) + 0x100000000n) % 0x100000000n;
  return next - back;
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
        if (standby) standby = false;
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

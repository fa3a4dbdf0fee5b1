import pg from 'pg';
import type { AggregateType } from '../config/resolve.js';
import { describeDatabaseError } from '../db/describeError.js';
import { toSql, type Sql } from '../db/queryable.js';
import { inTransaction } from '../db/transaction.js';
import { DatabaseError } from '../errors.js';
import { appendMany, type TypedRow } from '../store/appendMany.js';
import { newEventId } from '../store/eventId.js';
import type { StoreTables } from '../store/tables.js';
import { decodePgoutput, formatLsn, parseLsn, pgTimestampToIso, type PgoutputMessage, type Relation } from './pgoutput.js';
import { rowEvents, type RowChange, type RowEvent } from './rowEvents.js';
import { contextAt, type SourceTransaction } from './sourceTransaction.js';

/**
 * The listener's write: a group of source transactions turned into events (row changes
 * into generic or mapped events, staged app events as they were staged) and appended in
 * stream order, with the slot's checkpoint moved in the same transaction.
 */

/** Events per append statement. */
const SLICE_EVENTS = 2000;

/** Appends a group of source transactions and moves the checkpoint, in one transaction. */
export async function appendGroup(
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
      // Events go out in slices of one statement each, in stream order, whatever their types:
      // a source transaction touching three tables is one statement, not three.
      let slice: TypedRow[] = [];
      const flush = async () => {
        if (slice.length > 0) await appendMany(sql, tables, slice);
        slice = [];
      };
      const push = async (row: TypedRow) => {
        if (slice.length >= SLICE_EVENTS) await flush();
        slice.push(row);
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
            await push({
              aggregate: event.aggregate,
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
            await push({
              aggregate,
              key: event.key,
              eventId: newEventId(),
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


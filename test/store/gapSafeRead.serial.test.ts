import pg from 'pg';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { Hindsight } from '../../src/hindsight.js';
import { START_OF_LOG, type GlobalCheckpoint } from '../../src/store/readAll.js';
import type { StoredEvent } from '../../src/types.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore } from '../helpers/fixtures.js';
import { backendPid, waitUntilBlockedBy } from '../helpers/locks.js';

// Serial: these tests hold write transactions open, and the xid horizon they depend on is
// cluster-wide, so they must not share the server with other test files.

const db = useTestDatabase(import.meta.url);
let hs: Hindsight;
const open: pg.PoolClient[] = [];

beforeAll(async () => {
  hs = await prepareStore(db);
});
afterEach(async () => {
  for (const client of open.splice(0)) {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
});

async function begin(): Promise<pg.PoolClient> {
  const client = await db.pool.connect();
  open.push(client);
  await client.query('BEGIN');
  return client;
}

const credit = (client: pg.ClientBase | pg.Pool, id: number, amount = 1) =>
  hs.append(client, { aggregateType: 'account', aggregateId: id, events: [{ type: 'account.credited', payload: { amount } }] });

/** Reads everything visible after `after`, in pages, like a subscriber's poll. */
async function drain(after: GlobalCheckpoint): Promise<{ events: StoredEvent[]; checkpoint: GlobalCheckpoint }> {
  const events: StoredEvent[] = [];
  let checkpoint = after;
  for (;;) {
    const page = await hs.readAll(db.pool, { after: checkpoint, limit: 2 });
    events.push(...page.events);
    checkpoint = page.checkpoint;
    if (page.events.length === 0) return { events, checkpoint };
  }
}

describe('the gap-safe global read', () => {
  test('a transaction with a lower position that commits later is delivered exactly once, after the reader passed the higher one', async () => {
    const { checkpoint: start } = await drain(START_OF_LOG);
    const high = await begin();
    await high.query('SELECT pg_current_xact_id()'); // takes its xid first
    const low = await begin();
    const lowEvent = await credit(low, 1, 11); // lower position, later xid, still open
    await credit(high, 2, 22); // higher position
    await high.query('COMMIT');

    const first = await drain(start);
    expect(first.events.map((e) => e.payload)).toEqual([{ amount: 22 }]);
    const passedPosition = first.events[0]!.globalPosition;
    await low.query('COMMIT');
    // A reader that remembers only "the last position it saw" has now skipped it for good:
    const naive = await db.pool.query(`SELECT event_id::text FROM hindsight.events WHERE global_position > $1`, [passedPosition]);
    expect(naive.rows.map((r) => r.event_id)).not.toContain(lowEvent.eventIds[0]);

    const second = await drain(first.checkpoint);
    expect(second.events.map((e) => e.eventId)).toEqual(lowEvent.eventIds);
    expect((await drain(second.checkpoint)).events).toEqual([]);
  });

  test('nothing after an open transaction is delivered until it ends, then everything in (xid, position) order', async () => {
    const { checkpoint: start } = await drain(START_OF_LOG);
    const early = await begin();
    await credit(early, 3, 33);
    await credit(db.pool, 4, 44); // commits at once, but its xid is above the open one
    expect((await drain(start)).events).toEqual([]);
    await early.query('COMMIT');
    const after = await drain(start);
    expect(after.events.map((e) => e.payload)).toEqual([{ amount: 33 }, { amount: 44 }]);
  });

  test('the transfer case: sequence n+1 arrives before n, and a subscriber applying by sequence sees each exactly once, in order', async () => {
    const { checkpoint: start } = await drain(START_OF_LOG);
    await credit(db.pool, 10, 1); // account 10 at version 1
    const version0 = await hs.version(db.pool, 'account', 10);
    const t1 = await begin();
    await credit(t1, 20, 2); // T1 takes its xid writing account 20
    const t2 = await begin();
    const atN = await credit(t2, 10, 3); // T2 holds account 10's head at n
    const [t1Pid, t2Pid] = [await backendPid(t1), await backendPid(t2)];
    const waiting = credit(t1, 10, 4); // T1 waits on account 10's head lock
    expect(await waitUntilBlockedBy(db.pool, t2Pid, "T1's append of account 10")).toEqual([t1Pid]);
    await t2.query('COMMIT');
    const atN1 = await waiting;
    await t1.query('COMMIT');
    expect(atN.sequences).toEqual([version0 + 1]);
    expect(atN1.sequences).toEqual([version0 + 2]);

    // the global order really delivers n+1 before n
    const delivered = (await drain(start)).events.filter((e) => e.aggregateId === '10');
    expect(delivered.map((e) => e.sequence)).toEqual([1, version0 + 2, version0 + 1]);

    // the per-aggregate contract: on s while at r < s-1, fold r+1..s from the store; skip s <= r
    const applied = new Map<string, number[]>();
    const at = (id: string) => applied.get(id)?.at(-1) ?? 0;
    const apply = (e: StoredEvent) => applied.set(e.aggregateId, [...(applied.get(e.aggregateId) ?? []), e.sequence]);
    for (const event of (await drain(start)).events) {
      const r = at(event.aggregateId);
      if (event.sequence <= r) continue;
      if (event.sequence > r + 1) {
        const missing = await hs.readAggregate(db.pool, 'account', event.aggregateId, { fromSequence: r + 1, toSequence: event.sequence });
        missing.forEach(apply);
      } else {
        apply(event);
      }
    }
    expect(applied.get('10')).toEqual([1, 2, 3]);
    expect(applied.get('20')).toEqual([1]);
  });
});

describe('appends to different aggregates never wait on each other', () => {
  test('an uncommitted append on A does not wait for it to end before an append on B commits, while a second writer of A waits', async () => {
    await credit(db.pool, 30);
    await credit(db.pool, 31);
    const holder = await begin();
    await credit(holder, 30); // A's head is locked until holder ends

    // B, on a session with a lock timeout: were B to wait for the holder (open until after
    // B), it would fail with a lock timeout instead of committing.
    const other = await begin();
    await other.query("SET LOCAL lock_timeout = '5s'");
    await credit(other, 31); // B
    await other.query('COMMIT');

    // the same aggregate does wait: the head row lock orders its writers
    let aDone = false;
    const secondWriterOfA = credit(db.pool, 30).then((r) => {
      aDone = true;
      return r;
    });
    await waitUntilBlockedBy(db.pool, await backendPid(holder), 'the second writer of A');
    expect(aDone).toBe(false);
    await holder.query('COMMIT');
    expect((await secondWriterOfA).sequences).toEqual([3]);
  });
});

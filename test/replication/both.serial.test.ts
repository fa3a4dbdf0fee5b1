import type pg from 'pg';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { defineEvent } from '../../src/events/defineEvent.js';
import { createHindsight, type Hindsight } from '../../src/hindsight.js';
import { backfill } from '../../src/replication/backfill.js';
import { runListener } from '../../src/replication/listener.js';
import { replicationStatus, setupReplication } from '../../src/replication/setup.js';
import { toSql } from '../../src/db/queryable.js';
import { migrate } from '../../src/store/migrate.js';
import { useTestDatabase } from '../helpers/database.js';
import { teardownEventually } from '../helpers/replication.js';

// Serial: a replication slot. Capture "both": the wrappers stage their events in the app's
// transaction and the listener is the only writer of the stream.

const db = useTestDatabase(import.meta.url);
let hs: Hindsight;

interface Row {
  aggregate_id: string;
  sequence: number;
  event_id: string;
  event_type: string;
  source: string;
  source_xid: string | null;
  metadata: Record<string, unknown>;
}

async function events(): Promise<Row[]> {
  const { rows } = await db.pool.query(
    `SELECT aggregate_id, sequence::int, event_id::text, event_type, source, source_xid::text, metadata
     FROM hindsight.events WHERE source <> 'import' ORDER BY global_position`,
  );
  return rows;
}

function startListener(): () => Promise<void> {
  const controller = new AbortController();
  const done = runListener(hs.config, { connectionString: db.url, signal: controller.signal, heartbeatMs: 200 });
  return async () => {
    controller.abort();
    await done;
  };
}

async function credit(client: pg.ClientBase | unknown, id: number, amount: number): Promise<void> {
  await (client as pg.ClientBase).query('UPDATE accounts SET balance = balance + $2 WHERE id = $1', [id, amount]);
}

beforeAll(async () => {
  await migrate({ connectionString: db.url });
  await db.pool.query(`CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL)`);
  await db.pool.query(`INSERT INTO accounts VALUES (1, 100), (2, 200)`);
  hs = createHindsight({
    replication: { slot: `hs_both_${Math.random().toString(36).slice(2, 8)}`, publication: 'hs_both_legacy' },
    aggregates: [
      {
        type: 'account',
        table: 'accounts',
        key: { column: 'id', type: 'bigint' },
        capture: 'both',
        events: [defineEvent('account.credited', z.object({ amount: z.number().int() }))],
      },
    ],
  });
});

afterAll(async () => {
  await teardownEventually(db.pool, hs.config);
});

describe('capture "both"', () => {
  test('before the slot and baseline exist, staging is refused and nothing is written', async () => {
    await expect(hs.append(db.pool, { aggregateType: 'account', aggregateId: 1, events: [{ type: 'account.credited', payload: { amount: 1 } }] })).rejects.toThrow(
      /capture "both" but its listener slot and baseline do not exist yet: run "hindsight replication setup" and "hindsight backfill"/,
    );
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM hindsight.staged_events`);
    expect(rows[0].n).toBe(0);
    await setupReplication(hs.config, { connectionString: db.url });
    await backfill(hs.config, { connectionString: db.url });
  });

  test('a wrapped write yields exactly its staged event, not a generic one; an uncovered row in the same transaction yields its generic event; waitForAppended gives read-your-writes', async () => {
    const stop = startListener();
    try {
      let xid = '';
      const result = await hs.transaction(db.pool, async (tx) => {
        xid = (await (tx.db as pg.ClientBase).query(`SELECT pg_current_xact_id()::text AS xid`)).rows[0].xid;
        await credit(tx.db, 1, 5);
        const staged = await tx.record('account', 1, 'account.credited', { amount: 5 }, { metadata: { actor: 'alice' } });
        await credit(tx.db, 2, 7); // no event for this one: the listener makes the generic one
        return staged;
      });
      expect(result).toMatchObject({ staged: true, aggregateId: '1', sequences: [], version: undefined });
      await hs.waitForAppended(db.pool, result.eventIds, { timeoutMs: 10_000 });
      const found = await events();
      expect(found.map((e) => [e.aggregate_id, e.sequence, e.event_type, e.source])).toEqual([
        ['1', 2, 'account.credited', 'app'],
        ['2', 2, 'accounts.updated', 'replication'],
      ]);
      expect(found[0]).toMatchObject({ event_id: result.eventIds[0], source_xid: xid, metadata: { actor: 'alice' } });
      expect(found[1]!.source_xid).toBe(xid);
      const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM hindsight.staged_events`);
      expect(rows[0].n).toBe(0);
      // Staging an id that is already in the log (a retry after an unclear commit) is refused.
      await expect(
        hs.append(db.pool, { aggregateType: 'account', aggregateId: 1, events: [{ type: 'account.credited', payload: { amount: 5 }, eventId: result.eventIds[0] }] }),
      ).rejects.toThrow(`event ${result.eventIds[0]} is already in the event log`);
    } finally {
      await stop();
    }
  });

  test('a rolled-back write and a write rolled back to a savepoint stage nothing and yield nothing', async () => {
    const before = (await events()).length;
    const stop = startListener();
    try {
      await expect(
        hs.transaction(db.pool, async (tx) => {
          await credit(tx.db, 1, 1);
          await tx.record('account', 1, 'account.credited', { amount: 1 });
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');
      const client = await db.pool.connect();
      let kept: string[] = [];
      try {
        await client.query('BEGIN');
        await client.query('SAVEPOINT attempt');
        await credit(client, 1, 3);
        await hs.append(client, { aggregateType: 'account', aggregateId: 1, events: [{ type: 'account.credited', payload: { amount: 3 } }] });
        await client.query('ROLLBACK TO SAVEPOINT attempt');
        await credit(client, 2, 4);
        kept = (await hs.append(client, { aggregateType: 'account', aggregateId: 2, events: [{ type: 'account.credited', payload: { amount: 4 } }] })).eventIds;
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      await hs.waitForAppended(db.pool, kept, { timeoutMs: 10_000 });
      const added = (await events()).slice(before);
      expect(added.map((e) => [e.aggregate_id, e.event_type, e.event_id])).toEqual([['2', 'account.credited', kept[0]]]);
    } finally {
      await stop();
    }
  });

  test('per aggregate, sequence order is commit order: a legacy write made while the listener is stopped comes before a later wrapped write', async () => {
    await credit(db.pool, 1, 11); // legacy path, not wrapped
    const staged = await hs.transaction(db.pool, async (tx) => {
      await credit(tx.db, 1, 12);
      return tx.record('account', 1, 'account.credited', { amount: 12 });
    });
    await expect(hs.waitForAppended(db.pool, staged.eventIds, { timeoutMs: 300 })).rejects.toThrow(/1 of 1 staged events were not appended within 300 ms: is the listener running/);
    const waiting = await replicationStatus(toSql(db.pool), hs.config);
    expect(waiting.staged.waiting).toBe(1);
    expect(waiting.staged.oldestSeconds).toBeGreaterThanOrEqual(0.3);
    const stop = startListener();
    try {
      await hs.waitForAppended(db.pool, staged.eventIds, { timeoutMs: 10_000 });
    } finally {
      await stop();
    }
    const last = (await events()).filter((e) => e.aggregate_id === '1').slice(-2);
    expect(last.map((e) => [e.event_type, e.source])).toEqual([
      ['accounts.updated', 'replication'],
      ['account.credited', 'app'],
    ]);
    expect(last[1]!.sequence).toBe(last[0]!.sequence + 1);
  });

  test('an expected version other than "any" is refused, library and CLI alike', async () => {
    await expect(
      hs.append(db.pool, { aggregateType: 'account', aggregateId: 1, expectedVersion: 3, events: [{ type: 'account.credited', payload: { amount: 1 } }] }),
    ).rejects.toThrow(/capture "both": its events are appended by the listener in commit order, so the expected version must be "any" \(got 3\)/);
  });
});

import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig, type ResolvedConfig } from '../../src/config/resolve.js';
import { backfill } from '../../src/replication/backfill.js';
import { runListener } from '../../src/replication/listener.js';
import { replicationStatus, setupReplication } from '../../src/replication/setup.js';
import { statusProblems } from '../../src/replication/statusProblems.js';
import { migrate } from '../../src/store/migrate.js';
import { toSql } from '../../src/db/queryable.js';
import { createHindsight } from '../../src/hindsight.js';
import { main } from '../../src/cli/main.js';
import { useTestDatabase } from '../helpers/database.js';
import { scratchDir } from '../helpers/cli.js';
import { teardownEventually } from '../helpers/replication.js';

// Serial: replication slots are cluster-wide, and creating one waits for every running
// write transaction in the cluster.

const db = useTestDatabase(import.meta.url);
const slot = `hs_test_${Math.random().toString(36).slice(2, 8)}`;
let config: ResolvedConfig;

interface StoredEvent {
  aggregate_id: string;
  sequence: number;
  event_type: string;
  payload: Record<string, unknown>;
  source: string;
  source_commit_lsn: string | null;
  source_ordinal: number | null;
  source_xid: string | null;
  occurred_at: string;
}

async function events(): Promise<StoredEvent[]> {
  const { rows } = await db.pool.query(
    `SELECT aggregate_id, sequence::int, event_type, payload, source, source_commit_lsn::text, source_ordinal, source_xid::text,
            to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS occurred_at
     FROM hindsight.events WHERE aggregate_type = 'account' ORDER BY global_position`,
  );
  return rows;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Runs the listener in this process until the returned stop() is called. */
function startListener(): { stop: () => Promise<void>; done: Promise<void> } {
  const controller = new AbortController();
  const done = runListener(config, { connectionString: db.url, signal: controller.signal, heartbeatMs: 200 });
  return {
    done,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}

beforeAll(async () => {
  await db.pool.query(`CREATE TABLE accounts (id bigint PRIMARY KEY, balance numeric(20,6) NOT NULL, opened_at timestamptz, data jsonb, note text)`);
  await db.pool.query(`INSERT INTO accounts VALUES (1, 10, '2026-02-03 04:05:06.123456+00', '{"big": 12345678901234567890}', 'first'), (2, 20, NULL, NULL, NULL)`);
  config = resolveConfig({
    replication: { slot, publication: 'hs_test_legacy' },
    aggregates: [{ type: 'account', table: 'accounts', key: { column: 'id', type: 'bigint' }, capture: 'listener' }],
  });
  await migrate({ connectionString: db.url });
});

afterAll(async () => {
  await teardownEventually(db.pool, config);
  await db.pool.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, [slot]).catch(() => undefined);
});

describe('listener', () => {
  test('setup, backfill, then legacy inserts, updates and deletes become generic events at database precision, in commit order', async () => {
    const setup = await setupReplication(config, { connectionString: db.url });
    expect(setup.tables).toEqual(['accounts']);
    expect(setup.madeFull).toEqual(['accounts']);

    const baseline = await backfill(config, { connectionString: db.url });
    expect(baseline.imported).toEqual([{ aggregateType: 'account', rows: 2 }]);
    const imported = await events();
    expect(imported.map((e) => [e.aggregate_id, e.sequence, e.event_type, e.source])).toEqual([
      ['1', 1, 'accounts.imported', 'import'],
      ['2', 1, 'accounts.imported', 'import'],
    ]);
    expect(imported[0]!.payload).toEqual({
      after: { id: '1', balance: '10.000000', opened_at: '2026-02-03 04:05:06.123456+00', data: '{"big": 12345678901234567890}', note: 'first' },
    });

    const listener = startListener();
    try {
      const writer = await db.pool.connect();
      let xid: string;
      try {
        await writer.query('BEGIN');
        xid = (await writer.query(`SELECT pg_current_xact_id()::text AS xid`)).rows[0].xid;
        await writer.query(`UPDATE accounts SET balance = balance + 0.000001 WHERE id = 1`);
        await writer.query(`INSERT INTO accounts VALUES (3, 12345678901234.123456, '1999-12-31 23:59:59.999999+00', '{"n": 1.10}', E'tab\\there')`);
        await writer.query(`UPDATE accounts SET note = 'unchanged balance' WHERE id = 1`);
        await writer.query('COMMIT');
      } finally {
        writer.release();
      }
      await db.pool.query(`DELETE FROM accounts WHERE id = 2`);
      await db.pool.query(`UPDATE accounts SET balance = balance WHERE id = 3`); // changes nothing: no event

      const all = await waitFor('the legacy changes', async () => {
        const found = await events();
        return found.some((e) => e.event_type === 'accounts.deleted') ? found : undefined;
      });
      const streamed = all.filter((e) => e.source === 'replication');
      expect(streamed.map((e) => [e.aggregate_id, e.sequence, e.event_type, e.source_ordinal])).toEqual([
        ['1', 2, 'accounts.updated', 0],
        ['3', 1, 'accounts.inserted', 1],
        ['1', 3, 'accounts.updated', 2],
        ['2', 2, 'accounts.deleted', 0],
      ]);
      expect(streamed[0]!.payload).toEqual({ before: { balance: '10.000000' }, after: { balance: '10.000001' } });
      expect(streamed[1]!.payload).toEqual({
        after: { id: '3', balance: '12345678901234.123456', opened_at: '1999-12-31 23:59:59.999999+00', data: '{"n": 1.10}', note: 'tab\there' },
      });
      expect(streamed[2]!.payload).toEqual({ before: { note: 'first' }, after: { note: 'unchanged balance' } });
      expect(streamed[3]!.payload).toMatchObject({ before: { id: '2', balance: '20.000000' } });
      // One source transaction: one commit LSN, ordinals in WAL order, and the writer's own xid.
      expect(new Set(streamed.slice(0, 3).map((e) => e.source_commit_lsn)).size).toBe(1);
      expect(streamed.slice(0, 3).map((e) => e.source_xid)).toEqual([xid!, xid!, xid!]);
      expect(streamed[3]!.source_commit_lsn).not.toBe(streamed[0]!.source_commit_lsn);
    } finally {
      await listener.stop();
    }
    const status = await replicationStatus(toSql(db.pool), config);
    expect(status).toMatchObject({ health: 'ok', active: false, pendingBaselines: [] });
  });

  test('a stopped listener resumes from its checkpoint: changes made while it was down arrive once', async () => {
    const before = (await events()).length;
    for (let i = 0; i < 20; i++) await db.pool.query(`UPDATE accounts SET balance = balance + 1 WHERE id = 1`);
    const first = startListener();
    await waitFor('the 20 updates', async () => ((await events()).length >= before + 20 ? true : undefined));
    await first.stop();
    const second = startListener();
    // Whatever it streams again comes before a cut marker written now: once its checkpoint has
    // passed the marker, a duplicate would be in the store.
    const [{ lsn }] = (await db.pool.query(`SELECT pg_logical_emit_message(true, 'hindsight.cut', 'resumed')::text AS lsn`)).rows;
    await waitFor('the second listener to pass the cut', async () => {
      const { rows } = await db.pool.query(`SELECT checkpoint_lsn >= $1::pg_lsn AS passed FROM hindsight.replication_state`, [lsn]);
      return rows[0].passed ? true : undefined;
    });
    await second.stop();
    const after = await events();
    expect(after.length).toBe(before + 20);
    const sequences = after.filter((e) => e.aggregate_id === '1').map((e) => e.sequence);
    expect(sequences).toEqual(sequences.map((_, i) => i + 1));
  });

  test('context: each row change takes the latest context message before it, earlier changes the first one; a malformed one is noted, not fatal', async () => {
    const hs = createHindsight(config);
    const before = (await events()).length;
    const listener = startListener();
    try {
      const client = await db.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(`UPDATE accounts SET balance = balance + 1 WHERE id = 1`);
        await hs.recordContext(client, { actor: 'alice', reason: 'first', requestId: 'r-1' });
        await client.query(`UPDATE accounts SET balance = balance + 1 WHERE id = 3`);
        await hs.withContext({ correlationId: 'c-9' }, () => hs.recordContext(client, { actor: 'bob' }));
        await client.query(`UPDATE accounts SET balance = balance + 2 WHERE id = 1`);
        await client.query('COMMIT');
        await client.query('BEGIN');
        await client.query(`SELECT pg_logical_emit_message(true, 'hindsight.context', 'not json')`);
        await client.query(`UPDATE accounts SET balance = balance + 3 WHERE id = 3`);
        await client.query('COMMIT');
        await client.query('BEGIN');
        await hs.recordContext(client, { actor: 'mallory' });
        await client.query(`UPDATE accounts SET balance = balance + 4 WHERE id = 3`);
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
      await waitFor('four events', async () => ((await events()).length >= before + 4 ? true : undefined));
    } finally {
      await listener.stop();
    }
    const { rows } = await db.pool.query(
      `SELECT aggregate_id, metadata FROM hindsight.events WHERE aggregate_type = 'account' ORDER BY global_position DESC LIMIT 5`,
    );
    expect(rows.reverse().slice(1)).toEqual([
      { aggregate_id: '1', metadata: { actor: 'alice', reason: 'first', request_id: 'r-1' } },
      { aggregate_id: '3', metadata: { actor: 'alice', reason: 'first', request_id: 'r-1' } },
      { aggregate_id: '1', metadata: { actor: 'bob', correlation_id: 'c-9' } },
      { aggregate_id: '3', metadata: { context_error: 'a hindsight.context message that is not a JSON object was ignored' } },
    ]);
  });

  test('a cut marker is checkpointed with no events; heartbeats let an idle slot advance while other tables churn', async () => {
    const listener = startListener();
    try {
      const [{ lsn }] = (await db.pool.query(`SELECT pg_logical_emit_message(true, 'hindsight.cut', 'run-1')::text AS lsn`)).rows;
      await waitFor('the checkpoint to pass the cut', async () => {
        const { rows } = await db.pool.query(`SELECT checkpoint_lsn >= $1::pg_lsn AS passed FROM hindsight.replication_state`, [lsn]);
        return rows[0].passed ? true : undefined;
      });
      await db.pool.query(`CREATE TABLE IF NOT EXISTS churn (n int)`);
      const [{ start }] = (await db.pool.query(`SELECT pg_current_wal_lsn()::text AS start`)).rows;
      await waitFor('the slot to advance past unrelated WAL', async () => {
        await db.pool.query(`INSERT INTO churn SELECT generate_series(1, 100)`);
        const { rows } = await db.pool.query(`SELECT confirmed_flush_lsn > $2::pg_lsn AS moved FROM pg_replication_slots WHERE slot_name = $1`, [slot, start]);
        return rows[0].moved ? true : undefined;
      });
    } finally {
      await listener.stop();
    }
  });

  test('regression: replication status said "fine" when nothing listened: a heartbeat keeps a running listener\'s checkpoint fresh, a stopped one with WAL waiting is a problem, and so is an old checkpoint', async () => {
    const written = async () => (await db.pool.query(`SELECT updated_at FROM hindsight.replication_state WHERE slot_name = $1`, [slot])).rows[0].updated_at as Date;
    const listener = startListener();
    try {
      const before = await written();
      // No captured change is written: only the listener's heartbeats (every 200 ms here) can move it.
      await waitFor('a heartbeat to write the checkpoint', async () => ((await written()) > before ? true : undefined));
      const live = await waitFor('the slot to be active', async () => {
        const status = await replicationStatus(toSql(db.pool), config);
        return status.active ? status : undefined;
      });
      expect(statusProblems(live)).toEqual([]);
    } finally {
      await listener.stop();
    }
    await db.pool.query(`CREATE TABLE IF NOT EXISTS churn (n int)`);
    await db.pool.query(`INSERT INTO churn SELECT generate_series(1, 100)`);
    const stopped = await waitFor('the slot to be released', async () => {
      const status = await replicationStatus(toSql(db.pool), config);
      return !status.active && (status.lagBytes ?? 0) > 0 ? status : undefined;
    });
    expect(statusProblems(stopped)).toEqual([expect.stringMatching(/^slot inactive, no listener connected, while \d+ bytes of WAL wait to be consumed: start hindsight listen$/)]);

    await db.pool.query(`UPDATE hindsight.replication_state SET updated_at = now() - interval '10 minutes' WHERE slot_name = $1`, [slot]);
    const old = await replicationStatus(toSql(db.pool), config);
    expect(statusProblems(old)).toContainEqual(expect.stringMatching(/last wrote its checkpoint 60\d s ago, over the limit of 300 s \(--max-checkpoint-age\)/));
    expect(statusProblems(old, { maxLagBytes: 2 ** 40, maxLagSeconds: 300, maxCheckpointAgeSeconds: 3600 })).not.toContainEqual(expect.stringMatching(/checkpoint/));
    await db.pool.query(`UPDATE hindsight.replication_state SET updated_at = now() WHERE slot_name = $1`, [slot]);
  });

  test('regression: each `hindsight listen` start printed "listening on slot" twice', async () => {
    const dir = await scratchDir('listen-once');
    const file = path.join(dir, 'hindsight.config.json');
    await fs.writeFile(file, JSON.stringify({ replication: config.replication, aggregates: [{ type: 'account', table: 'accounts', key: { column: 'id', type: 'bigint' }, capture: 'listener' }] }));
    const stop = new AbortController();
    let stderr = '';
    const exited = main(['listen', '--config', file, '--database-url', db.url], {
      stdout: () => undefined,
      stderr: (text) => (stderr += text),
      isTTY: false,
      env: {},
      cwd: dir,
      signal: stop.signal,
    });
    await waitFor('the listener to start', async () => (/listening on slot/.test(stderr) ? true : undefined));
    stop.abort();
    expect(await exited).toBe(0);
    expect(stderr.match(/listening on slot/g)).toHaveLength(1);
    expect(stderr).toMatch(/stop with Ctrl-C or SIGTERM/);
  });

  test('TRUNCATE of a mapped table deletes every aggregate that is not already deleted, in one transaction', async () => {
    const listener = startListener();
    try {
      await db.pool.query(`TRUNCATE accounts`);
      await waitFor('the truncate', async () => ((await events()).some((e) => e.payload.reason === 'truncate') ? true : undefined));
    } finally {
      await listener.stop();
    }
    const all = await events();
    const truncated = all.filter((e) => e.payload.reason === 'truncate');
    expect(truncated.map((e) => [e.aggregate_id, e.event_type])).toEqual([
      ['1', 'accounts.deleted'],
      ['3', 'accounts.deleted'],
    ]);
    expect(new Set(truncated.map((e) => e.source_commit_lsn)).size).toBe(1);
  });
});

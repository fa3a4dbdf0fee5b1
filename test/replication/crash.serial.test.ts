import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { createHindsight } from '../../src/hindsight.js';
import { defineEvent } from '../../src/events/defineEvent.js';
import type pg from 'pg';
import { z } from 'zod';
import { backfill } from '../../src/replication/backfill.js';
import { setupReplication } from '../../src/replication/setup.js';
import { migrate } from '../../src/store/migrate.js';
import { scratchDir } from '../helpers/cli.js';
import { useTestDatabase } from '../helpers/database.js';
import { teardownEventually } from '../helpers/replication.js';

// Serial: a replication slot, and a listener process killed with SIGKILL again and again
// while legacy writers run. Afterwards the events must equal, change by change, what a
// test-only audit trigger recorded in the writers' own transactions.

const db = useTestDatabase(import.meta.url);
const BIN = path.resolve(import.meta.dirname, '../../bin/hindsight.js');
const slot = `hs_crash_${Math.random().toString(36).slice(2, 8)}`;
const input = {
  replication: { slot, publication: 'hs_crash_legacy' },
  aggregates: [
    { type: 'ledger', table: 'ledger', key: { column: 'id', type: 'integer' }, capture: 'listener' as const, columns: { balance: 'balance', note: 'note' } },
    // Capture "both": the writer's wrapped top-ups stage their events; the listener appends them.
    { type: 'wallet', table: 'wallets', key: { column: 'id', type: 'integer' }, capture: 'both' as const },
  ],
};
const config = resolveConfig(input as ConfigInput);
// The app's own instance knows the staged event's schema; the listener (a JSON config) need not.
const app = createHindsight({
  ...input,
  aggregates: [input.aggregates[0]!, { ...input.aggregates[1]!, events: [defineEvent('wallet.topped', z.object({ amount: z.number().int() }))] }],
} as ConfigInput);
let configFile: string;
const children = new Set<ChildProcess>();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  await migrate({ connectionString: db.url });
  await db.pool.query(`CREATE TABLE ledger (id int PRIMARY KEY, balance bigint NOT NULL, note text)`);
  await db.pool.query(`INSERT INTO ledger SELECT g, 0, 'opening' FROM generate_series(1, 30) g`);
  await db.pool.query(`CREATE TABLE wallets (id int PRIMARY KEY, balance bigint NOT NULL)`);
  await db.pool.query(`INSERT INTO wallets SELECT g, 0 FROM generate_series(1, 10) g`);
  await setupReplication(config, { connectionString: db.url });
  await backfill(config, { connectionString: db.url });
  // The independent record: every change, in the writer's own transaction.
  await db.pool.query(`CREATE TABLE audit (seq bigserial PRIMARY KEY, op text, id int, balance bigint, xid xid8 DEFAULT pg_current_xact_id())`);
  await db.pool.query(`CREATE FUNCTION audit_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN INSERT INTO audit (op, id, balance) VALUES ('deleted', OLD.id, NULL);
      ELSE INSERT INTO audit (op, id, balance) VALUES (CASE TG_OP WHEN 'INSERT' THEN 'inserted' ELSE 'updated' END, NEW.id, NEW.balance);
      END IF;
      RETURN NULL;
    END $$`);
  await db.pool.query(`CREATE TRIGGER audit_ledger AFTER INSERT OR UPDATE OR DELETE ON ledger FOR EACH ROW EXECUTE FUNCTION audit_ledger()`);
  await db.pool.query(`CREATE TABLE wallet_audit (seq bigserial PRIMARY KEY, id int, xid xid8 DEFAULT pg_current_xact_id())`);
  await db.pool.query(`CREATE FUNCTION audit_wallet() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO wallet_audit (id) VALUES (NEW.id); RETURN NULL; END $$`);
  await db.pool.query(`CREATE TRIGGER audit_wallet AFTER UPDATE ON wallets FOR EACH ROW EXECUTE FUNCTION audit_wallet()`);
  const dir = await scratchDir('listener-crash');
  configFile = path.join(dir, 'hindsight.config.json');
  await fs.writeFile(configFile, JSON.stringify(input));
});

afterAll(async () => {
  // A listener still running holds the slot: wait until each is gone (children leave the set on exit).
  const gone = [...children].map((child) => new Promise((resolve) => child.once('exit', resolve)));
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(gone);
  await teardownEventually(db.pool, config);
});

/** `listen`, or the listener inside `hindsight run` (the same failpoints reach it there). */
function spawnListener(failpoint?: string, command: 'listen' | 'run' = 'listen'): { child: ChildProcess; exited: Promise<{ code: number | null; signal: string | null; stderr: string }> } {
  const args = command === 'listen' ? ['listen', '--group-ms', '20'] : ['run', '--only', 'listener', '--no-http'];
  const child = spawn(process.execPath, [BIN, ...args, '--config', configFile, '--database-url', db.url, '--heartbeat', '0.2'], {
    env: { PATH: process.env.PATH, ...(failpoint ? { HINDSIGHT_LISTENER_FAILPOINT: failpoint } : {}) },
  });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, stderr });
    }),
  );
  return { child, exited };
}

/** Wrapped writes to a "both" type: each top-up updates one wallet and stages its event. */
async function topUpUntil(stop: { done: boolean }): Promise<number> {
  let count = 0;
  while (!stop.done) {
    const id = 1 + Math.floor(Math.random() * 10);
    await app.transaction(db.pool, async (tx) => {
      await (tx.db as pg.ClientBase).query(`UPDATE wallets SET balance = balance + 1 WHERE id = $1`, [id]);
      await tx.record('wallet', id, 'wallet.topped', { amount: 1 });
    });
    count += 1;
  }
  return count;
}

/** Legacy writes: single-row updates and multi-row transactions with inserts and deletes. */
async function writeUntil(stop: { done: boolean }, writer: number): Promise<number> {
  const client = await db.pool.connect();
  let transactions = 0;
  try {
    while (!stop.done) {
      const id = 1 + Math.floor(Math.random() * 30);
      const kind = Math.random();
      await client.query('BEGIN');
      try {
        if (kind < 0.6) {
          await client.query(`UPDATE ledger SET balance = balance + 1 WHERE id = $1`, [id]);
        } else if (kind < 0.9) {
          // Several rows in one source transaction, in an order that differs between writers.
          const ids = [id, 1 + ((id + 7) % 30), 1 + ((id + 13) % 30)];
          for (const other of writer % 2 === 0 ? ids : ids.reverse()) await client.query(`UPDATE ledger SET balance = balance + 10 WHERE id = $1`, [other]);
        } else {
          const fresh = 1000 + writer * 100_000 + transactions;
          await client.query(`INSERT INTO ledger VALUES ($1, 5, 'new')`, [fresh]);
          await client.query(`UPDATE ledger SET balance = balance + 1 WHERE id = $1`, [fresh]);
          if (Math.random() < 0.5) await client.query(`DELETE FROM ledger WHERE id = $1`, [fresh]);
        }
        await client.query('COMMIT');
        transactions += 1;
      } catch {
        await client.query('ROLLBACK'); // a deadlock between the writers: nothing was written
      }
    }
  } finally {
    client.release();
  }
  return transactions;
}

describe('listener crash safety', () => {
  test('killed with SIGKILL 10 times, as `listen` and inside `hindsight run`, including after a commit before the acknowledgement and while buffering a transaction: nothing lost, nothing duplicated, order kept', async () => {
    const stop = { done: false };
    const writers = [writeUntil(stop, 0), writeUntil(stop, 1), topUpUntil(stop)];
    const fired: string[] = [];
    // At least 10 kills, and on until each failpoint has fired (at most 24 cycles).
    let kills = 0;
    for (let cycle = 0; cycle < 24 && (kills < 10 || !fired.includes('committed-unacknowledged') || !fired.includes('buffering')); cycle++) {
      // Alternate the failpoints; a failpoint that does not fire in time is replaced by an outside kill.
      const name = cycle % 2 === 0 ? 'committed-unacknowledged' : 'buffering';
      // Every third process is `hindsight run`: killed at the same points, it must lose and duplicate nothing either.
      const { child, exited } = spawnListener(cycle % 2 === 0 ? `${name}:0.3` : `${name}:0.05`, cycle % 3 === 2 ? 'run' : 'listen');
      // Until a failpoint has fired once, its listener runs until it does (the writers keep it
      // busy), so both fire whatever the machine's speed; after that, an outside kill at a
      // random point may come first. A restarted listener first skips what it had already
      // appended, so give the commit failpoint longer.
      const window = !fired.includes(name) ? 60_000 : cycle % 2 === 0 ? 2000 + Math.random() * 2000 : 500 + Math.random() * 1500;
      const outcome = await Promise.race([exited, sleep(window).then(() => undefined)]);
      if (!outcome) {
        child.kill('SIGKILL');
        await exited;
      } else {
        expect(outcome.signal, outcome.stderr).toBe('SIGKILL');
        const match = /failpoint ([a-z-]+)/.exec(outcome.stderr);
        if (match) fired.push(match[1]!);
      }
      kills += 1;
    }
    stop.done = true;
    const transactions = (await Promise.all(writers)).reduce((a, b) => a + b, 0);
    expect(transactions).toBeGreaterThan(50);
    expect(fired).toContain('committed-unacknowledged');
    expect(fired).toContain('buffering');

    // Drain with a `hindsight run` that is left alone, then compare.
    const { child, exited } = spawnListener(undefined, 'run');
    const audited = Number((await db.pool.query(`SELECT (SELECT count(*) FROM audit) + (SELECT count(*) FROM wallet_audit) AS n`)).rows[0].n);
    const until = Date.now() + 30_000;
    for (;;) {
      const [{ n }] = (await db.pool.query(`SELECT count(*)::int AS n FROM hindsight.events WHERE source_commit_lsn IS NOT NULL`)).rows;
      if (n >= audited || Date.now() > until) break;
      await sleep(100);
    }
    // Anything extra (a duplicate) comes before a cut marker written now: wait until the
    // listener's checkpoint has passed it.
    const [{ cut }] = (await db.pool.query(`SELECT pg_logical_emit_message(true, 'hindsight.cut', 'drained')::text AS cut`)).rows;
    for (const passUntil = Date.now() + 30_000; ; ) {
      const { rows } = await db.pool.query(`SELECT checkpoint_lsn >= $1::pg_lsn AS passed FROM hindsight.replication_state`, [cut]);
      if (rows[0].passed) break;
      if (Date.now() > passUntil) throw new Error('the draining listener did not pass the cut marker');
      await sleep(100);
    }
    child.kill('SIGTERM');
    expect((await exited).code).toBe(0);

    const { rows: audit } = await db.pool.query(`SELECT a.id::text AS id, a.op, a.balance::text AS balance, a.xid::text AS xid FROM audit a ORDER BY a.id, a.seq`);
    const { rows: events } = await db.pool.query(
      `SELECT aggregate_id AS id, replace(event_type, 'ledger.', '') AS op, CASE WHEN event_type = 'ledger.deleted' THEN NULL ELSE payload->'after'->>'balance' END AS balance,
              source_xid::text AS xid
       FROM hindsight.events WHERE source = 'replication' AND aggregate_type = 'ledger' ORDER BY aggregate_id::int, sequence`,
    );
    expect(events.length).toBe(audit.length);
    expect(events).toEqual(audit);
    // The wrapped writes: each wallet update is exactly its staged event, with the writer's transaction id.
    const { rows: walletAudit } = await db.pool.query(`SELECT w.id::text AS id, w.xid::text AS xid FROM wallet_audit w ORDER BY w.id, w.seq`);
    const { rows: walletEvents } = await db.pool.query(
      `SELECT aggregate_id AS id, source_xid::text AS xid, event_type, source FROM hindsight.events
       WHERE aggregate_type = 'wallet' AND source <> 'import' ORDER BY aggregate_id::int, sequence`,
    );
    expect(walletAudit.length).toBeGreaterThan(10);
    expect(walletEvents.map(({ id, xid }) => ({ id, xid }))).toEqual(walletAudit);
    expect(new Set(walletEvents.map((e) => `${e.event_type}/${e.source}`))).toEqual(new Set(['wallet.topped/app']));
    const { rows: waiting } = await db.pool.query(`SELECT count(*)::int AS n FROM hindsight.staged_events`);
    expect(waiting[0].n).toBe(0);
    // Every aggregate's sequences are contiguous from its opening event.
    const { rows: gaps } = await db.pool.query(
      `SELECT aggregate_type, aggregate_id FROM hindsight.events GROUP BY 1, 2 HAVING max(sequence) <> count(*)`,
    );
    expect(gaps).toEqual([]);
    // And every chain's hashes hold (the listener appends many aggregates per statement).
    const chains = await createHindsight(config).audit(db.pool);
    expect(chains.problems).toEqual([]);
    expect(chains.events).toBeGreaterThan(events.length);
  });
});

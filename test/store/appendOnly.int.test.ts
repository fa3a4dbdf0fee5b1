import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SQLSTATE } from '../../src/db/sqlState.js';
import { isValidationError, type ValidationError } from '../../src/errors.js';
import type { Hindsight } from '../../src/hindsight.js';
import { migrate } from '../../src/store/migrate.js';
import { usePrivilegedServer, useTestDatabase } from '../helpers/database.js';
import { countEvents, prepareStore } from '../helpers/fixtures.js';
import { runCli, scratchDir, writeTestConfig } from '../helpers/cli.js';

const serverUrl = usePrivilegedServer();
const db = useTestDatabase(import.meta.url, { url: serverUrl });
let hs: Hindsight;
const appRole = `hs_app_${Math.random().toString(36).slice(2, 8)}`;

beforeAll(async () => {
  hs = await prepareStore(db);
  await db.pool.query(`CREATE ROLE ${appRole} LOGIN PASSWORD 'app-secret'`);
  await migrate({ connectionString: db.url, appRoles: [appRole] });
  for (let id = 1; id <= 8; id++) {
    await hs.append(db.pool, {
      aggregateType: 'account',
      aggregateId: id,
      events: Array.from({ length: 5 }, (_, i) => ({
        type: 'account.credited',
        payload: { amount: i + 1 },
        metadata: { actor: 'seed' },
        occurredAt: `2026-02-0${i + 1}T10:00:00.123456+01:00`,
      })),
    });
  }
});

afterAll(async () => {
  await db.pool.query(`DROP OWNED BY ${appRole}`);
  await db.pool.query(`DROP ROLE ${appRole}`);
});

async function expectRefused(client: pg.ClientBase, sql: string, sqlState: string) {
  const error = (await client.query(sql).catch((e: unknown) => e)) as { code?: string };
  expect(error?.code).toBe(sqlState);
}

describe('invalid input writes nothing', () => {
  const bad: Array<[string, unknown, string]> = [
    ['a payload failing its schema', { type: 'account.credited', payload: { amount: -1 } }, 'events[1].payload.amount'],
    ['a missing payload field', { type: 'account.credited', payload: {} }, 'events[1].payload.amount'],
    ['a missing payload', { type: 'account.credited' }, 'events[1].payload'],
    ['an unknown event type', { type: 'account.vanished', payload: {} }, 'events[1].type'],
    ['a bigint in metadata', { type: 'account.credited', payload: { amount: 1 }, metadata: { n: 10n } }, 'events[1].metadata.n'],
    ['NaN in metadata', { type: 'account.credited', payload: { amount: 1 }, metadata: { n: Number.NaN } }, 'events[1].metadata.n'],
    ['a NUL character', { type: 'account.credited', payload: { amount: 1 }, metadata: { actor: 'a\u0000b' } }, 'events[1].metadata.actor'],
    ['a lone surrogate', { type: 'account.credited', payload: { amount: 1 }, metadata: { actor: '\ud800' } }, 'events[1].metadata.actor'],
    ['a time without an offset', { type: 'account.credited', payload: { amount: 1 }, occurredAt: '2026-02-03 10:00' }, 'events[1].occurredAt'],
    ['an impossible date', { type: 'account.credited', payload: { amount: 1 }, occurredAt: '2026-02-30T10:00:00Z' }, 'events[1].occurredAt'],
    ['an offset PostgreSQL rejects', { type: 'account.credited', payload: { amount: 1 }, occurredAt: '2026-02-03T10:00:00+16:00' }, 'events[1].occurredAt'],
    ['a malformed event id', { type: 'account.credited', payload: { amount: 1 }, eventId: 'not-a-uuid' }, 'events[1].eventId'],
  ];
  for (const [what, event, path] of bad) {
    test(`${what}: a ValidationError naming ${path}, nothing written, the transaction still usable`, async () => {
      const before = await countEvents(db.pool);
      await hs.transaction(db.pool, async (tx) => {
        const error = await tx.append({ aggregateType: 'account', aggregateId: 50, events: [{ type: 'account.credited', payload: { amount: 1 } }, event as never] }).catch((e: unknown) => e);
        expect(isValidationError(error)).toBe(true);
        expect((error as ValidationError).path).toBe(path);
        await (tx.db as pg.ClientBase).query('SELECT 1'); // not aborted: nothing was sent
      });
      expect(await countEvents(db.pool)).toBe(before);
    });
  }

  test('a bad aggregate id is refused before anything is sent', async () => {
    for (const id of ['12abc', 1.5, '99999999999999999999', '']) {
      const error = await hs.append(db.pool, { aggregateType: 'account', aggregateId: id as never, events: [{ type: 'account.credited', payload: { amount: 1 } }] }).catch((e: unknown) => e);
      expect(isValidationError(error)).toBe(true);
    }
  });
});

describe('the events table is append-only', () => {
  test('UPDATE, DELETE and TRUNCATE are refused for the owner', async () => {
    const client = await db.pool.connect();
    try {
      await expectRefused(client, `UPDATE hindsight.events SET payload = '{}'`, SQLSTATE.APPEND_ONLY_VIOLATION);
      await expectRefused(client, `DELETE FROM hindsight.events WHERE sequence = 1`, SQLSTATE.APPEND_ONLY_VIOLATION);
      await expectRefused(client, `TRUNCATE hindsight.events`, SQLSTATE.APPEND_ONLY_VIOLATION);
    } finally {
      client.release();
    }
  });

  test('also under session_replication_role = replica, which silences ordinary triggers', async () => {
    const client = await db.pool.connect();
    try {
      await client.query(`SET session_replication_role = replica`);
      await expectRefused(client, `UPDATE hindsight.events SET payload = '{}'`, SQLSTATE.APPEND_ONLY_VIOLATION);
      await expectRefused(client, `DELETE FROM hindsight.events`, SQLSTATE.APPEND_ONLY_VIOLATION);
      await expectRefused(client, `TRUNCATE hindsight.events`, SQLSTATE.APPEND_ONLY_VIOLATION);
    } finally {
      await client.query(`RESET session_replication_role`);
      client.release();
    }
    expect(await countEvents(db.pool)).toBeGreaterThanOrEqual(40);
  });

  test('an app role may append but not update, delete or truncate (privileges revoked)', async () => {
    const url = new URL(db.url);
    url.username = appRole;
    url.password = 'app-secret';
    const app = new pg.Client(url.toString());
    await app.connect();
    try {
      const appended = await hs.append(app, { aggregateType: 'account', aggregateId: 60, events: [{ type: 'account.credited', payload: { amount: 1 } }] });
      expect(appended.sequences).toEqual([1]);
      await expectRefused(app, `UPDATE hindsight.events SET payload = '{}'`, SQLSTATE.INSUFFICIENT_PRIVILEGE);
      await expectRefused(app, `DELETE FROM hindsight.events`, SQLSTATE.INSUFFICIENT_PRIVILEGE);
      await expectRefused(app, `TRUNCATE hindsight.events`, SQLSTATE.INSUFFICIENT_PRIVILEGE);
      await expectRefused(app, `ALTER TABLE hindsight.events DISABLE TRIGGER ALL`, SQLSTATE.INSUFFICIENT_PRIVILEGE);
    } finally {
      await app.end();
    }
  });
});

describe('audit finds what a superuser changed around the triggers', () => {
  /** Runs `sql` with the append-only trigger disabled, as only the owner or a superuser can. */
  async function tamper(sql: string, values: unknown[]) {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('ALTER TABLE hindsight.events DISABLE TRIGGER events_append_only');
      await client.query(sql, values);
      await client.query('ALTER TABLE hindsight.events ENABLE ALWAYS TRIGGER events_append_only');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  }
  const where = `WHERE aggregate_type = 'account' AND aggregate_id = $1 AND sequence = $2`;

  test('an edited middle payload, metadata or occurred_at, a deleted middle event and a deleted last event are each named', async () => {
    await tamper(`UPDATE hindsight.events SET payload = '{"amount": 1000}' ${where}`, ['1', 3]);
    await tamper(`UPDATE hindsight.events SET metadata = '{"actor": "someone else"}' ${where}`, ['2', 3]);
    await tamper(`UPDATE hindsight.events SET occurred_at = occurred_at + interval '1 microsecond' ${where}`, ['3', 3]);
    await tamper(`DELETE FROM hindsight.events ${where}`, ['4', 3]);
    await tamper(`DELETE FROM hindsight.events ${where}`, ['5', 5]);

    const report = await hs.audit(db.pool, { aggregateType: 'account' });
    const found = report.problems.map((p) => [p.aggregateId, p.kind, p.sequence]);
    expect(found).toEqual([
      ['1', 'hash', 3],
      ['2', 'hash', 3],
      ['3', 'hash', 3],
      ['4', 'sequence', 4],
      ['5', 'head', 4],
    ]);

    // the CLI exits 1 and names the first broken event of each chain
    const cwd = await scratchDir('audit');
    await writeTestConfig(cwd);
    const result = await runCli(['audit', '--database-url', db.url], { cwd });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('5 broken chains');
    expect(result.stdout).toMatch(/account 1 at sequence 3: event 3 \(global position \d+\) does not match its hash/);
    expect(result.stdout).toMatch(/account 4 at sequence 4: sequence 4 is event number 3 of the chain: events before it are missing/);
    expect(result.stdout).toMatch(/account 5 at sequence 4: the head records version 5, but the last event is 4/);
    const one = await runCli(['audit', 'account', '6', '--database-url', db.url], { cwd });
    expect(one.code).toBe(0);
  });

  test('an intact log passes under any session TimeZone and DateStyle', async () => {
    const client = new pg.Client(db.url);
    await client.connect();
    try {
      await client.query(`SET TimeZone = 'America/New_York'`);
      await client.query(`SET DateStyle = 'SQL, DMY'`);
      // append in the odd session too: the hash must not depend on it
      await hs.append(client, { aggregateType: 'account', aggregateId: 7, events: [{ type: 'account.credited', payload: { amount: 9 }, occurredAt: new Date('2026-03-01T00:00:00Z') }] });
      for (const id of [6, 7, 8]) {
        const report = await hs.audit(client, { aggregateType: 'account', aggregateId: id });
        expect(report).toMatchObject({ aggregates: 1, problems: [] });
      }
    } finally {
      await client.end();
    }
    const utc = await hs.audit(db.pool, { aggregateType: 'account', aggregateId: 7 });
    expect(utc.problems).toEqual([]);
    expect(utc.events).toBe(6);
  });
});

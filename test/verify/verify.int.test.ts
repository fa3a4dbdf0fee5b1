import pg from 'pg';
import { z } from 'zod';
import { beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { defineEvent } from '../../src/events/defineEvent.js';
import { createHindsight, type Hindsight } from '../../src/hindsight.js';
import { defineProjector } from '../../src/projection/defineProjector.js';
import { migrate } from '../../src/store/migrate.js';
import { recentRuns } from '../../src/verify/history.js';
import { verify } from '../../src/verify/run.js';
import { exitCodeOf, type TypeReport } from '../../src/verify/report.js';
import { toSql } from '../../src/db/queryable.js';
import { storeTables } from '../../src/store/tables.js';
import { useTestDatabase } from '../helpers/database.js';

// The verifier on an app type: what it calls clean, what it calls a mismatch and why,
// and that concurrent writers never make it report a difference that is not there.

const db = useTestDatabase(import.meta.url);
const openedSchema = z.object({
  owner: z.string(),
  balance: z.string(),
  status: z.string(),
  openedAt: z.string(),
  prefs: z.record(z.string(), z.unknown()),
  nickname: z.string().nullable().optional(),
});
const Opened = defineEvent('account.opened', openedSchema);
const Credited = defineEvent('account.credited', z.object({ amount: z.number() }));
const Renamed = defineEvent('account.renamed', z.object({ owner: z.string() }));

interface AccountState {
  owner?: string;
  balance?: number;
  status?: string;
  openedAt?: string;
  prefs?: Record<string, unknown>;
  nickname?: string | null;
}

function config(overrides: { columns?: Record<string, unknown>; verify?: unknown; renameHandler?: boolean } = {}): ConfigInput {
  return {
    aggregates: [
      {
        type: 'account',
        table: 'accounts',
        key: { column: 'id', type: 'bigint' },
        columns: (overrides.columns ?? {
          owner: 'owner',
          balance: 'balance',
          status: { field: 'status', values: { A: 'active', C: 'closed' } },
          opened_at: { field: 'openedAt', compare: 'timestamp' },
          prefs: 'prefs',
          nickname: 'nickname',
        }) as never,
        events: [Opened, Credited, Renamed],
        projector: defineProjector<AccountState>({
          aggregateType: 'account',
          initial: () => ({}),
          handlers: {
            'account.opened': (_s, e) => {
              const p = e.payload as z.infer<typeof openedSchema>;
              return { owner: p.owner, balance: Number(p.balance), status: p.status, openedAt: p.openedAt, prefs: p.prefs, ...(p.nickname !== undefined ? { nickname: p.nickname } : {}) };
            },
            'account.credited': (s, e) => ({ ...s, balance: (s.balance ?? 0) + (e.payload as { amount: number }).amount }),
            ...(overrides.renameHandler === false ? {} : { 'account.renamed': (s: AccountState, e: { payload: unknown }) => ({ ...s, owner: (e.payload as { owner: string }).owner }) }),
          },
        }),
        verify: (overrides.verify ?? { updatedAt: 'updated_at' }) as never,
      },
    ],
  };
}

let hs: Hindsight;
let nextId = 1;

beforeAll(async () => {
  await migrate({ connectionString: db.url });
  await db.pool.query(`
    CREATE TABLE accounts (
      id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL, status text NOT NULL,
      opened_at timestamptz NOT NULL, prefs jsonb NOT NULL DEFAULT '{}', nickname text, updated_at timestamptz NOT NULL DEFAULT now())`);
  hs = createHindsight(config());
});

/** Opens an account the way the app would: the legacy INSERT and the event in one transaction. */
async function open(
  fields: { owner?: string; balance?: string; status?: string; openedAt?: string; prefs?: Record<string, unknown>; nickname?: string | null } = {},
  event: Record<string, unknown> = {},
): Promise<number> {
  const id = nextId++;
  const row = { owner: 'ann', balance: '100.50', status: 'A', openedAt: '2026-02-03T09:15:00.123456Z', prefs: { b: 1, a: [1, 2] }, nickname: null, ...fields };
  await hs.transaction(db.pool, async (tx) => {
    await (tx.db as pg.PoolClient).query(
      `INSERT INTO accounts (id, owner, balance, status, opened_at, prefs, nickname) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [id, row.owner, row.balance, row.status, row.openedAt, JSON.stringify(row.prefs), row.nickname],
    );
    await tx.record('account', id, 'account.opened', {
      owner: row.owner,
      balance: row.balance,
      status: row.status === 'A' ? 'active' : 'closed',
      openedAt: row.openedAt,
      prefs: { a: [1, 2], b: 1 }, // another key order: jsonb compares structurally
      ...(row.nickname !== undefined ? { nickname: row.nickname } : {}),
      ...event,
    });
  });
  return id;
}

async function credit(id: number, amount: number): Promise<void> {
  await hs.transaction(db.pool, async (tx) => {
    await (tx.db as pg.PoolClient).query('UPDATE accounts SET balance = balance + $2, updated_at = now() WHERE id = $1', [id, amount]);
    await tx.record('account', id, 'account.credited', { amount });
  });
}

async function run(input: ConfigInput = config(), options: Partial<Parameters<typeof verify>[1]> = {}): Promise<TypeReport> {
  const report = await verify(resolveConfig(input), { connectionString: db.url, pageSize: 7, ...options });
  return report.types[0]!;
}

/** A fresh start: no hindsight schema, no legacy rows (events are append-only, so the log goes too). */
async function reset(): Promise<void> {
  await db.pool.query('DROP SCHEMA hindsight CASCADE; TRUNCATE accounts');
  await migrate({ connectionString: db.url });
}

describe('verify, app type', () => {
  test('an empty table and no events is "empty", never clean', async () => {
    const report = await run();
    expect(report.outcome).toBe('empty');
    expect(report.counts.compared).toBe(0);
  });

  test('events that tell the truth: clean, across pages, with numbers, renamed values, microseconds and jsonb compared by meaning', async () => {
    await reset();
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) ids.push(await open({ owner: `owner ${i}` }));
    await credit(ids[3]!, 0.25);
    const report = await run();
    expect(report.reason).toBeUndefined();
    expect(report.outcome).toBe('clean');
    expect(report.counts).toMatchObject({ rows: 20, compared: 20, matched: 20, mismatched: 0, missingInEvents: 0, missingInLegacy: 0 });
    expect(report.cut.pages).toBe(3); // 20 rows in pages of 7: each in a snapshot of its own
    expect(exitCodeOf(report.outcome)).toBe(0);
    const [stored] = await recentRuns(toSql(db.pool), storeTables('"hindsight"'), { types: ['account'] });
    expect(stored).toMatchObject({ outcome: 'clean', mode: 'full', target: 'projection' });
    expect(stored!.counts.matched).toBe(20);
  });

  test('a legacy write that recorded no event: a field mismatch, explained as legacy drift from updated_at', async () => {
    await reset();
    const id = await open();
    const other = await open();
    await db.pool.query(`UPDATE accounts SET balance = 999, updated_at = now() + interval '1 second' WHERE id = $1`, [id]);
    const report = await run();
    expect(report.outcome).toBe('mismatches');
    expect(report.counts).toMatchObject({ matched: 1, mismatched: 1 });
    const [m] = report.mismatches;
    expect(m).toMatchObject({ aggregateId: String(id), kind: 'field-mismatch', class: 'legacy drift' });
    expect(m!.fields).toEqual([{ field: 'balance', column: 'balance', legacy: '999.00', projected: '100.5' }]);
    expect(m!.explanation[0]).toMatch(/legacy row changed after its last event: a write path is not captured/);
    expect(report.fieldCounts).toEqual({ balance: 1 });
    expect(exitCodeOf(report.outcome)).toBe(1);
    void other;
  });

  test('an event with a business time long past is not taken for a later legacy write: updated_at is compared with when the event was written', async () => {
    await reset();
    const id = nextId++;
    await hs.transaction(db.pool, async (tx) => {
      await (tx.db as pg.PoolClient).query(
        `INSERT INTO accounts (id, owner, balance, status, opened_at, nickname) VALUES ($1, 'ann', 5, 'A', '2026-02-03T09:15:00.123456Z', NULL)`,
        [id],
      );
      await tx.record(
        'account',
        id,
        'account.opened',
        { owner: 'ann', balance: '5', status: 'active', openedAt: '2026-02-03T09:15:00.123456Z', prefs: {}, nickname: null },
        { occurredAt: '2020-01-01T00:00:00Z' }, // what the business says happened, years before updated_at
      );
      await (tx.db as pg.PoolClient).query(`UPDATE accounts SET owner = 'bea' WHERE id = $1`, [id]);
      await tx.record('account', id, 'account.renamed', { owner: 'bea' }, { occurredAt: '2020-01-02T00:00:00Z' });
    });
    const report = await run(config({ renameHandler: false }));
    expect(report.mismatches[0]).toMatchObject({ class: 'projector bug', fields: [{ field: 'owner', legacy: 'bea', projected: 'ann' }] });
  });

  test('two timestamps 1 microsecond apart differ at microsecond precision, and match at millisecond precision', async () => {
    await reset();
    const id = await open();
    await db.pool.query(`UPDATE accounts SET opened_at = opened_at + interval '1 microsecond' WHERE id = $1`, [id]);
    const exact = await run();
    expect(exact.mismatches.map((m) => m.fields.map((f) => f.field))).toEqual([['openedAt']]);
    expect(exact.mismatches[0]!.fields[0]!.legacy).toBe('2026-02-03 09:15:00.123457+00');
    const coarse = config({
      columns: {
        owner: 'owner',
        balance: 'balance',
        status: { field: 'status', values: { A: 'active', C: 'closed' } },
        opened_at: { field: 'openedAt', compare: 'timestamp', precision: 'millisecond' },
        prefs: 'prefs',
        nickname: 'nickname',
      },
    });
    expect((await run(coarse)).outcome).toBe('clean');
  });

  test('a legacy row no event mentions, and events for a row that is gone; a deleted projection matches an absent row', async () => {
    await reset();
    await db.pool.query(`INSERT INTO accounts (id, owner, balance, status, opened_at) VALUES (9001, 'zed', 1, 'A', now())`);
    const gone = await open();
    await db.pool.query('DELETE FROM accounts WHERE id = $1', [gone]);
    const deletedToo = await open();
    await hs.transaction(db.pool, async (tx) => {
      await (tx.db as pg.PoolClient).query('DELETE FROM accounts WHERE id = $1', [deletedToo]);
      await tx.record('account', deletedToo, 'accounts.deleted', {});
    });
    const report = await run();
    expect(report.counts).toMatchObject({ missingInEvents: 1, missingInLegacy: 1, mismatched: 0 });
    const byKind = Object.fromEntries(report.mismatches.map((m) => [m.kind, m]));
    expect(byKind['missing-in-events']).toMatchObject({ aggregateId: '9001', class: 'missing event' });
    expect(byKind['missing-in-legacy']).toMatchObject({ aggregateId: String(gone), class: 'legacy drift' });
    expect(report.outcome).toBe('mismatches');
  });

  test('a handler the projector lacks: "no event ever sets this field" or an unhandled event type, classed as a projector bug', async () => {
    await reset();
    const id = await open();
    await hs.transaction(db.pool, async (tx) => {
      await (tx.db as pg.PoolClient).query(`UPDATE accounts SET owner = 'bea' WHERE id = $1`, [id]);
      await tx.record('account', id, 'account.renamed', { owner: 'bea' });
    });
    const withoutRename = config({ renameHandler: false, verify: {} });
    const report = await run(withoutRename);
    const [m] = report.mismatches;
    expect(m).toMatchObject({ class: 'projector bug', fields: [{ field: 'owner', legacy: 'bea', projected: 'ann' }] });
    expect(m!.explanation.join(' ')).toMatch(/account\.renamed were folded without a handler/);
    expect((await run()).outcome).toBe('clean'); // with the handler
  });

  test('NULL equals a missing field only where declared', async () => {
    await reset();
    await open({ nickname: undefined }); // the event has no nickname field at all; the row's is NULL
    const strict = await run();
    expect(strict.mismatches[0]!.fields).toEqual([{ field: 'nickname', column: 'nickname', legacy: null, projected: 'missing' }]);
    const lenient = config({
      columns: {
        owner: 'owner',
        balance: 'balance',
        status: { field: 'status', values: { A: 'active', C: 'closed' } },
        opened_at: { field: 'openedAt', compare: 'timestamp' },
        prefs: 'prefs',
        nickname: { field: 'nickname', nullEqualsMissing: true },
      },
    });
    expect((await run(lenient)).outcome).toBe('clean');
  });

  test('numeric tolerance and scale', async () => {
    await reset();
    const id = await open({ balance: '10.00' });
    await db.pool.query(`UPDATE accounts SET balance = 10.01 WHERE id = $1`, [id]);
    const columns = (balance: unknown) => ({
      owner: 'owner',
      balance,
      status: { field: 'status', values: { A: 'active', C: 'closed' } },
      opened_at: { field: 'openedAt', compare: 'timestamp' },
      prefs: 'prefs',
      nickname: 'nickname',
    });
    expect((await run(config({ columns: columns('balance') }))).outcome).toBe('mismatches');
    expect((await run(config({ columns: columns({ field: 'balance', compare: 'numeric', tolerance: '0.01' }) }))).outcome).toBe('clean');
    expect((await run(config({ columns: columns({ field: 'balance', compare: 'numeric', tolerance: '0.005' }) }))).outcome).toBe('mismatches');
    expect((await run(config({ columns: columns({ field: 'balance', compare: 'numeric', scale: 0 }) }))).outcome).toBe('clean');
  });

  test('ignore rules: counted as ignored, never as matched; an expired one makes the run incomplete', async () => {
    await reset();
    const id = await open();
    await open();
    await db.pool.query(`UPDATE accounts SET balance = 1 WHERE id = $1`, [id]);
    const ignoring = (expires: string) => config({ verify: { updatedAt: 'updated_at', ignore: [{ field: 'balance', ids: [String(id)], reason: 'fee correction of 2024, see JIRA-12', expires }] } });
    const report = await run(ignoring('2999-12-31'));
    expect(report.outcome).toBe('clean');
    expect(report.counts).toMatchObject({ matched: 1, ignored: 1, mismatched: 0 });
    expect(report.mismatches[0]).toMatchObject({ class: 'known divergence', ignoredBy: { reason: 'fee correction of 2024, see JIRA-12' } });
    const expired = await run(ignoring('2020-01-01'));
    expect(expired.outcome).toBe('incomplete');
    expect(expired.reason).toMatch(/ignore rule expired: "fee correction of 2024, see JIRA-12" \(balance, last day 2020-01-01\): renew or remove it/);
    expect(exitCodeOf(expired.outcome)).toBe(2);
  });

  test('a column map naming a column the table lacks: incomplete, never clean', async () => {
    await reset();
    await open();
    const report = await run(config({ columns: { owner: 'owner', no_such_column: 'x' } }));
    expect(report.outcome).toBe('incomplete');
    expect(report.reason).toMatch(/has no column no_such_column/);
  });

  test('a projected value of the wrong form is a mismatch with a note, not a crash, and the rest are still compared', async () => {
    await reset();
    const bad = await open({}, { openedAt: 'the third of February' });
    await open();
    const report = await run();
    expect(report.counts).toMatchObject({ compared: 2, matched: 1, mismatched: 1 });
    const [field] = report.mismatches[0]!.fields;
    expect(report.mismatches[0]!.aggregateId).toBe(String(bad));
    expect(field).toMatchObject({ field: 'openedAt', projected: 'the third of February' });
    expect(field!.note).toMatch(/cannot be compared as timestamp with time zone/);
  });

  test('--ids and --sample check only what they name', async () => {
    await reset();
    const ids = [await open(), await open(), await open()];
    await db.pool.query(`UPDATE accounts SET owner = 'x' WHERE id = $1`, [ids[0]]);
    const one = await run(config(), { ids: [String(ids[1])] });
    expect(one).toMatchObject({ mode: 'ids', outcome: 'clean', counts: { compared: 1, matched: 1 } });
    const sample = await run(config(), { sample: 2 });
    expect(sample.mode).toBe('sample');
    expect(sample.counts.compared).toBe(2);
  });

  test('under concurrent writers (credits, and transfers that wait on a second account), never a false mismatch', async () => {
    await reset();
    const ids: number[] = [];
    for (let i = 0; i < 40; i++) ids.push(await open());
    let stop = false;
    const writer = async (seed: number) => {
      let n = 0;
      while (!stop) {
        const a = ids[(seed * 7 + n * 3) % ids.length]!;
        const b = ids[(seed * 5 + n * 11 + 1) % ids.length]!;
        // a transfer: writes one account, then the other (lock waits between writers included)
        await hs.transaction(db.pool, async (tx) => {
          const client = tx.db as pg.PoolClient;
          for (const [id, amount] of a < b ? [[a, -1], [b, 1]] : [[b, 1], [a, -1]]) {
            await client.query('UPDATE accounts SET balance = balance + $2, updated_at = now() WHERE id = $1', [id, amount]);
            await tx.record('account', id!, 'account.credited', { amount: amount! });
          }
        });
        n++;
      }
      return n;
    };
    const writers = [writer(1), writer(2), writer(3)];
    const reports: TypeReport[] = [];
    for (let i = 0; i < 4; i++) reports.push(await run(config(), { pageSize: 5, concurrency: 3 }));
    stop = true;
    const written = (await Promise.all(writers)).reduce((x, y) => x + y, 0);
    expect(written).toBeGreaterThan(10);
    for (const report of reports) {
      expect(report.mismatches).toEqual([]);
      expect(report.outcome).toBe('clean');
      expect(report.counts.compared).toBe(40);
    }
  }, 60_000);
});

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig, type ResolvedConfig } from '../../src/config/resolve.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { defineProjector } from '../../src/projection/defineProjector.js';
import { backfill } from '../../src/replication/backfill.js';
import { runListener } from '../../src/replication/listener.js';
import { setupReplication } from '../../src/replication/setup.js';
import { migrate } from '../../src/store/migrate.js';
import { verify } from '../../src/verify/run.js';
import type { TypeReport } from '../../src/verify/report.js';
import { useTestDatabase } from '../helpers/database.js';
import { teardownEventually } from '../helpers/replication.js';

// Serial: replication slots are cluster-wide. The verifier on a listener type: it waits for
// the listener to pass its cut (and says "incomplete" when it cannot), and uses the row
// images the listener's events carry to name the event where a projector went wrong.

const db = useTestDatabase(import.meta.url);
const slot = `hs_verify_${Math.random().toString(36).slice(2, 8)}`;

function input(buggy: boolean): ConfigInput {
  return {
    replication: { slot, publication: 'hs_verify_legacy' },
    aggregates: [
      {
        type: 'account',
        table: 'accounts',
        key: { column: 'id', type: 'bigint' },
        capture: 'listener',
        columns: { balance: 'balance', status: 'status' },
        // A hand-written projector for the generic events; the buggy one ignores status changes to 'closed'.
        projector: defineProjector<Record<string, unknown>>({
          aggregateType: 'account',
          initial: () => ({}),
          handlers: {
            'accounts.imported': (s, e) => ({ ...s, ...(e.payload as { after: object }).after }),
            'accounts.inserted': (s, e) => ({ ...s, ...(e.payload as { after: object }).after }),
            'accounts.updated': (s, e) => {
              const after = { ...(e.payload as { after: Record<string, unknown> }).after };
              if (buggy && after.status === 'closed') delete after.status;
              return { ...s, ...after };
            },
          },
        }),
      },
    ],
  };
}
let config: ResolvedConfig;

function startListener(): () => Promise<void> {
  const controller = new AbortController();
  const done = runListener(config, { connectionString: db.url, signal: controller.signal, heartbeatMs: 200 });
  return async () => {
    controller.abort();
    await done;
  };
}

async function run(buggy = false, lagTimeoutMs = 10_000): Promise<TypeReport> {
  return (await verify(resolveConfig(input(buggy)), { connectionString: db.url, lagTimeoutMs })).types[0]!;
}

beforeAll(async () => {
  await db.pool.query(`CREATE TABLE accounts (id bigint PRIMARY KEY, balance numeric(12,2) NOT NULL, status text NOT NULL)`);
  await db.pool.query(`INSERT INTO accounts SELECT g, g * 10, 'open' FROM generate_series(1, 5) g`);
  config = resolveConfig(input(false));
  await migrate({ connectionString: db.url });
});

afterAll(async () => {
  await teardownEventually(db.pool, config);
});

describe('verify, listener type', () => {
  test('before the baseline and the listener have run, the type is incomplete, never clean', async () => {
    const report = await run();
    expect(report.outcome).toBe('incomplete');
    expect(report.reason).toMatch(/never run: run hindsight backfill and hindsight listen first/);
  });

  test('with the listener stopped, a legacy write makes the run wait for the cut and end incomplete; with it running, clean', async () => {
    await setupReplication(config, { connectionString: db.url });
    await backfill(config, { connectionString: db.url });
    let stop = startListener();
    expect((await run()).outcome).toBe('clean');
    await stop();

    // The legacy write commits before the page's snapshot: its event is not in the store yet.
    await db.pool.query(`UPDATE accounts SET balance = balance + 1 WHERE id = 2`);
    const started = Date.now();
    const waiting = await run(false, 1500);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    expect(waiting.outcome).toBe('incomplete');
    expect(waiting.reason).toMatch(/the listener did not reach the verification cut .* within 1.5 s/);
    expect(waiting.mismatches).toEqual([]);

    stop = startListener();
    try {
      const report = await run();
      expect(report.outcome).toBe('clean');
      expect(report.counts).toMatchObject({ rows: 5, matched: 5 });
      expect(report.cut.cutLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    } finally {
      await stop();
    }
  }, 60_000);

  test('row images name the first event after which a buggy projector stopped matching the row', async () => {
    const stop = startListener();
    try {
      await db.pool.query(`UPDATE accounts SET status = 'closed' WHERE id = 3`);
      await db.pool.query(`UPDATE accounts SET balance = 31 WHERE id = 3`);
      const report = await run(true);
      expect(report.outcome).toBe('mismatches');
      const [m] = report.mismatches;
      expect(m).toMatchObject({ aggregateId: '3', kind: 'field-mismatch', class: 'projector bug' });
      expect(m!.fields).toEqual([{ field: 'status', column: 'status', legacy: 'closed', projected: 'open' }]);
      expect(m!.firstDivergence).toMatchObject({ sequence: 2, eventType: 'accounts.updated' });
      expect(m!.explanation[0]).toMatch(/stopped matching the row after event 2 \(accounts\.updated/);
      expect((await run(false)).outcome).toBe('clean');
    } finally {
      await stop();
    }
  }, 60_000);

  test('a write the listener never saw is legacy drift: the last row image matched the projection, the row differs', async () => {
    const stop = startListener();
    try {
      // A write the listener never sees: the table is out of the publication for that one UPDATE.
      await db.pool.query(`ALTER PUBLICATION hs_verify_legacy DROP TABLE accounts`);
      await db.pool.query(`UPDATE accounts SET balance = 999 WHERE id = 4`);
      await db.pool.query(`ALTER PUBLICATION hs_verify_legacy ADD TABLE accounts`);
      const report = await run();
      const [m] = report.mismatches;
      expect(m).toMatchObject({ aggregateId: '4', class: 'legacy drift', fields: [{ field: 'balance', legacy: '999.00', projected: '40.00' }] });
      expect(m!.explanation[0]).toMatch(/legacy row changed after its last event: a write path is not captured/);
    } finally {
      await stop();
    }
  }, 60_000);
});

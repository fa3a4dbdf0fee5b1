import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { toSql } from '../../src/db/queryable.js';
import { defineEvent } from '../../src/events/defineEvent.js';
import { backfill } from '../../src/replication/backfill.js';
import { runListener } from '../../src/replication/listener.js';
import { replicationStatus, setupReplication } from '../../src/replication/setup.js';
import { migrate } from '../../src/store/migrate.js';
import { useTestDatabase } from '../helpers/database.js';
import { teardownEventually } from '../helpers/replication.js';

// Serial: a replication slot. Mapping rules turn column transitions into domain events.

const db = useTestDatabase(import.meta.url);
const config = resolveConfig({
  replication: { slot: `hs_mapping_${Math.random().toString(36).slice(2, 8)}`, publication: 'hs_mapping_legacy' },
  aggregates: [
    {
      type: 'subscription',
      table: 'subscriptions',
      key: { column: 'id', type: 'bigint' },
      capture: 'listener',
      events: [
        defineEvent('subscription.activated', z.object({ plan: z.string(), seats: z.number().int().positive(), trial: z.boolean() })),
        defineEvent('subscription.cancelled', z.object({})),
        defineEvent('subscription.upgraded', z.object({ plan: z.string() })),
      ],
      mappings: [
        { column: 'status', becomes: 'active', event: 'subscription.activated', payload: { plan: 'plan', seats: 'seats', trial: 'was_trial' } },
        { column: 'status', becomes: 'cancelled', from: 'active', event: 'subscription.cancelled' },
        { column: 'plan', becomes: 'pro', event: 'subscription.upgraded', payload: { plan: 'plan' } },
      ],
    },
  ],
});

beforeAll(async () => {
  await migrate({ connectionString: db.url });
  await db.pool.query(`CREATE TABLE subscriptions (id bigint PRIMARY KEY, status text NOT NULL, plan text NOT NULL, seats int NOT NULL, was_trial boolean NOT NULL DEFAULT false)`);
  await setupReplication(config, { connectionString: db.url });
  await backfill(config, { connectionString: db.url });
});

afterAll(async () => {
  await teardownEventually(db.pool, config);
});

describe('mapping rules', () => {
  test('transitions become typed domain events (several from one change); others stay generic; a payload that fails its schema falls back to the generic event, noted and counted', async () => {
    const controller = new AbortController();
    const listening = runListener(config, { connectionString: db.url, signal: controller.signal, heartbeatMs: 200 });
    const statements = [
      `INSERT INTO subscriptions VALUES (1, 'trial', 'basic', 1, true)`,
      `UPDATE subscriptions SET status = 'active', seats = 3, plan = 'pro' WHERE id = 1`,
      `UPDATE subscriptions SET seats = 4 WHERE id = 1`,
      `UPDATE subscriptions SET status = 'cancelled' WHERE id = 1`,
      `INSERT INTO subscriptions VALUES (2, 'trial', 'basic', 1, false)`,
      `UPDATE subscriptions SET status = 'cancelled' WHERE id = 2`,
      `INSERT INTO subscriptions VALUES (3, 'active', 'basic', 0, false)`,
    ];
    for (const statement of statements) await db.pool.query(statement);
    const until = Date.now() + 10_000;
    let rows: Array<{ aggregate_id: string; event_type: string; payload: unknown; error: string | null }> = [];
    while (Date.now() < until) {
      ({ rows } = await db.pool.query(
        `SELECT aggregate_id, event_type, payload, metadata->>'mapping_error' AS error FROM hindsight.events ORDER BY global_position`,
      ));
      if (rows.some((r) => r.aggregate_id === '3')) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    controller.abort();
    await listening;
    expect(rows.map((r) => [r.aggregate_id, r.event_type, r.payload, r.error])).toEqual([
      ['1', 'subscriptions.inserted', { after: { id: '1', status: 'trial', plan: 'basic', seats: '1', was_trial: 't' } }, null],
      ['1', 'subscription.activated', { plan: 'pro', seats: 3, trial: true }, null],
      ['1', 'subscription.upgraded', { plan: 'pro' }, null],
      ['1', 'subscriptions.updated', { before: { seats: '3' }, after: { seats: '4' } }, null],
      ['1', 'subscription.cancelled', {}, null],
      ['2', 'subscriptions.inserted', { after: { id: '2', status: 'trial', plan: 'basic', seats: '1', was_trial: 'f' } }, null],
      ['2', 'subscriptions.updated', { before: { status: 'trial' }, after: { status: 'cancelled' } }, null], // not from "active"
      [
        '3',
        'subscriptions.inserted',
        { after: { id: '3', status: 'active', plan: 'basic', seats: '0', was_trial: 'f' } },
        'subscription.activated (when status became active): payload.seats: Too small: expected number to be >0',
      ],
    ]);
    const status = await replicationStatus(toSql(db.pool), config);
    expect(status.mappingFallbacks).toEqual({ lastDay: 1, total: 1 });
  });
});

import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createAlerter, type AlerterLogEntry } from '../../src/alerts/alerter.js';
import { startMonitor } from '../../src/alerts/monitor.js';
import { missedAlert, runAlerts } from '../../src/alerts/runAlerts.js';
import { resolveConfig } from '../../src/config/resolve.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { toSql } from '../../src/db/queryable.js';
import type { Hindsight } from '../../src/hindsight.js';
import { verify } from '../../src/verify/run.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, readModelConfig, testConfig } from '../helpers/fixtures.js';
import { pollFor } from '../helpers/poll.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhookReceiver.js';
import { countingSql } from '../helpers/countingSql.js';

// What the service sends: a real verify run with a real mismatch becomes the POSTed document
// (type, run id, counts, classes, link to the stored run); the monitor alerts on a read model
// whose lease nobody holds, once per episode, and on a missing slot.

const db = useTestDatabase(import.meta.url);
const CONSOLE = 'https://hindsight.internal:9464';
let hs: Hindsight;
let hook: WebhookReceiver;

beforeAll(async () => {
  hs = await prepareStore(db, readModelConfig());
  hook = await startWebhookReceiver((n) => (n === 0 ? 500 : 200));
});
afterAll(async () => {
  await hook?.close();
});

function withAlerts(base: ConfigInput, alerts: Record<string, unknown> = {}) {
  return resolveConfig({ ...base, alerts: { webhooks: [{ url: hook.url }], consoleUrl: `${CONSOLE}/`, retries: 3, ...alerts } });
}

function alerterFor(config: ReturnType<typeof withAlerts>) {
  const logs: AlerterLogEntry[] = [];
  return { logs, alerter: createAlerter(config.alerts!, { instance: 'test', backoffMs: 10, onLog: (e) => logs.push(e) }) };
}


describe('alerts from a verify run', () => {
  test('a mismatch behind hindsight\'s back: POSTed (retried after a 500) with the type, run, counts, classes and the console link', async () => {
    for (const id of [1, 2, 3]) {
      await hs.transaction(db.pool, async (tx) => {
        await (tx.db as pg.PoolClient).query('INSERT INTO accounts (id, balance) VALUES ($1, 10)', [id]);
        await tx.record('account', id, 'account.credited', { amount: 10 });
      });
    }
    await db.pool.query('UPDATE accounts SET balance = 99 WHERE id = 2'); // a write no event recorded
    const base = testConfig();
    base.aggregates = base.aggregates!.map((a) => (a.type === 'account' ? { ...a, columns: { balance: 'balance' } } : a)); // the credits project no owner
    const config = withAlerts(base);
    const report = await verify(config, { connectionString: db.url, types: ['account'] });
    expect(report.outcome).toBe('mismatches');
    const check = { ...config.schedules[0], id: 'account/full/projection/0 2 * * *' } as Parameters<typeof runAlerts>[0];

    const { alerter, logs } = alerterFor(config);
    for (const input of runAlerts(check, report, config.alerts!.consoleUrl)) alerter.alert(input);
    await pollFor('the retried POST', async () => (hook.received.length >= 2 ? true : undefined));
    await alerter.stop();

    expect(hook.received.map((r) => r.json.id)).toEqual([hook.received[0]!.json.id, hook.received[0]!.json.id]);
    const type = report.types[0]!;
    expect(type.historyId).toEqual(expect.any(Number));
    expect(hook.received[1]!.json).toMatchObject({
      kind: 'verify.mismatches',
      instance: 'test',
      type: 'account',
      check: 'account/full/projection/0 2 * * *',
      run: { runId: report.runId, historyId: type.historyId, outcome: 'mismatches', counts: { compared: 3, matched: 2, mismatched: 1 }, classCounts: type.classCounts },
      link: `${CONSOLE}/verify/run?id=${type.historyId}`,
      detail: expect.stringMatching(/1 of 3 account aggregates differ from its events/),
    });
    expect(Object.values(hook.received[1]!.json.run.classCounts)).toEqual([1]);
    expect(logs.map((l) => l.message).join('\n')).toMatch(/HTTP 500; retry 1 of 3[\s\S]*delivered/);
  });

  test('a clean or empty type raises nothing; missed ticks become one alert per check', () => {
    const report = { runId: 'r', outcome: 'clean' as const, startedAt: '', finishedAt: '', types: [{ aggregateType: 'account', outcome: 'clean' }] } as never;
    expect(runAlerts({ id: 'c' } as never, report, CONSOLE)).toEqual([]);
    const tick = (iso: string, detail?: string) => ({ checkId: 'c', tick: new Date(iso), event: 'missed' as const, detail });
    expect(missedAlert('c', [tick('2026-02-03T10:00:00Z')])!.detail).toBe('check c: the tick at 2026-02-03T10:00:00.000Z was missed: no instance was running');
    expect(missedAlert('c', [tick('2026-02-03T10:00:00Z'), tick('2026-02-03T10:01:00Z'), tick('2026-02-03T10:01:00Z', 'and 40 more ticks')])!.detail).toMatch(/42 ticks since 2026-02-03T10:00:00.000Z/);
  });
});

describe('the monitor', () => {
  test('a read model whose lease expired long ago: one alert, again only after it was held and lost again', async () => {
    hook.received.length = 0;
    hook.answer(() => 200);
    const config = withAlerts(readModelConfig(), { leaseUnheldSeconds: 60 });
    await db.pool.query(`INSERT INTO hindsight.leases (name, owner, acquired_at, expires_at) VALUES ('read-model:account_balances', 'gone', now() - interval '1 hour', now() - interval '10 minutes')`);
    await db.pool.query(`INSERT INTO hindsight.leases (name, owner, acquired_at, expires_at) VALUES ('read-model:customer_names', 'alive', now(), now() + interval '1 hour')`);
    const { alerter } = alerterFor(config);
    const { sql, readings } = countingSql(db.pool, 'unnest($1::text[]) AS n(name)');
    const stop = new AbortController();
    const monitor = startMonitor(config, { sql, alert: alerter.alert, intervalMs: 20, signal: stop.signal });
    try {
      await pollFor('the lease alert', async () => (hook.received.length >= 1 ? true : undefined));
      const seen = readings();
      await pollFor('five more readings', async () => (readings() >= seen + 5 ? true : undefined));
      expect(hook.received).toHaveLength(1); // still unheld: not alerted again
      expect(hook.received[0]!.json).toMatchObject({ kind: 'lease.unheld', type: 'account', readModel: 'account_balances', link: `${CONSOLE}/` });
      expect(hook.received[0]!.json.detail).toMatch(/read model account_balances for 6\d\d s, over alerts.leaseUnheldSeconds \(60\)/);

      await db.pool.query(`UPDATE hindsight.leases SET expires_at = now() + interval '1 hour' WHERE name = 'read-model:account_balances'`);
      const held = readings();
      await pollFor('a reading while it is held', async () => (readings() >= held + 2 ? true : undefined));
      await db.pool.query(`UPDATE hindsight.leases SET expires_at = now() - interval '5 minutes' WHERE name = 'read-model:account_balances'`);
      await pollFor('the second episode', async () => (hook.received.length >= 2 ? true : undefined));
      expect(hook.received[1]!.json.id).not.toBe(hook.received[0]!.json.id);
      expect(hook.received.every((r) => r.json.readModel === 'account_balances')).toBe(true);
    } finally {
      stop.abort();
      await monitor.done;
      await alerter.stop();
    }
  });

  test('no lease row at all: alerted once it has been missing for longer than leaseUnheldSeconds; a missing slot too', async () => {
    hook.received.length = 0;
    await db.pool.query(`DELETE FROM hindsight.leases`);
    const base = readModelConfig();
    base.aggregates = base.aggregates!.map((a) => (a.type === 'ledger-line' ? { ...a, capture: 'listener' as const } : a));
    const config = withAlerts({ ...base, replication: { slot: `hs_alerts_${Math.random().toString(36).slice(2, 10)}`, publication: 'hs_alerts' } }, { leaseUnheldSeconds: 0.3 });
    const { alerter } = alerterFor(config);
    const stop = new AbortController();
    const started = Date.now();
    const monitor = startMonitor(config, { sql: toSql(db.pool), alert: alerter.alert, intervalMs: 20, signal: stop.signal });
    try {
      await pollFor('three alerts', async () => (hook.received.length >= 3 ? true : undefined));
      const byKind = hook.received.map((r) => `${r.json.kind} ${r.json.readModel ?? ''}`.trim()).sort();
      expect(byKind).toEqual(['lease.unheld account_balances', 'lease.unheld customer_names', 'slot.missing']);
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      expect(hook.received.find((r) => r.json.kind === 'slot.missing')!.json.detail).toMatch(/replication slot hs_alerts_\w+ is missing/);
    } finally {
      stop.abort();
      await monitor.done;
      await alerter.stop();
    }
  });
});

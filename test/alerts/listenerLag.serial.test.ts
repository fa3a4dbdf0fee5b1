import { afterAll, beforeAll, expect, test } from 'vitest';
import { createAlerter } from '../../src/alerts/alerter.js';
import { startMonitor } from '../../src/alerts/monitor.js';
import { resolveConfig, type ResolvedConfig } from '../../src/config/resolve.js';
import { toSql } from '../../src/db/queryable.js';
import { backfill } from '../../src/replication/backfill.js';
import { replicationStatus, setupReplication } from '../../src/replication/setup.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, testConfig } from '../helpers/fixtures.js';
import { pollFor } from '../helpers/poll.js';
import { teardownEventually } from '../helpers/replication.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhookReceiver.js';
import { countingSql } from '../helpers/countingSql.js';

// Serial: it creates a replication slot (cluster-wide; creating one waits for every running
// write transaction in the cluster), and the lag it measures is WAL written by the whole
// cluster. The monitor alerts on a real slot that no listener consumes while legacy writes
// pile up WAL behind it: once per episode, again after the slot caught up and fell behind.

const db = useTestDatabase(import.meta.url);
const LIMIT = 256 * 1024;
let hook: WebhookReceiver;
let config: ResolvedConfig;

beforeAll(async () => {
  const base = testConfig();
  base.aggregates = base.aggregates!.map((a) => (a.type === 'account' ? { ...a, capture: 'listener' as const } : a));
  const slot = `hs_lag_${Math.random().toString(36).slice(2, 10)}`;
  hook = await startWebhookReceiver();
  config = resolveConfig({ ...base, replication: { slot, publication: 'hs_lag' }, alerts: { webhooks: [{ url: hook.url }], listenerLagBytes: LIMIT } });
  await prepareStore(db, base);
  await setupReplication(config, { connectionString: db.url });
  await backfill(config, { connectionString: db.url });
});
afterAll(async () => {
  await hook?.close();
  if (config) await teardownEventually(db.pool, config);
});


let nextId = 1;
/** About 600 KB of WAL: 2,000 new accounts in the captured legacy table (replica identity full). */
async function legacyWrites(): Promise<void> {
  await db.pool.query(`INSERT INTO accounts (id, owner) SELECT g, repeat('x', 200) FROM generate_series($1::bigint, $1::bigint + 1999) g`, [nextId]);
  nextId += 2000;
}

async function catchUp(): Promise<void> {
  await db.pool.query(`SELECT pg_replication_slot_advance($1::text, pg_current_wal_lsn())`, [config.replication.slot]);
}

test('an unconsumed slot over alerts.listenerLagBytes: one listener.lag alert naming the bytes, and a second only after it caught up and fell behind again', async () => {
  await catchUp();
  const alerter = createAlerter(config.alerts!, { instance: 'test', backoffMs: 10 });
  const { sql, readings } = countingSql(db.pool, 'FROM pg_replication_slots WHERE slot_name');
  const stop = new AbortController();
  const monitor = startMonitor(config, { sql, alert: alerter.alert, intervalMs: 20, signal: stop.signal });
  const more = async (what: string, n: number) => {
    const seen = readings();
    await pollFor(what, async () => (readings() >= seen + n ? true : undefined));
  };
  try {
    await more('readings of the caught-up slot', 3);
    expect(hook.received).toEqual([]); // under the limit: nothing

    await legacyWrites();
    await pollFor('the lag alert', async () => (hook.received.length >= 1 ? true : undefined));
    await more('more readings while it still lags', 5);
    expect(hook.received).toHaveLength(1); // still lagging: not alerted again
    const first = hook.received[0]!.json;
    expect(first.kind).toBe('listener.lag');
    const match = /^the listener is (\d+) bytes of WAL behind, over alerts\.listenerLagBytes \(262144\); no listener is connected$/.exec(first.detail);
    expect(match, first.detail).not.toBeNull();
    const bytes = Number(match![1]);
    expect(bytes).toBeGreaterThan(LIMIT);
    expect(bytes).toBeLessThanOrEqual((await replicationStatus(toSql(db.pool), config)).lagBytes!);

    await catchUp();
    await more('readings of the caught-up slot', 3);
    expect(hook.received).toHaveLength(1);

    await legacyWrites();
    await pollFor('the second episode', async () => (hook.received.length >= 2 ? true : undefined));
    await more('more readings while it lags again', 5);
    expect(hook.received.map((r) => r.json.kind)).toEqual(['listener.lag', 'listener.lag']);
    expect(hook.received[1]!.json.id).not.toBe(first.id);
  } finally {
    stop.abort();
    await monitor.done;
    await alerter.stop();
  }
});

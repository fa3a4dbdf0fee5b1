import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createAlerter } from '../../src/alerts/alerter.js';
import { startMonitor } from '../../src/alerts/monitor.js';
import { resolveConfig, type ResolvedConfig } from '../../src/config/resolve.js';
import { backfill } from '../../src/replication/backfill.js';
import { setupReplication } from '../../src/replication/setup.js';
import { probeServer } from '../helpers/capabilities.js';
import { runBin, scratchDir } from '../helpers/cli.js';
import { useTestDatabase, usePrivilegedServer } from '../helpers/database.js';
import { prepareStore, testConfig } from '../helpers/fixtures.js';
import { pollFor } from '../helpers/poll.js';
import { teardownEventually } from '../helpers/replication.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhookReceiver.js';
import { countingSql } from '../helpers/countingSql.js';

// Serial: it lowers max_slot_wal_keep_size for the whole cluster (ALTER SYSTEM, a superuser
// right) until the server drops the WAL a real slot still needs, so the slot is really lost
// (wal_status 'lost'). The setting is restored whatever happens. Without a superuser
// DATABASE_URL the file runs on an embedded server of its own (usePrivilegedServer).

const server = usePrivilegedServer();
const db = useTestDatabase(import.meta.url, { url: server });
let hook: WebhookReceiver;
let config: ResolvedConfig;
let changedSetting = false;

const slot = `hs_lost_${Math.random().toString(36).slice(2, 10)}`;
const publication = 'hs_lost';

beforeAll(async () => {
  const capabilities = await probeServer(server());
  if (!capabilities.superuser) throw new Error(`the slot.lost test needs a superuser (ALTER SYSTEM SET max_slot_wal_keep_size); ${server()} is not one`);
  const base = testConfig();
  base.aggregates = base.aggregates!.map((a) => (a.type === 'account' ? { ...a, capture: 'listener' as const } : a));
  hook = await startWebhookReceiver();
  config = resolveConfig({ ...base, replication: { slot, publication }, alerts: { webhooks: [{ url: hook.url }] } });
  await prepareStore(db, base);
  await setupReplication(config, { connectionString: db.url });
  await backfill(config, { connectionString: db.url });
});

async function restoreSetting(): Promise<void> {
  if (!changedSetting) return;
  await db.pool.query(`ALTER SYSTEM RESET max_slot_wal_keep_size`);
  await db.pool.query(`SELECT pg_reload_conf()`);
  changedSetting = false;
}

afterAll(async () => {
  try {
    await restoreSetting();
  } finally {
    await hook?.close();
    if (config) await teardownEventually(db.pool, config);
  }
});


async function walStatus(): Promise<string | null> {
  const { rows } = await db.pool.query<{ wal_status: string | null }>(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
  return rows[0]?.wal_status ?? null;
}

test('a slot the server really lost (max_slot_wal_keep_size passed): one slot.lost alert, and replication status exits 1 naming it', async () => {
  let id = 1;
  try {
    changedSetting = true;
    await db.pool.query(`ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`);
    await db.pool.query(`SELECT pg_reload_conf()`);
    await pollFor('the reloaded max_slot_wal_keep_size', async () => {
      const { rows } = await db.pool.query<{ v: string }>(`SELECT current_setting('max_slot_wal_keep_size') AS v`);
      return rows[0]!.v === '1MB' ? true : undefined;
    });
    expect(await walStatus()).not.toBe('lost');

    // Legacy writes the slot retains, new segments, and checkpoints that remove the old ones.
    await pollFor(
      "the slot's wal_status lost",
      async () => {
        await db.pool.query(`INSERT INTO accounts (id, owner) SELECT g, repeat('x', 200) FROM generate_series($1::bigint, $1::bigint + 999) g`, [id]);
        id += 1000;
        await db.pool.query(`SELECT pg_switch_wal()`);
        await db.pool.query(`CHECKPOINT`);
        return (await walStatus()) === 'lost' ? true : undefined;
      },
      { explain: async () => `wal_status is ${await walStatus()}` },
    );
  } finally {
    await restoreSetting();
  }
  await pollFor('max_slot_wal_keep_size back to its default', async () => {
    const { rows } = await db.pool.query<{ v: string }>(`SELECT current_setting('max_slot_wal_keep_size') AS v`);
    return rows[0]!.v === '-1' ? true : undefined;
  });

  const alerter = createAlerter(config.alerts!, { instance: 'test', backoffMs: 10 });
  const { sql, readings } = countingSql(db.pool, 'FROM pg_replication_slots WHERE slot_name');
  const stop = new AbortController();
  const monitor = startMonitor(config, { sql, alert: alerter.alert, intervalMs: 20, signal: stop.signal });
  try {
    await pollFor('the slot.lost alert', async () => (hook.received.length >= 1 ? true : undefined));
    const seen = readings();
    await pollFor('more readings of the lost slot', async () => (readings() >= seen + 5 ? true : undefined));
  } finally {
    stop.abort();
    await monitor.done;
    await alerter.stop();
  }
  expect(hook.received.map((r) => r.json.kind)).toEqual(['slot.lost']); // once, and no lag or missing alert besides
  expect(hook.received[0]!.json.detail).toBe(`the replication slot ${slot} is lost (wal_status lost): changes were dropped; re-backfill and verify`);

  // The built bin, as cron runs it: exit 1 (a check found a problem), the slot named lost.
  const dir = await scratchDir('slot-lost');
  const file = path.join(dir, 'hindsight.config.json');
  await fs.writeFile(file, JSON.stringify({ replication: { slot, publication }, aggregates: [{ type: 'account', table: 'accounts', key: { column: 'id', type: 'bigint' }, capture: 'listener' }] }));
  const status = await runBin(['replication', 'status', '--config', file, '--database-url', db.url]);
  expect(status.code, status.stderr).toBe(1);
  expect(status.stdout).toContain(`slot ${slot}: lost`);
  expect(status.stdout).toContain('wal_status lost');
  expect(status.stdout).toContain('PROBLEM: the slot is lost: re-backfill and verify required');
  const json = await runBin(['replication', 'status', '--json', '--config', file, '--database-url', db.url]);
  expect(json.code).toBe(1);
  expect(JSON.parse(json.stdout)).toMatchObject({ slot, health: 'lost', walStatus: 'lost', problems: ['the slot is lost: re-backfill and verify required'] });
});

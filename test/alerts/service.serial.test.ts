import { afterAll, beforeAll, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { startService, type ServiceLogEntry } from '../../src/service/runService.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, readModelConfig } from '../helpers/fixtures.js';
import { pollFor } from '../helpers/poll.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhookReceiver.js';

// Serial: it runs the read-model updater, whose gap-safe reads wait for every open
// transaction in the cluster. The wiring of startService: its monitor's alerts reach the
// webhook, and its log carries each delivery's outcome.

const db = useTestDatabase(import.meta.url);
let hook: WebhookReceiver;

beforeAll(async () => {
  await prepareStore(db, readModelConfig());
  hook = await startWebhookReceiver((n) => (n === 0 ? 500 : 200));
});
afterAll(async () => {
  await hook?.close();
});

test('hindsight run sends what its monitor sees (a missing slot), retried after a 500, and logs it without the headers', async () => {
  const base = readModelConfig();
  base.aggregates = base.aggregates!.map((a) => (a.type === 'ledger-line' ? { ...a, capture: 'listener' as const } : a));
  const config = resolveConfig({
    ...base,
    replication: { slot: `hs_alerts_svc_${Math.random().toString(36).slice(2, 10)}`, publication: 'hs_alerts_svc' },
    alerts: { webhooks: [{ url: hook.url, headers: { authorization: 'Bearer never-logged' } }] },
  });
  const logs: ServiceLogEntry[] = [];
  const service = await startService(config, { connectionString: db.url, only: ['project'], alerts: { monitorIntervalMs: 50, backoffMs: 10 }, onLog: (e) => logs.push(e) });
  try {
    await pollFor('the retried slot alert', async () => (hook.received.length >= 2 ? true : undefined));
    expect(hook.received.map((r) => r.json.kind)).toEqual(['slot.missing', 'slot.missing']);
    expect(hook.received[1]!.json.instance).toBe(service.instance);
  } finally {
    await service.stop();
  }
  const alertLines = logs.filter((l) => l.component === 'alerts').map((l) => l.message);
  expect(alertLines.join('\n')).toMatch(/alert slot.missing: the replication slot[\s\S]*delivered \(HTTP 200, after 1 retries\)/);
  expect(logs.map((l) => l.message).join('\n')).not.toContain('never-logged');
});

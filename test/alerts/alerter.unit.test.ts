import { afterEach, describe, expect, test } from 'vitest';
import { createAlerter, type AlerterLogEntry } from '../../src/alerts/alerter.js';
import { resolveAlerts } from '../../src/alerts/alertSpec.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { pollFor } from '../helpers/poll.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhookReceiver.js';

// The alerter against a real local HTTP server: retries after a 500, gives up after N, times
// out a receiver that never answers, never retries a 4xx, and never throws at its caller.

const SECRET = 'Bearer s3cret-token-value';
let receivers: WebhookReceiver[] = [];

afterEach(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  receivers = [];
});

async function receiver(...args: Parameters<typeof startWebhookReceiver>): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver(...args);
  receivers.push(r);
  return r;
}

function alerterFor(url: string | string[], settings: { retries?: number; timeoutMs?: number; events?: string[] } = {}) {
  const logs: AlerterLogEntry[] = [];
  const alerts = resolveConfig({
    alerts: {
      webhooks: [url].flat().map((u) => ({ url: u, headers: { authorization: SECRET }, ...(settings.events ? { events: settings.events } : {}) })),
      retries: settings.retries ?? 3,
      timeoutMs: settings.timeoutMs ?? 2000,
    },
  }).alerts!;
  const alerter = createAlerter(alerts, { instance: 'test-1', backoffMs: 10, maxBackoffMs: 50, onLog: (e) => logs.push(e) });
  return { alerter, logs, lines: () => logs.map((l) => `${l.level} ${l.message}`).join('\n') };
}

describe('alerter', () => {
  test('a 500 is retried: the second POST carries the same id and is logged as delivered', async () => {
    const hook = await receiver((n) => (n === 0 ? 500 : 200));
    const { alerter, logs, lines } = alerterFor(hook.url);
    alerter.alert({ kind: 'listener.lag', detail: 'behind' });
    await pollFor('the retried POST', async () => (hook.received.length >= 2 ? true : undefined));
    await alerter.stop();
    expect(hook.received).toHaveLength(2);
    const [first, second] = hook.received;
    expect(first!.json).toMatchObject({ kind: 'listener.lag', detail: 'behind', instance: 'test-1' });
    expect(second!.json.id).toBe(first!.json.id);
    expect(first!.json.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number.isNaN(Date.parse(first!.json.at))).toBe(false);
    expect(first!.headers['idempotency-key']).toBe(first!.json.id);
    expect(first!.headers.authorization).toBe(SECRET);
    expect(first!.headers['content-type']).toBe('application/json');
    expect(lines()).toMatch(/HTTP 500; retry 1 of 3/);
    expect(logs.at(-1)).toMatchObject({ level: 'info', message: expect.stringMatching(/delivered \(HTTP 200, after 1 retries\)/) });
    expect(lines()).not.toContain('s3cret');
  });

  test('a receiver that keeps answering 500 gets 1 + retries attempts, then one error line', async () => {
    const hook = await receiver(() => 500);
    const { alerter, logs } = alerterFor(hook.url, { retries: 2 });
    alerter.alert({ kind: 'slot.lost', detail: 'gone' });
    await pollFor('the give-up line', async () => logs.find((l) => l.level === 'error'));
    await alerter.stop();
    expect(hook.received).toHaveLength(3);
    expect(logs.filter((l) => l.level === 'error').map((l) => l.message)).toEqual([expect.stringMatching(/gave up after 3 attempts, the last one HTTP 500/)]);
  });

  test('a receiver that never answers times out, and is retried', async () => {
    const hook = await receiver((n) => (n === 0 ? 'hang' : 200));
    const { alerter, lines } = alerterFor(hook.url, { timeoutMs: 200 });
    alerter.alert({ kind: 'lease.unheld', detail: 'nobody' });
    await pollFor('the POST after the timeout', async () => (hook.received.length >= 2 ? true : undefined));
    await alerter.stop();
    expect(lines()).toMatch(/no answer within 200 ms; retry 1 of 3/);
    expect(lines()).toMatch(/delivered/);
  });

  test('a 4xx (not 429) is not retried; a 429 is', async () => {
    const hook = await receiver((n) => (n === 0 ? 404 : n === 1 ? 429 : 200));
    const { alerter, logs } = alerterFor(hook.url);
    alerter.alert({ kind: 'schedule.missed', detail: 'first' });
    await pollFor('the refusal', async () => logs.find((l) => l.level === 'error'));
    expect(logs.find((l) => l.level === 'error')!.message).toMatch(/refused with HTTP 404, not retried/);
    alerter.alert({ kind: 'schedule.missed', detail: 'second' });
    await pollFor('the 429 retried', async () => (hook.received.length >= 3 ? true : undefined));
    await alerter.stop();
    expect(hook.received.map((r) => r.json.detail)).toEqual(['first', 'second', 'second']);
  });

  test('never throws: an unreachable webhook is logged, and alert() returns before any POST', async () => {
    const closed = await receiver();
    const url = closed.url;
    await closed.close();
    receivers = [];
    const { alerter, logs } = alerterFor(url, { retries: 1 });
    const started = Date.now();
    expect(() => alerter.alert({ kind: 'verify.incomplete', detail: 'x' })).not.toThrow();
    expect(Date.now() - started).toBeLessThan(50);
    await pollFor('the give-up line', async () => logs.find((l) => l.level === 'error'));
    await alerter.stop();
    expect(logs.find((l) => l.level === 'error')!.message).toMatch(/gave up after 2 attempts, the last one fetch failed/);
    expect(logs.map((l) => l.message).join('\n')).not.toContain('s3cret');
  });

  test('a webhook gets only the kinds it asks for', async () => {
    const all = await receiver();
    const some = await receiver();
    const logs: AlerterLogEntry[] = [];
    const settings = resolveAlerts({
      webhooks: [{ url: all.url }, { url: some.url, events: ['slot.lost'] }],
      listenerLagBytes: 1,
      leaseUnheldSeconds: 1,
      timeoutMs: 1000,
      retries: 0,
    })!;
    const alerter = createAlerter(settings, { instance: 'i', onLog: (e) => logs.push(e) });
    alerter.alert({ kind: 'listener.lag', detail: 'a' });
    alerter.alert({ kind: 'slot.lost', detail: 'b' });
    await alerter.stop();
    expect(all.received.map((r) => r.json.kind).sort()).toEqual(['listener.lag', 'slot.lost']);
    expect(some.received.map((r) => r.json.kind)).toEqual(['slot.lost']);
  });

  test('stop() is bounded: a delivery still waiting is abandoned and logged', async () => {
    const hook = await receiver(() => 'hang');
    const { alerter, logs } = alerterFor(hook.url, { timeoutMs: 60_000 });
    alerter.alert({ kind: 'listener.lag', detail: 'x' });
    await pollFor('the POST', async () => (hook.received.length >= 1 ? true : undefined));
    const started = Date.now();
    await alerter.stop(100);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(logs.at(-1)!.message).toMatch(/abandoned at shutdown/);
  });
});

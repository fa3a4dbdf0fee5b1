import { describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';

// The alerts config: defaults, addresses checked at load, and header values (secrets) never
// repeated in an error.

const load = (alerts: unknown) => resolveConfig({ alerts });
const errorOf = (alerts: unknown): string => {
  try {
    load(alerts);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected the config to be refused');
};

describe('alerts config', () => {
  test('defaults, a trailing slash dropped from consoleUrl, and a webhook named by its origin only', () => {
    const alerts = load({ webhooks: [{ url: 'https://hooks.example.com/services/T0/B0/secretpath' }], consoleUrl: 'https://hs.internal:9464/' }).alerts!;
    expect(alerts).toMatchObject({ consoleUrl: 'https://hs.internal:9464', listenerLagBytes: 1024 ** 3, leaseUnheldSeconds: 120, timeoutMs: 5000, retries: 3 });
    expect(alerts.webhooks[0]).toMatchObject({ url: 'https://hooks.example.com/services/T0/B0/secretpath', label: 'webhook 1 (https://hooks.example.com)', events: undefined, headers: {} });
    expect(resolveConfig({}).alerts).toBeUndefined();
  });

  test('only http and https, no credentials in the URL, and the address is never repeated', () => {
    expect(errorOf({ webhooks: [{ url: 'ftp://files.example.com/x' }] })).toMatch(/alerts\.webhooks\[0\]\.url: a webhook is http:\/\/ or https:\/\/, not ftp:/);
    const credentials = errorOf({ webhooks: [{ url: 'https://bob:hunter2@hooks.example.com/x' }] });
    expect(credentials).toMatch(/holds credentials: put them in headers/);
    expect(credentials).not.toContain('hunter2');
    expect(errorOf({ webhooks: [{ url: 'not a url' }] })).toMatch(/not a URL/);
    expect(errorOf({ webhooks: [] })).toMatch(/alerts\.webhooks/);
    expect(errorOf({ webhooks: [{ url: 'https://h.example.com', events: ['verify.oops'] }] })).toMatch(/alerts\.webhooks\[0\]\.events\[0\]/);
    expect(errorOf({ webhooks: [{ url: 'https://h.example.com' }], consoleUrl: 'javascript:alert(1)' })).toMatch(/alerts\.consoleUrl: an absolute http/);
    expect(errorOf({ webhooks: [{ url: 'https://h.example.com' }], retries: -1 })).toMatch(/alerts\.retries/);
  });

  test('a bad header value is refused without showing it', () => {
    const wrongType = errorOf({ webhooks: [{ url: 'https://h.example.com', headers: { authorization: 12345678 } }] });
    expect(wrongType).toMatch(/alerts\.webhooks\[0\]\.headers\.authorization: a header value is a string/);
    expect(wrongType).not.toContain('12345678');
    const lineBreak = errorOf({ webhooks: [{ url: 'https://h.example.com', headers: { 'x-token': 'sec\nret-value' } }] });
    expect(lineBreak).toMatch(/cannot hold a line break/);
    expect(lineBreak).not.toContain('ret-value');
    expect(errorOf({ webhooks: [{ url: 'https://h.example.com', headers: { 'bad name': 'v' } }] })).toMatch(/not a valid HTTP header name/);
    expect(errorOf({ webhooks: [{ url: 'https://h.example.com', headers: { a: 'b' }, extra: 'sekrit' }] })).not.toContain('sekrit');
  });
});

import { describe, expect, test } from 'vitest';
import { parseCli } from '../../src/cli/parse.js';
import { isUsageError } from '../../src/errors.js';

async function usageError(args: string[]): Promise<string> {
  const error = await parseCli(args).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isUsageError(error)) throw new Error(`expected a usage error for ${args.join(' ')}, got ${String(error)}`);
  return error.message;
}

async function command(args: string[]) {
  const parsed = await parseCli(args);
  if (parsed.kind !== 'command') throw new Error('expected a command');
  return parsed;
}

describe('parsing the command line (no database)', () => {
  test('--help teaches: every command, the database rule and the exit codes', async () => {
    const parsed = await parseCli(['--help']);
    expect(parsed.kind).toBe('output');
    const text = (parsed as { text: string }).text.replace(/\s+/g, ' ');
    for (const word of ['migrate', 'db <action>', 'append', 'history', 'state', 'audit', 'no database configured', 'Exit codes']) {
      expect(text).toContain(word);
    }
  });

  test('a command --help shows its own options and examples', async () => {
    const parsed = await parseCli(['history', '--help']);
    expect((parsed as { text: string }).text).toMatch(/--from[\s\S]*--to[\s\S]*--tz[\s\S]*Europe\/Berlin/);
  });

  test('global options', async () => {
    const parsed = await command(['migrate', '--database-url', 'postgres://u:p@h/db', '--json', '--config', 'x.json']);
    expect(parsed.global).toEqual({ config: 'x.json', databaseUrl: 'postgres://u:p@h/db', embedded: false, json: true });
  });

  test('append: JSON payload, expected version, metadata flags, business time', async () => {
    const parsed = await command([
      'append', 'account', '42', 'account.credited', '--payload', '{"amount":100}', '--expected-version', '3',
      '--actor', 'ops', '--reason', 'refund', '--occurred-at', '2026-02-03T10:00:00+01:00',
    ]);
    expect(parsed.command).toEqual({
      name: 'append',
      aggregateType: 'account',
      aggregateId: '42',
      eventType: 'account.credited',
      payload: { amount: 100 },
      expectedVersion: 3,
      actor: 'ops',
      reason: 'refund',
      occurredAt: '2026-02-03T10:00:00+01:00',
    });
    expect((await command(['append', 'a', '1', 'e', '--payload', '{}', '--expected-version', 'none'])).command).toMatchObject({ expectedVersion: 'none' });
  });

  test('history: bare dates are midnight in --tz, and --to includes its whole day', async () => {
    const parsed = await command(['history', 'account', '42', '--from', '2026-02-03', '--to', '2026-02-17', '--tz', 'Europe/Berlin']);
    expect(parsed.command).toMatchObject({ from: '2026-02-02T23:00:00Z', to: '2026-02-17T23:00:00Z', tz: 'Europe/Berlin' });
    const utc = await command(['history', 'account', '42', '--from', '2026-02-03T09:30']);
    expect(utc.command).toMatchObject({ from: '2026-02-03T09:30:00Z', to: undefined, tz: 'UTC' });
  });

  test('state: --as-of and --at-sequence', async () => {
    expect((await command(['state', 'account', '1', '--as-of', '2026-02-10', '--tz', 'America/New_York'])).command).toMatchObject({ asOf: '2026-02-10T05:00:00Z' });
    expect((await command(['state', 'account', '1', '--at-sequence', '7'])).command).toMatchObject({ atSequence: 7, asOf: undefined });
  });

  test('audit takes an optional type and id', async () => {
    expect((await command(['audit'])).command).toEqual({ name: 'audit', aggregateType: undefined, aggregateId: undefined });
    expect((await command(['audit', 'account', '7'])).command).toEqual({ name: 'audit', aggregateType: 'account', aggregateId: '7' });
  });

  test.each([
    [[], /give a command/],
    [['frobnicate'], /Unknown argument: frobnicate/],
    [['db', 'explode'], /Invalid values/],
    [['state', 'account'], /Not enough non-option arguments/],
    [['append', 'account', '1', 'account.credited'], /Missing required argument: payload/],
    [['append', 'account', '1', 'account.credited', '--payload', '{amount: 1}'], /--payload is not valid JSON/],
    [['append', 'a', '1', 'e', '--payload', '{}', '--expected-version', 'latest'], /--expected-version must be a whole number, any, none or exists/],
    [['append', 'a', '1', 'e', '--payload', '{}', '--occurred-at', 'yesterday'], /"yesterday" is not a time/],
    [['history', 'account', '1', '--from', '2026-02-30'], /not a real date/],
    [['history', 'account', '1', '--tz', 'Mars/Olympus'], /unknown time zone "Mars\/Olympus"/],
    [['history', 'account', '1', '--from', '2026-02-17', '--to', '2026-02-03'], /--from .* must be before --to/],
    [['state', 'account', '1', '--as-of', '2026-02-01', '--at-sequence', '3'], /mutually exclusive/],
    [['state', 'account', '1', '--at-sequence', '0'], /--at-sequence must be a whole number from 1/],
    [['state', 'account', '1', '--bogus'], /Unknown argument: bogus/],
  ])('%j is a usage error', async (args, message) => {
    expect(await usageError(args as string[])).toMatch(message);
  });
});

describe('project', () => {
  test('--once, --status, read models, retry, lease ttl, batch size and gathering pause', async () => {
    expect((await command(['project'])).command).toEqual({ name: 'project', once: false, status: false, readModels: [], retryFailed: false, leaseTtlMs: undefined, batchSize: undefined, gatherMs: undefined });
    expect((await command(['project', '--status', '--read-model', 'a', '--read-model', 'b'])).command).toMatchObject({ status: true, readModels: ['a', 'b'] });
    expect((await command(['project', '--once', '--lease-ttl', '1.5', '--batch-size', '100', '--retry-failed'])).command).toMatchObject({ once: true, leaseTtlMs: 1500, batchSize: 100, retryFailed: true });
    expect(await usageError(['project', '--once', '--status'])).toMatch(/mutually exclusive/);
    expect(await usageError(['project', '--lease-ttl', '0'])).toMatch(/--lease-ttl must be a positive number/);
    expect(await usageError(['project', '--batch-size', '1.5'])).toMatch(/--batch-size must be a whole number/);
    expect((await command(['project', '--gather-ms', '0'])).command).toMatchObject({ gatherMs: 0 });
    expect((await command(['project', '--gather-ms', '20'])).command).toMatchObject({ gatherMs: 20 });
    expect(await usageError(['project', '--gather-ms', '-5'])).toMatch(/--gather-ms must be a whole number/);
  });
});

describe('rebuild', () => {
  test('a read model or --all, chunk size, checkpoint interval and lock timeout', async () => {
    expect((await command(['rebuild', 'balances'])).command).toEqual({
      name: 'rebuild',
      readModels: ['balances'],
      all: false,
      cancel: false,
      batchSize: undefined,
      checkpointEveryMs: undefined,
      lockTimeoutMs: undefined,
    });
    expect((await command(['rebuild', '--all', '--batch-size', '1000', '--checkpoint-every', '0', '--lock-timeout', '2.5'])).command).toMatchObject({
      all: true,
      batchSize: 1000,
      checkpointEveryMs: 0,
      lockTimeoutMs: 2500,
    });
    expect(await usageError(['rebuild'])).toMatch(/name a read model, or give --all/);
    expect(await usageError(['rebuild', 'a', '--all'])).toMatch(/not both/);
    expect(await usageError(['rebuild', 'a', '--checkpoint-every', '-1'])).toMatch(/--checkpoint-every must be a number of 0 or more, got "-1"/);
    expect(await usageError(['rebuild', 'a', '--checkpoint-every', 'soon'])).toMatch(/--checkpoint-every must be a number of 0 or more/);
  });
});

describe('replication, backfill and listen', () => {
  test('replication actions and their options', async () => {
    expect((await command(['replication', 'setup', '--lock-timeout', '2'])).command).toEqual({
      name: 'replication',
      action: 'setup',
      lockTimeoutMs: 2000,
      maxLagBytes: 1024 ** 3,
      maxLagSeconds: 300,
      maxCheckpointAgeSeconds: 300,
      yes: false,
      force: false,
    });
    expect((await command(['replication', 'status', '--max-lag-bytes', '1048576', '--max-lag-seconds', '30', '--max-checkpoint-age', '60'])).command).toMatchObject({
      action: 'status',
      maxLagBytes: 1048576,
      maxLagSeconds: 30,
      maxCheckpointAgeSeconds: 60,
    });
    // regression: without options status had no limits at all, so any lag exited 0
    expect((await command(['replication', 'status'])).command).toMatchObject({ maxLagBytes: 1024 ** 3, maxLagSeconds: 300, maxCheckpointAgeSeconds: 300 });
    expect((await command(['replication', 'teardown', '--yes'])).command).toMatchObject({ action: 'teardown', yes: true });
    expect(await usageError(['replication', 'start'])).toMatch(/Invalid values|Choices/);
    expect(await usageError(['replication', 'status', '--max-lag-bytes', '1e6'])).toMatch(/--max-lag-bytes must be a whole number/);
  });

  test('backfill and listen', async () => {
    expect((await command(['backfill', 'account', '--batch-size', '500', '--slot-wait', '60'])).command).toEqual({
      name: 'backfill',
      aggregateType: 'account',
      batchSize: 500,
      slotWaitMs: 60_000,
    });
    expect((await command(['listen'])).command).toEqual({ name: 'listen', groupMs: undefined, heartbeatMs: undefined });
    expect((await command(['listen', '--group-ms', '20', '--heartbeat', '0'])).command).toEqual({ name: 'listen', groupMs: 20, heartbeatMs: 0 });
    expect(await usageError(['listen', '--heartbeat', 'often'])).toMatch(/--heartbeat must be a number of 0 or more/);
    expect(await usageError(['backfill', '--slot-wait', '0'])).toMatch(/--slot-wait must be a positive number/);
  });

  test('console: loopback by default, --http host:port (IPv6 in brackets), --token', async () => {
    expect((await command(['console'])).command).toEqual({ name: 'console', http: '127.0.0.1:9464', token: undefined });
    expect((await command(['console', '--http', '[::1]:0', '--token', 's3cret'])).command).toEqual({ name: 'console', http: '[::1]:0', token: 's3cret' });
    expect(await usageError(['console', '--http', '9464'])).toMatch(/--http must be host:port, e.g. 127\.0\.0\.1:9464/);
    expect(await usageError(['console', '--http', 'localhost:70000'])).toMatch(/--http must be host:port/);
    expect(await usageError(['console', '--token', ' '])).toMatch(/--token must not be empty/);
    const help = await parseCli(['console', '--help']);
    expect((help as { text: string }).text).toMatch(/--http[\s\S]*--token[\s\S]*HINDSIGHT_HTTP_TOKEN/);
  });
});

describe('verify shared by workers, and run', () => {
  test('--workers takes a whole number; the chunk options need it', async () => {
    expect((await command(['verify', 'account', '--workers', '3', '--chunk-rows', '5000', '--chunk-lease', '2.5'])).command).toMatchObject({ workers: 3, chunkRows: 5000, chunkLeaseMs: 2500 });
    expect((await command(['verify', 'account'])).command).toMatchObject({ workers: undefined, chunkRows: undefined });
    expect(await usageError(['verify', 'account', '--chunk-rows', '5000'])).toMatch(/--chunk-rows applies to a shared run: give --workers N too/);
    expect(await usageError(['verify', 'account', '--workers', '0'])).toMatch(/--workers must be a whole number from 1/);
    expect((await command(['verify', 'account', '--pause-ms', '25'])).command).toMatchObject({ pauseMs: 25 });
    expect(await usageError(['verify', 'account', '--pause-ms', '-1'])).toMatch(/--pause-ms/);
  });

  test('run: defaults, --no-http, and --only checked part by part', async () => {
    expect((await command(['run'])).command).toMatchObject({ name: 'run', only: undefined, http: '127.0.0.1:9464', shutdownTimeoutMs: 30_000, logLevel: 'info' });
    expect((await command(['run', '--no-http', '--only', 'project,verify,project'])).command).toMatchObject({ http: undefined, only: ['project', 'verify'] });
    expect(await usageError(['run', '--shutdown-timeout', '0'])).toMatch(/--shutdown-timeout must be a positive number/);
    expect(await usageError(['run', '--log-level', 'loud'])).toMatch(/Invalid values|Choices/);
    expect((await command(['run', '--instance', 'web-1.eu:a'])).command).toMatchObject({ instance: 'web-1.eu:a' });
    expect(await usageError(['run', '--instance', 'a/b'])).toMatch(/--instance must be 1 to 100 letters, digits or _ \. : @ -, got "a\/b"/);
  });
});

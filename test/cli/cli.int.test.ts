import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, test } from 'vitest';
import { useTestDatabase } from '../helpers/database.js';
import { countEvents, LEGACY_TABLES } from '../helpers/fixtures.js';
import { runBin, runCli, scratchDir, writeTestConfig, type CliResult } from '../helpers/cli.js';

const db = useTestDatabase(import.meta.url);
let cwd: string;
let url: string;
let password: string;

beforeAll(async () => {
  cwd = await scratchDir('cli');
  await writeTestConfig(cwd);
  url = db.url;
  password = decodeURIComponent(new URL(url).password);
  await db.pool.query(LEGACY_TABLES);
});

const cli = (...args: string[]) => runCli([...args, '--database-url', url], { cwd });
const output = (r: CliResult) => r.stdout + r.stderr;

describe('the hindsight bin', () => {
  test('answers --help from a fresh build', async () => {
    const result = await runBin(['--help'], { cwd });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('hindsight <command>');
  });

  test('a command that needs a database exits 2 with "no database configured" when none is given', async () => {
    const empty = await scratchDir('nodb');
    const result = await runBin(['audit'], { cwd: empty });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no database configured');
  });

  test('regression: a config outside the project imports "hindsight" and "zod" and the built bin uses it', async () => {
    const folder = await fs.mkdtemp(path.join(os.tmpdir(), 'hindsight-bin-outside-'));
    try {
      const file = path.join(folder, 'hindsight.config.ts');
      await fs.writeFile(
        file,
        `import { z } from 'zod';
         import { defineConfig, defineEvent } from 'hindsight';
         const Credited = defineEvent('account.credited', z.object({ amount: z.number() }));
         export default defineConfig({ schema: 'outside_config', aggregates: [{ type: 'account', table: 'accounts', key: { column: 'id', type: 'bigint' }, events: [Credited] }] });`,
      );
      const result = await runBin(['migrate', '--config', file, '--database-url', url], { cwd: folder });
      expect(result.stderr).not.toMatch(/Cannot find module/);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('schema "outside_config"');
    } finally {
      await fs.rm(folder, { recursive: true, force: true });
    }
  });

  test('a usage error exits 2 and points at --help', async () => {
    const result = await runBin(['state', 'account'], { cwd });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--help/);
  });
});

describe('commands against a database', () => {
  test('migrate creates the schema, then finds it up to date', async () => {
    const first = await cli('migrate');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/applied \d+ migration\(s\) to schema "hindsight": 0001_event_store, /);
    const second = await cli('migrate', '--json');
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ applied: [], schema: 'hindsight' });
  });

  test('append validates, records metadata, and exits 1 on a stale expected version', async () => {
    const ok = await cli('append', 'account', '7', 'account.credited', '--payload', '{"amount": 250}', '--actor', 'ops', '--reason', 'manual correction', '--occurred-at', '2026-02-05T10:00:00+01:00', '--json');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ aggregateId: '7', sequences: [1], version: 1 });

    const before = await countEvents(db.pool);
    const invalid = await cli('append', 'account', '7', 'account.credited', '--payload', '{"amount": "lots"}');
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/invalid account\.credited event: events\[0\]\.payload\.amount/);
    const unknownType = await cli('append', 'account', '7', 'account.frozen', '--payload', '{}');
    expect(unknownType.code).toBe(2);
    expect(unknownType.stderr).toMatch(/"account\.frozen" is not an event type of account/);
    const stale = await cli('append', 'account', '7', 'account.credited', '--payload', '{"amount": 1}', '--expected-version', '0');
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/expected version 0, but it is at version 1/);
    expect(await countEvents(db.pool)).toBe(before);
  });

  test('history answers when, what, who, why and which fields changed, in the chosen zone', async () => {
    await cli('append', 'account', '7', 'account.debited', '--payload', '{"amount": 50}', '--actor', 'card-processor', '--reason', 'card payment', '--occurred-at', '2026-02-17T23:30:00.123456Z');
    await cli('append', 'account', '7', 'account.debited', '--payload', '{"amount": 1}', '--actor', 'fee-job', '--occurred-at', '2026-02-18T01:00:00Z');
    const result = await cli('history', 'account', '7', '--from', '2026-02-03', '--to', '2026-02-17', '--tz', 'Europe/Berlin');
    expect(result.code).toBe(0);
    // 23:30 UTC on the 17th is 00:30 on the 18th in Berlin: outside "--to 2026-02-17" there
    expect(result.stdout).toContain('2026-02-05T10:00:00.000000+01:00  #1  account.credited');
    expect(result.stdout).toContain('by ops: manual correction');
    expect(result.stdout).toContain('balance: 0 -> 250');
    expect(result.stdout).not.toContain('card payment');

    const utc = await cli('history', 'account', '7', '--from', '2026-02-03', '--to', '2026-02-17', '--json');
    const ledger = JSON.parse(utc.stdout);
    expect(ledger.events.map((e: { sequence: number }) => e.sequence)).toEqual([1, 2]);
    expect(ledger.events[1]).toMatchObject({
      occurredAt: '2026-02-17T23:30:00.123456+00:00',
      type: 'account.debited',
      actor: 'card-processor',
      reason: 'card payment',
      changes: [{ field: 'balance', from: 250, to: 200 }],
    });
  });

  test("a short command loads neither the listener's replication package nor knex (issue 15: history loaded every command's dependencies)", async () => {
    // A config that imports the package's entry point, as a user's `from 'hindsight'` does.
    const dir = await scratchDir('cli-loads');
    const repo = path.resolve(import.meta.dirname, '../..');
    await fs.writeFile(
      path.join(dir, 'hindsight.config.ts'),
      `import { defineConfig } from ${JSON.stringify(path.join(repo, 'dist/src/index.js'))};
import { testConfig } from ${JSON.stringify(path.join(repo, 'test/helpers/fixtures.ts'))};
export default defineConfig(testConfig());
`,
    );
    // Lists the npm packages the process loaded (CommonJS ones, as these two are) when it exits.
    const probe = path.join(dir, 'loaded-packages.mjs');
    await fs.writeFile(
      probe,
      `import { createRequire } from 'node:module';
const cache = createRequire(import.meta.url).cache;
process.on('exit', () => {
  const names = Object.keys(cache).map((file) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(file)?.[1]).filter(Boolean);
  process.stderr.write('loaded packages: ' + JSON.stringify([...new Set(names)]) + '\\n');
});
`,
    );
    const result = await runBin(['history', 'account', '7', '--database-url', url], { cwd: dir, env: { NODE_OPTIONS: `--import=${pathToFileURL(probe).href}` } });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('#1  account.credited');
    const loaded = JSON.parse(/loaded packages: (.*)/.exec(result.stderr)![1]!) as string[];
    expect(loaded).toContain('pg');
    expect(loaded).not.toContain('pg-logical-replication');
    expect(loaded).not.toContain('knex');
  });

  test('state now, as of a date, before the first event, and at a sequence', async () => {
    const now = await cli('state', 'account', '7', '--json');
    expect(now.code).toBe(0);
    expect(JSON.parse(now.stdout)).toMatchObject({ found: true, version: 3, state: { balance: 199 } });
    const asOf = await cli('state', 'account', '7', '--as-of', '2026-02-10');
    expect(asOf.code).toBe(0);
    expect(asOf.stdout).toContain('as of 2026-02-10T00:00:00.000000+00:00: version 1 of 3');
    const before = await cli('state', 'account', '7', '--as-of', '2026-01-01');
    expect(before.code).toBe(1);
    expect(before.stdout).toContain('no history before 2026-01-01T00:00:00.000000+00:00');
    const at = await cli('state', 'account', '7', '--at-sequence', '2', '--json');
    expect(JSON.parse(at.stdout)).toMatchObject({ version: 2, state: { balance: 200 } });
    const nothing = await cli('state', 'account', '404');
    expect(nothing.code).toBe(1);
  });

  test('composite keys take a JSON array on the command line', async () => {
    const appended = await cli('append', 'ledger-line', '["eu", 3]', 'ledger_lines.inserted', '--payload', '{"after": {"amount": "12.50"}}', '--json');
    expect(appended.code).toBe(0);
    expect(JSON.parse(appended.stdout).aggregateId).toBe('["eu", "3"]');
    const bad = await cli('state', 'ledger-line', 'eu-3');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/composite key \(region, line\): give the id as a JSON array/);
  });

  test('audit of an intact log exits 0', async () => {
    const result = await cli('audit');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/every hash chain is intact/);
  });

  test('an unknown aggregate type is a config error naming the declared ones', async () => {
    const result = await cli('state', 'invoice', '1');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown aggregate type "invoice"; the config declares: account, customer, ledger-line/);
  });
});

describe('passwords never appear in output', () => {
  test('not in results, errors, JSON or connection failures', async () => {
    const results = [
      await cli('migrate'),
      await cli('history', 'account', '7', '--json'),
      await cli('append', 'account', '7', 'account.credited', '--payload', '{"amount": -1}', '--json'),
      await runCli(['audit', '--database-url', url.replace(password, `${password}-wrong`)], { cwd }),
      await runCli(['migrate', '--database-url', `postgresql://postgres:${password}@127.0.0.1:1/nothing`], { cwd }),
      await runCli(['audit'], { cwd, env: { DATABASE_URL: `postgres://x:${password}@256.256.256.256:5/x` } }),
    ];
    for (const result of results) expect(output(result)).not.toContain(password);
    expect(results[3]!.code).toBe(2);
    expect(output(results[3]!)).toMatch(/password authentication failed/);
    expect(results[4]!.code).toBe(2);
  });
});

describe('the embedded server commands', () => {
  // A project folder every OS user can reach: as root the server runs as "postgres".
  const projectDir = async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hindsight-project-'));
    await fs.chmod(dir, 0o755);
    return dir;
  };

  test('db start, url, status, a command with --embedded, and stop, with data kept in ./.hindsight', async () => {
    const project = await projectDir();
    const run = (...args: string[]) => runCli(args, { cwd: project });
    expect((await run('db', 'status')).code).toBe(1);
    const started = await run('db', 'start');
    try {
      expect(started.code).toBe(0);
      expect(started.stdout).toMatch(/embedded PostgreSQL running on 127\.0\.0\.1:\d+/);
      const shown = await run('db', 'url');
      expect(shown.stdout).toMatch(/^postgresql:\/\/postgres:\*\*\*\*@127\.0\.0\.1:\d+\/postgres/);
      const secret = (await fs.readFile(path.join(project, '.hindsight', 'password'), 'utf8')).trim();
      expect(output(shown)).not.toContain(secret);
      expect((await run('db', 'status')).code).toBe(0);
      const migrated = await run('migrate', '--embedded');
      expect(migrated.code).toBe(0);
      expect(output(migrated)).not.toContain(secret);
    } finally {
      expect((await run('db', 'stop')).code).toBe(0);
    }
    expect((await run('db', 'status')).stdout).toContain('is not running');
    // the data survives: a restart finds the migrated schema
    const again = await run('migrate', '--embedded');
    await run('db', 'stop');
    expect(again.stdout).toContain('up to date');
    await fs.rm(project, { recursive: true, force: true });
  });

  test.runIf(process.getuid?.() === 0)('as root, a project folder the postgres OS user cannot reach is a clear error', async () => {
    const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'hindsight-private-'));
    await fs.chmod(parent, 0o700);
    const project = path.join(parent, 'app');
    await fs.mkdir(project);
    const result = await runCli(['db', 'start'], { cwd: project });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/runs as the OS user "postgres", which cannot reach .*Run as an ordinary user/);
    await fs.rm(parent, { recursive: true, force: true });
  });
});

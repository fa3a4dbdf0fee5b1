import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { isConfigError } from '../../src/errors.js';
import { defineEvent } from '../../src/events/defineEvent.js';
import { defineProjector } from '../../src/projection/defineProjector.js';
import { testConfig } from '../helpers/fixtures.js';

const account = { type: 'account', table: 'accounts', key: { column: 'id', type: 'bigint' } };

function configError(input: unknown): string {
  try {
    resolveConfig(input, 'hindsight.config.ts');
  } catch (error) {
    if (isConfigError(error)) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('a valid config', () => {
  test('resolves with defaults, quoted identifiers and the generic events of each table', () => {
    const config = resolveConfig(testConfig());
    expect(config.schema).toBe('hindsight');
    expect(config.quotedSchema).toBe('"hindsight"');
    const accountType = config.aggregates.get('account')!;
    expect(accountType.capture).toBe('app');
    expect(accountType.table.quoted).toBe('"accounts"');
    expect([...accountType.events.keys()]).toEqual(
      expect.arrayContaining(['accounts.imported', 'accounts.inserted', 'accounts.updated', 'accounts.deleted', 'account.credited']),
    );
    expect(config.aggregates.get('ledger-line')!.key.map((k) => k.type.sql)).toEqual(['text', 'integer']);
  });

  test('hostile identifiers are quoted, never refused for their characters', () => {
    const config = resolveConfig({ schema: 'my "schema"; DROP', aggregates: [{ ...account, table: 'billing.Acc"ounts', key: { column: 'I"d', type: 'int' } }] });
    expect(config.quotedSchema).toBe('"my ""schema""; DROP"');
    expect(config.aggregates.get('account')!.table.quoted).toBe('"billing"."Acc""ounts"');
    expect(config.aggregates.get('account')!.key[0]!.quoted).toBe('"I""d"');
  });
});

describe('config errors name the key, what was expected and what was given', () => {
  test.each([
    ['a misspelt top-level key', { agregates: [] }, /agregates/],
    ['a key column type that is not allowed', { aggregates: [{ ...account, key: { column: 'id', type: 'jsonb' } }] }, /aggregates\[0\]\.key\[0\]\.type: jsonb cannot be an aggregate key column type; allowed: smallint, integer, bigint, uuid, text, varchar\(n\) or numeric\(p,s\)/],
    ['a numeric key without a scale', { aggregates: [{ ...account, key: { column: 'id', type: 'numeric' } }] }, /numeric has no declared scale, so 1 and 1\.0 would be different keys/],
    ['a wrong value type', { requireActor: 'yes' }, /requireActor: .*boolean.*\(given: "yes"\)/],
    ['a table name with two dots', { aggregates: [{ ...account, table: 'a.b.c' }] }, /aggregates\[0\]\.table: "a\.b\.c" has more than one dot/],
    ['an identifier over 63 bytes', { schema: 'x'.repeat(64) }, /schema: .*63-byte identifier limit/],
    ['an empty key list', { aggregates: [{ ...account, key: [] }] }, /aggregates\[0\]\.key/],
    ['a duplicate aggregate type', { aggregates: [account, account] }, /aggregates\[1\] \(account\): the aggregate type "account" is declared twice/],
    ['an event that is not a definition', { aggregates: [{ ...account, events: [{ type: 'account.credited' }] }] }, /aggregates\[0\]\.events\[0\]: expected an event definition made by defineEvent/],
    ['a domain event named like a generic one', { aggregates: [{ ...account, events: [defineEvent('accounts.updated', z.object({}))] }] }, /built-in generic events/],
    ['a projector for another type', { aggregates: [{ ...account, projector: defineProjector({ aggregateType: 'order', initial: {}, handlers: {} }) }] }, /its projector is for aggregate type "order"/],
    ['two columns mapped to one field', { aggregates: [{ ...account, columns: { a: 'x', b: { field: 'x' } } }] }, /two legacy columns map to the state field "x"/],
    ['a tolerance on a column not compared as numeric', { aggregates: [{ ...account, columns: { balance: { tolerance: '0.01' } } }] }, /columns\.balance: scale and tolerance need compare: "numeric"/],
    ['a tolerance that is not a decimal', { aggregates: [{ ...account, columns: { balance: { compare: 'numeric', tolerance: 'a cent' } } }] }, /tolerance/],
    ['both scale and tolerance', { aggregates: [{ ...account, columns: { balance: { compare: 'numeric', scale: 2, tolerance: 1 } } }] }, /give scale or tolerance, not both/],
    ['a precision on a non-timestamp rule', { aggregates: [{ ...account, columns: { at: { precision: 'second' } } }] }, /precision needs compare: "timestamp"/],
    ['an unknown precision', { aggregates: [{ ...account, columns: { at: { compare: 'timestamp', precision: 'fortnight' } } }] }, /columns\.at\.precision/],
    ['value renames on a numeric rule', { aggregates: [{ ...account, columns: { s: { compare: 'numeric', values: { A: 1 } } } }] }, /values \(a rename of legacy values\) compares text/],
    ['an ignore rule without a reason', { aggregates: [{ ...account, verify: { ignore: [{ expires: '2027-01-01', reason: '' }] } }] }, /verify\.ignore\[0\]\.reason: .*say why this divergence is accepted/],
    ['an ignore rule without a proper date', { aggregates: [{ ...account, verify: { ignore: [{ reason: 'known', expires: 'next year' }] } }] }, /verify\.ignore\[0\]\.expires: .*a date as YYYY-MM-DD/],
    ['an impossible expiry date', { aggregates: [{ ...account, verify: { ignore: [{ reason: 'known', expires: '2027-02-31' }] } }] }, /expires "2027-02-31" is not a date/],
    ['an ignore rule on a field the map does not have', { aggregates: [{ ...account, columns: { balance: 'balance' }, verify: { ignore: [{ field: 'blance', reason: 'typo', expires: '2027-01-01' }] } }] }, /verify\.ignore\[0\]: "blance" is not a state field of the column map \(balance\)/],
    ['an updatedAt that is not an identifier', { aggregates: [{ ...account, verify: { updatedAt: '' } }] }, /verify\.updatedAt/],
    ['a staging publication name that would be too long', { replication: { publication: 'p'.repeat(56) } }, /replication\.publication: at most 55 characters/],
    ['a slot name that would need quoting', { replication: { slot: 'My-Slot' } }, /replication\.slot: use 1-63 lower-case letters, digits and _/],
    ['a publication name with a quote in it', { replication: { publication: "x', publication_names 'y" } }, /replication\.publication: use 1-63 lower-case letters/],
    ['a mapping rule on an app type', { aggregates: [{ ...account, mappings: [{ column: 'status', becomes: 'x', event: 'e' }] }] }, /mappings\[0\]: mapping rules apply to row changes, so only to capture "listener" or "both" types/],
    [
      'a mapping rule to an undeclared event',
      { aggregates: [{ ...account, capture: 'listener', mappings: [{ column: 'status', becomes: 'active', event: 'account.activated' }] }] },
      /mappings\[0\]: event "account\.activated" is not one of this type's declared domain events/,
    ],
    [
      'a mapping rule to a generic event',
      { aggregates: [{ ...account, capture: 'listener', mappings: [{ column: 'status', becomes: 'active', event: 'accounts.updated' }] }] },
      /event "accounts\.updated" is not one of this type's declared domain events/,
    ],
    [
      'a mapping rule on a column the map leaves out',
      {
        aggregates: [
          { ...account, capture: 'listener', columns: { balance: 'balance' }, events: [defineEvent('account.frozen', z.object({}))], mappings: [{ column: 'status', becomes: 'frozen', event: 'account.frozen' }] },
        ],
      },
      /column "status" is not in this type's "columns" map or key/,
    ],
    [
      'mapping rules without full old rows',
      { aggregates: [{ ...account, capture: 'listener', replicaIdentity: 'default', events: [defineEvent('account.frozen', z.object({}))], mappings: [{ column: 'status', becomes: 'frozen', event: 'account.frozen' }] }] },
      /mapping rules need replicaIdentity "full"/,
    ],
    ['an unknown replica identity', { aggregates: [{ ...account, replicaIdentity: 'index' }] }, /aggregates\[0\]\.replicaIdentity/],
    ['an unknown capture mode', { aggregates: [{ ...account, capture: 'sometimes' }] }, /aggregates\[0\]\.capture/],
  ])('%s', (_what, input, message) => {
    const text = configError(input);
    expect(text).toMatch(message);
    expect(text).toContain('hindsight.config.ts');
  });

  test('a password in a wrongly placed URL is not echoed', () => {
    const text = configError({ aggregates: 'postgres://app:s3cret@db.internal/prod' });
    expect(text).not.toContain('s3cret');
    expect(text).toContain('****');
  });
});

// Loading a .ts config transpiles it and what it imports (with 'hindsight', the whole library):
// seconds on a loaded machine, so these tests get more than the unit project's 5 s.
describe('loading config files', { timeout: 60_000 }, () => {
  // Inside the repository, so that a config file's own imports (zod) resolve as in a user's project.
  const dir = async () => {
    const parent = path.resolve(import.meta.dirname, '../../node_modules/.cache');
    await fs.mkdir(parent, { recursive: true });
    return fs.mkdtemp(path.join(parent, 'hindsight-config-'));
  };
  const srcIndex = path.resolve(import.meta.dirname, '../../src/index.ts');

  test('a .ts config with event schemas and a projector, loaded without a build step', async () => {
    const folder = await dir();
    await fs.writeFile(
      path.join(folder, 'hindsight.config.ts'),
      `import { z } from 'zod';
       import { defineConfig, defineEvent, defineProjector } from ${JSON.stringify(srcIndex)};
       const Credited = defineEvent('account.credited', z.object({ amount: z.number() }));
       const projector = defineProjector<{ n: number }>({ aggregateType: 'account', initial: { n: 0 }, handlers: { 'account.credited': (s) => ({ n: s.n + 1 }) } });
       export default defineConfig({ schema: 'events', aggregates: [{ type: 'account', table: 'accounts', key: { column: 'id', type: 'bigint' }, events: [Credited], projector }] });`,
    );
    const config = await loadConfig(undefined, folder);
    expect(config.schema).toBe('events');
    expect(config.aggregates.get('account')!.events.has('account.credited')).toBe(true);
    expect(config.source).toBe('hindsight.config.ts');
  });

  test('a .json config', async () => {
    const folder = await dir();
    await fs.writeFile(path.join(folder, 'hindsight.config.json'), JSON.stringify({ embedded: true, aggregates: [account] }));
    const config = await loadConfig(undefined, folder);
    expect(config.embedded).toBe(true);
    expect(config.aggregates.has('account')).toBe(true);
  });

  test('broken JSON, a failing TS file and a missing --config file are clear errors', async () => {
    const folder = await dir();
    await fs.writeFile(path.join(folder, 'bad.json'), '{ "aggregates": [ }');
    await fs.writeFile(path.join(folder, 'bad.ts'), `throw new Error('config exploded');`);
    await expect(loadConfig('bad.json', folder)).rejects.toThrow(/bad\.json is not valid JSON/);
    await expect(loadConfig('bad.ts', folder)).rejects.toThrow(/cannot load .*bad\.ts: config exploded/);
    await expect(loadConfig('nowhere.ts', folder)).rejects.toThrow(/config file not found: .*nowhere\.ts/);
  });

  test('no config file at all gives the defaults', async () => {
    const config = await loadConfig(undefined, await dir());
    expect(config.aggregates.size).toBe(0);
    expect(config.source).toBeUndefined();
  });

  test('regression: a config outside any project cannot import the package (it imports "hindsight" and "zod" and loads)', async () => {
    // os.tmpdir() has no node_modules above it: before the loader's aliases this failed
    // with "Cannot find module 'hindsight'", as it did for npx and global installs.
    const folder = await fs.mkdtemp(path.join(os.tmpdir(), 'hindsight-outside-'));
    try {
      await fs.writeFile(
        path.join(folder, 'hindsight.config.ts'),
        `import { z } from 'zod';
         import { defineConfig, defineEvent } from 'hindsight';
         const Credited = defineEvent('account.credited', z.object({ amount: z.number() }));
         export default defineConfig({ aggregates: [{ type: 'account', table: 'accounts', key: { column: 'id', type: 'bigint' }, events: [Credited] }] });`,
      );
      const config = await loadConfig(undefined, folder);
      const credited = config.aggregates.get('account')!.events.get('account.credited')!;
      expect(credited.schema.safeParse({ amount: 1 }).success).toBe(true);
      expect(credited.schema.safeParse({ amount: 'one' }).success).toBe(false);
    } finally {
      await fs.rm(folder, { recursive: true, force: true });
    }
  });

  test('a plain `export default { ... }` config needs no import at all', async () => {
    const folder = await fs.mkdtemp(path.join(os.tmpdir(), 'hindsight-plain-'));
    try {
      await fs.writeFile(path.join(folder, 'hindsight.config.ts'), `export default { schema: 'audit', aggregates: [${JSON.stringify(account)}] };`);
      const config = await loadConfig(undefined, folder);
      expect(config.schema).toBe('audit');
      expect(config.aggregates.has('account')).toBe(true);
    } finally {
      await fs.rm(folder, { recursive: true, force: true });
    }
  });

  test('the example config in config/ loads', async () => {
    const config = await loadConfig(path.resolve(import.meta.dirname, '../../config/hindsight.config.ts'));
    expect([...config.aggregates.keys()]).toEqual(['account', 'subscription']);
  });
});

import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import type { Hindsight } from '../../src/hindsight.js';
import { createUpdater } from '../../src/readmodel/updater.js';
import { verify } from '../../src/verify/run.js';
import { prepareStore, readModelConfig } from '../helpers/fixtures.js';
import { useTestDatabase } from '../helpers/database.js';

// `verify --target read-model:<name>`: every read-model row against the fold of its
// events up to the sequence it records, and aggregates the updater passed but has no row for.

const db = useTestDatabase(import.meta.url);
const config = resolveConfig(readModelConfig());
let hs: Hindsight;

async function drain(): Promise<void> {
  await createUpdater(config, { connectionString: db.url }).runOnce();
}

async function check(target: string) {
  return (await verify(config, { connectionString: db.url, target, pageSize: 4 })).types[0]!;
}

beforeAll(async () => {
  hs = await prepareStore(db, readModelConfig());
  for (let id = 1; id <= 10; id++) {
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: id, events: [{ type: 'account.credited', payload: { amount: id * 10 } }] });
  }
  await hs.append(db.pool, { aggregateType: 'account', aggregateId: 3, events: [{ type: 'account.debited', payload: { amount: 5 } }] });
  await drain();
});

describe('verify a read model', () => {
  test('rows written by the updater equal the folds: clean', async () => {
    const report = await check('read-model:account_balances');
    expect(report).toMatchObject({ target: 'read-model:account_balances', outcome: 'clean', counts: { rows: 10, compared: 10, matched: 10 } });
  });

  test('a row edited by hand, a row gone, and events past the checkpoint (not yet applied) are told apart', async () => {
    await db.pool.query(`UPDATE read_models.account_balances SET balance = balance + 1 WHERE aggregate_id = '4'`);
    await db.pool.query(`DELETE FROM read_models.account_balances WHERE aggregate_id = '7'`);
    // appended after the updater's last run: the row lags, which is not a mismatch (it records the sequence it reflects)
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 5, events: [{ type: 'account.credited', payload: { amount: 1 } }] });
    const report = await check('read-model:account_balances');
    expect(report.outcome).toBe('mismatches');
    const byId = Object.fromEntries(report.mismatches.map((m) => [m.aggregateId, m]));
    expect(Object.keys(byId).sort()).toEqual(['4', '7']);
    expect(byId['4']).toMatchObject({ kind: 'field-mismatch', fields: [{ field: 'balance', legacy: '41', projected: '40' }] });
    expect(byId['4']!.explanation[0]).toMatch(/rebuild the read model \(hindsight rebuild account_balances\)/);
    expect(byId['7']).toMatchObject({ kind: 'missing-in-read-model' });
  });

  test('a read model that marks deleted aggregates: the mark is compared too', async () => {
    const id = randomUUID();
    await hs.append(db.pool, { aggregateType: 'customer', aggregateId: id, events: [{ type: 'customer.renamed', payload: { name: 'Ann' } }] });
    await drain();
    expect((await check('read-model:customer_names')).outcome).toBe('clean');
    await db.pool.query(`UPDATE read_models.customer_names SET hindsight_deleted = true WHERE aggregate_id = $1`, [id]);
    const report = await check('read-model:customer_names');
    expect(report.mismatches[0]).toMatchObject({ aggregateId: id, fields: [{ field: '(deleted)', legacy: 'true', projected: 'false' }] });
  });

  test('a row kept for an aggregate whose events end in a delete, in a read model that removes them, is a mismatch', async () => {
    await hs.append(db.pool, { aggregateType: 'account', aggregateId: 9, events: [{ type: 'accounts.deleted', payload: {} }] });
    await drain();
    await db.pool.query(`INSERT INTO read_models.account_balances (aggregate_id, hindsight_sequence, balance, owner) VALUES ('9', 2, 90, NULL)`);
    const report = await check('read-model:account_balances');
    expect(report.mismatches.find((m) => m.aggregateId === '9')).toMatchObject({ fields: [{ field: '(row)', legacy: 'present', projected: 'deleted' }] });
    await db.pool.query(`DELETE FROM read_models.account_balances WHERE aggregate_id = '9'`);
  });

  test('a read model whose updater never ran is incomplete, not clean or empty', async () => {
    await db.pool.query(`DELETE FROM hindsight.checkpoints WHERE subscriber = 'read-model:account_balances'`);
    const report = await check('read-model:account_balances');
    expect(report.outcome).toBe('incomplete');
    expect(report.reason).toMatch(/the updater has never run for the read model account_balances/);
  });

  test('an expired ignore rule of the type fails a read-model run too', async () => {
    const base = readModelConfig();
    const expired = resolveConfig({
      ...base,
      aggregates: base.aggregates!.map((a) => (a.type === 'account' ? { ...a, verify: { ignore: [{ reason: 'old migration', expires: '2020-01-01' }] } } : a)),
    });
    const report = (await verify(expired, { connectionString: db.url, target: 'read-model:account_balances', record: false })).types[0]!;
    expect(report.outcome).toBe('incomplete');
    expect(report.reason).toMatch(/ignore rule expired: "old migration"/);
  });

  test('an unknown target is refused before anything runs', async () => {
    await expect(verify(config, { connectionString: db.url, target: 'read-model:nope' })).rejects.toThrow(
      /unknown target "read-model:nope": give projection or one of read-model:account_balances, read-model:customer_names/,
    );
    await expect(verify(config, { connectionString: db.url, target: 'read-model:account_balances', sample: 3 })).rejects.toThrow(/verified whole/);
  });
});

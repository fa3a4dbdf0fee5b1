import pg from 'pg';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { byCanonicalId, byKey } from '../../src/db/canonicalKey.js';
import { toSql, type Sql } from '../../src/db/queryable.js';
import { defineEvent } from '../../src/events/defineEvent.js';
import { createHindsight, type Hindsight } from '../../src/hindsight.js';
import { migrate } from '../../src/store/migrate.js';
import { COPY_READ_FROM_EVENTS, forEachAggregateEvent } from '../../src/store/readForFold.js';
import { storeTables } from '../../src/store/tables.js';
import type { ProjectedEvent } from '../../src/types.js';
import { useTestDatabase } from '../helpers/database.js';

// Long histories of one aggregate are read through COPY on a pool (parsed here), short
// ones and reads on a caller's client through node-postgres's rows: both must give the
// same events, whatever the key and payloads hold, and leave the pool's clients clean.

const db = useTestDatabase(import.meta.url);
const tables = storeTables('hindsight');
const noted = defineEvent('note.written', z.object({}).passthrough());
const HOSTILE_ID = 'a\tb\\c\nd "é😀\\N';
const LONG = COPY_READ_FROM_EVENTS + 200;
let hs: Hindsight;
let onePool: pg.Pool; // a single connection: what a read leaves on it, the next one sees

beforeAll(async () => {
  await migrate({ connectionString: db.url });
  await db.pool.query(`CREATE TABLE notes (id text PRIMARY KEY); CREATE TABLE lines (region text, line integer, PRIMARY KEY (region, line))`);
  hs = createHindsight({
    aggregates: [
      { type: 'note', table: 'notes', key: { column: 'id', type: 'text' }, events: [noted] },
      { type: 'line', table: 'lines', key: [{ column: 'region', type: 'text' }, { column: 'line', type: 'integer' }], events: [noted] },
    ],
  });
  const events = Array.from({ length: LONG }, (_, i) => ({
    type: 'note.written',
    payload: { text: `tab\there, backslash \\ and newline\n ${i}`, nested: { n: i, list: [null, 1.5, '\\N'] } },
    metadata: { actor: 'ann\tlee', reason: `line one\nline two ${i}` },
  }));
  await hs.append(db.pool, { aggregateType: 'note', aggregateId: HOSTILE_ID, events });
  await hs.append(db.pool, { aggregateType: 'line', aggregateId: ['eu\twest', 7], events });
  onePool = new pg.Pool({ connectionString: db.url, max: 1 });
});

afterAll(async () => {
  await onePool?.end();
});

async function read(sql: Sql, type: string, ref: ReturnType<typeof byCanonicalId>, from: number, to: number): Promise<ProjectedEvent[]> {
  const events: ProjectedEvent[] = [];
  await forEachAggregateEvent(sql, tables, hs.config.aggregates.get(type)!, ref, from, to, (event) => events.push(event));
  return events;
}

/** The pool's Sql, counting its COPY reads (the database itself is real). */
function countingPoolSql(pool: pg.Pool): { sql: Sql; copies: () => number } {
  const sql = toSql(pool);
  let copies = 0;
  const copyRows = sql.copyRows!;
  return { sql: { ...sql, copyRows: (text, values, onRow) => (copies++, copyRows(text, values, onRow)) }, copies: () => copies };
}

describe('reading one aggregate for a fold', () => {
  test('a long history through COPY on a pool equals the rows read on a client: hostile text key, payloads and metadata', async () => {
    const pooled = countingPoolSql(db.pool);
    const viaCopy = await read(pooled.sql, 'note', byCanonicalId(HOSTILE_ID), 1, LONG);
    expect(pooled.copies()).toBe(1);
    const client = await db.pool.connect();
    try {
      const viaRows = await read(toSql(client), 'note', byCanonicalId(HOSTILE_ID), 1, LONG);
      expect(viaRows).toHaveLength(LONG);
      expect(viaCopy).toEqual(viaRows);
      expect(viaCopy[5]!.payload).toEqual({ text: 'tab\there, backslash \\ and newline\n 5', nested: { n: 5, list: [null, 1.5, '\\N'] } });
      expect(viaCopy[5]!.aggregateId).toBe(HOSTILE_ID);
    } finally {
      client.release();
    }
  });

  test('a composite key is bound the same way through COPY', async () => {
    const ref = byKey(hs.config.aggregates.get('line')!.key, ['eu\twest', '7']);
    const pooled = countingPoolSql(db.pool);
    const viaCopy = await read(pooled.sql, 'line', ref, 3, LONG);
    expect(pooled.copies()).toBe(1);
    expect(viaCopy.map((e) => e.sequence)).toEqual(Array.from({ length: LONG - 2 }, (_, i) => i + 3));
    const viaRows = await read({ ...toSql(db.pool), copyRows: undefined }, 'line', ref, 3, LONG);
    expect(viaCopy).toEqual(viaRows);
  });

  test('a short range does not take the COPY path', async () => {
    const pooled = countingPoolSql(db.pool);
    expect(await read(pooled.sql, 'note', byCanonicalId(HOSTILE_ID), 10, 20)).toHaveLength(11);
    expect(pooled.copies()).toBe(0);
  });

  test('a throwing fold rejects with its error and leaves the connection usable and without the read’s settings', async () => {
    let seen = 0;
    const error = await forEachAggregateEvent(toSql(onePool), tables, hs.config.aggregates.get('note')!, byCanonicalId(HOSTILE_ID), 1, LONG, () => {
      if (++seen === 3) throw new Error('handler refused');
    }).catch((e: unknown) => e);
    expect((error as Error).message).toBe('handler refused');
    expect(seen).toBe(3); // no call after the throw
    const leftOnTheConnection = async () =>
      (
        await onePool.query(
          `SELECT coalesce(current_setting('hindsight.copy_param_1', true), '') || coalesce(current_setting('hindsight.copy_param_4', true), '') AS left,
                  now() = statement_timestamp() AS outside_a_transaction`,
        )
      ).rows[0];
    expect(await leftOnTheConnection()).toEqual({ left: '', outside_a_transaction: true });
    // and after a read that succeeds: the settings were local to the read's own transaction
    expect(await read(toSql(onePool), 'note', byCanonicalId(HOSTILE_ID), 1, LONG)).toHaveLength(LONG);
    expect(await leftOnTheConnection()).toEqual({ left: '', outside_a_transaction: true });
  });
});

import { z } from 'zod';
import { beforeAll, describe, expect, test } from 'vitest';
import { toSql } from '../../src/db/queryable.js';
import { defineEvent } from '../../src/events/defineEvent.js';
import { createHindsight, type Hindsight } from '../../src/hindsight.js';
import { unescapeCopy } from '../../src/db/copyText.js';
import { copyEvents, type CopiedEvent } from '../../src/store/copyEvents.js';
import { readAll, START_OF_LOG, type GlobalCheckpoint } from '../../src/store/readAll.js';
import { migrate } from '../../src/store/migrate.js';
import { storeTables } from '../../src/store/tables.js';
import { useTestDatabase } from '../helpers/database.js';

// The rebuild reads the log as COPY text and parses it itself: it must give back exactly
// what the row reader gives, whatever the keys and payloads hold.

const db = useTestDatabase(import.meta.url);
const noted = defineEvent('note.written', z.object({}).passthrough());
const tables = storeTables('hindsight');
let hs: Hindsight;

/** Characters COPY's text format escapes or treats specially, plus multi-byte ones. */
const ALPHABET = ['\t', '\n', '\r', '\\', '\b', '\f', '\v', 'N', '.', '"', "'", ',', ' ', 'a', 'é', '€', '😀', '\\N', '\\\\t'];
function hostileText(seed: number): string {
  let out = '';
  let x = seed * 2654435761;
  for (let i = 0; i < 1 + (seed % 9); i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out += ALPHABET[x % ALPHABET.length];
  }
  return out;
}

beforeAll(async () => {
  await migrate({ connectionString: db.url });
  await db.pool.query(`CREATE TABLE notes (id text PRIMARY KEY)`);
  hs = createHindsight({
    aggregates: [
      {
        type: 'note',
        table: 'notes',
        key: { column: 'id', type: 'text' }, // a text key is stored as is: raw tabs, newlines and backslashes
        events: [noted],
      },
    ],
  });
  for (let seed = 1; seed <= 60; seed++) {
    await hs.append(db.pool, {
      aggregateType: 'note',
      aggregateId: `${hostileText(seed)}${seed}`,
      events: [
        {
          type: 'note.written',
          payload: { text: hostileText(seed + 1000), [hostileText(seed + 2000)]: [hostileText(seed + 3000), null, 1.5, { deep: '\\' }] },
          metadata: { actor: hostileText(seed + 4000), reason: `line one\nline two\twith a tab ${hostileText(seed)}` },
          occurredAt: `2026-02-${String(1 + (seed % 28)).padStart(2, '0')}T10:00:00.${String(seed).padStart(6, '0')}+01:00`,
        },
        { type: 'note.written', payload: {} },
      ],
    });
  }
});

async function copyAll(limit: number): Promise<CopiedEvent[]> {
  const client = await db.pool.connect();
  const events: CopiedEvent[] = [];
  try {
    let after: GlobalCheckpoint = START_OF_LOG;
    for (;;) {
      const before = events.length;
      const read = await copyEvents(client, tables, 'note', after, limit, (event) => events.push(event));
      expect(events.length - before).toBe(read);
      if (read < limit) return events;
      const last = events[events.length - 1]!;
      after = { transactionId: last.transactionId, globalPosition: last.globalPosition };
    }
  } finally {
    client.release();
  }
}

describe('the COPY reader of the log', () => {
  test('gives back exactly what the row reader gives: hostile keys, payloads, metadata and times, in the same order', async () => {
    const page = await readAll(toSql(db.pool), tables, { aggregateTypes: ['note'], limit: 10_000 });
    expect(page.events).toHaveLength(120);
    const copied = await copyAll(10_000);
    const pick = (e: CopiedEvent | (typeof page.events)[number]) => ({
      transactionId: e.transactionId,
      globalPosition: e.globalPosition,
      eventId: e.eventId,
      aggregateType: e.aggregateType,
      aggregateId: e.aggregateId,
      sequence: e.sequence,
      type: e.type,
      schemaVersion: e.schemaVersion,
      payload: e.payload,
      metadata: e.metadata,
      source: e.source,
      occurredAt: e.occurredAt,
    });
    expect(copied.map(pick)).toEqual(page.events.map(pick));
    // the hostile characters really reached the store
    expect(copied.some((e) => e.aggregateId.includes('\t') && e.aggregateId.includes('\\'))).toBe(true);
  });

  test('in chunks, it reads on from the last event of the previous chunk without skipping or repeating any', async () => {
    const whole = await copyAll(10_000);
    const chunked = await copyAll(7);
    expect(chunked.map((e) => e.eventId)).toEqual(whole.map((e) => e.eventId));
  });

  test('an unparseable row fails the read and leaves the connection usable', async () => {
    const client = await db.pool.connect();
    try {
      const error = await copyEvents(client, tables, 'note', START_OF_LOG, 5, () => {
        throw new Error('handler refused');
      }).catch((e: unknown) => e);
      expect((error as Error).message).toBe('handler refused');
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      client.release();
    }
  });
});

describe('unescapeCopy', () => {
  test('undoes the text format escapes and leaves other characters alone', () => {
    expect(unescapeCopy('a\\tb\\nc\\rd\\\\e')).toBe('a\tb\nc\rd\\e');
    expect(unescapeCopy('\\b\\f\\v')).toBe('\b\f\v');
    expect(unescapeCopy('plain é 😀')).toBe('plain é 😀');
    expect(unescapeCopy('\\\\N')).toBe('\\N');
  });
});

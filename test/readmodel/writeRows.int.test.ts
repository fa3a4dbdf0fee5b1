import { describe, expect, test } from 'vitest';
import { parseTableName, type TableName } from '../../src/db/identifiers.js';
import { toSql } from '../../src/db/queryable.js';
import { readModelSchema, resolveReadModel, type ReadModel } from '../../src/readmodel/declaration.js';
import { copyText, writeRows, type RowChange } from '../../src/readmodel/writeRows.js';
import { storeTables } from '../../src/store/tables.js';
import { useTestDatabase } from '../helpers/database.js';

// A rebuild writes an aggregate's first row into its shadow with COPY and every later
// change with the upsert: both must store exactly the same thing, whatever the text holds.

const db = useTestDatabase(import.meta.url);
const tables = storeTables('hindsight');

const model = resolveReadModel(
  readModelSchema.parse({
    name: 'notes_view',
    table: 'notes_view',
    onDelete: 'mark',
    columns: {
      title: { type: 'text' },
      amount: { type: 'numeric(12,2)' },
      tags: { type: 'jsonb' },
      at: { type: 'timestamptz' },
      flag: { type: 'boolean' },
    },
  }),
  'note',
) as ReadModel;

const HOSTILE = ['plain', 'tab\there', 'new\nline', 'cr\rhere', 'back\\slash', '\\N', '\\.', 'é€😀', '', ' '];

function changes(): RowChange[] {
  return HOSTILE.map((text, i) => ({
    aggregateId: `${text}#${i}`,
    sequence: i + 1,
    deleted: i % 4 === 3,
    state: {
      title: i === 5 ? null : text,
      amount: i * 1.005,
      tags: { text, list: [text, i], nested: { n: null } },
      at: new Date(Date.UTC(2026, 1, 3 + i, 12, 0, 0, i)),
      flag: i % 2 === 0,
    },
  }));
}

async function createTable(name: string): Promise<TableName> {
  await db.pool.query(`CREATE TABLE ${name} (aggregate_id text PRIMARY KEY, hindsight_sequence bigint NOT NULL, hindsight_deleted boolean NOT NULL DEFAULT false,
    title text, amount numeric(12,2), tags jsonb, at timestamptz, flag boolean)`);
  return parseTableName(name) as TableName;
}

async function contents(table: TableName): Promise<string[]> {
  const { rows } = await db.pool.query(`SELECT row_to_json(t)::text AS row FROM ${table.quoted} t ORDER BY aggregate_id COLLATE "C"`);
  return rows.map((r) => r.row as string);
}

describe('writeRows', () => {
  test('rows written with COPY equal rows written with the upsert, for hostile text, NULLs, JSON, dates and deletion marks', async () => {
    const upserted = await createTable('written_by_upsert');
    const copied = await createTable('written_by_copy');
    const client = await db.pool.connect();
    try {
      await writeRows(toSql(client), client, tables, model, upserted, changes());
      await writeRows(toSql(client), client, tables, model, copied, changes(), { client, isAbsent: () => true });
    } finally {
      client.release();
    }
    const expected = await contents(upserted);
    expect(expected).toHaveLength(HOSTILE.length);
    expect(await contents(copied)).toEqual(expected);
  });

  test('only the rows said to be absent go through COPY; the rest are upserted and never move back to an older sequence', async () => {
    const table = await createTable('mixed_write');
    const client = await db.pool.connect();
    try {
      const first = changes();
      await writeRows(toSql(client), client, tables, model, table, first, { client, isAbsent: () => true });
      const later = first.map((c) => ({ ...c, sequence: c.aggregateId.startsWith('plain') ? 0 : c.sequence + 10, state: { ...(c.state as object), title: 'later' } }));
      // Said absent for none: a COPY of an existing key would fail on the primary key.
      await writeRows(toSql(client), client, tables, model, table, later, { client, isAbsent: () => false });
    } finally {
      client.release();
    }
    const { rows } = await db.pool.query(`SELECT aggregate_id, title, hindsight_sequence::int AS sequence FROM mixed_write ORDER BY aggregate_id COLLATE "C"`);
    for (const row of rows) {
      if (row.aggregate_id.startsWith('plain')) expect(row).toMatchObject({ title: 'plain', sequence: 1 });
      else expect(row.title).toBe('later');
    }
  });
});

describe('copyText', () => {
  test('escapes what COPY text format treats specially and writes NULL as \\N', () => {
    expect(copyText(null)).toBe('\\N');
    expect(copyText('\\N')).toBe('\\\\N');
    expect(copyText('a\tb\nc\rd\\e')).toBe('a\\tb\\nc\\rd\\\\e');
    expect(copyText('plain')).toBe('plain');
  });
});

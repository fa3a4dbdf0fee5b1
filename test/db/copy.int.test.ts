import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import pg from 'pg';
import { copyIn, copyOut } from '../../src/db/copy.js';
import { useTestDatabase } from '../helpers/database.js';

// COPY through node-postgres "submittables": rows stream both ways, and every failure
// (the server's, or the row handler's) rejects instead of hanging, leaving the
// connection usable for the next statement.

const db = useTestDatabase(import.meta.url);
let client: pg.Client;

beforeAll(async () => {
  client = new pg.Client(db.url);
  await client.connect();
});
afterAll(async () => {
  await client.end();
});

async function stillUsable(): Promise<void> {
  const { rows } = await client.query<{ ok: number }>('SELECT 1 AS ok');
  expect(rows[0]!.ok).toBe(1);
}

describe('copyOut', () => {
  test('hands over every row as COPY text, in order', async () => {
    const rows: string[] = [];
    const count = await copyOut(client, `COPY (SELECT g, 'a' || chr(9) || g FROM generate_series(1, 1000) g) TO STDOUT`, (chunk) => rows.push(chunk.toString()));
    expect(count).toBe(1000);
    expect(rows[0]).toBe('1\ta\\t1\n');
    expect(rows[999]).toBe('1000\ta\\t1000\n');
  });

  test('a server error part way through rejects with that error', async () => {
    const rows: string[] = [];
    const failing = copyOut(client, `COPY (SELECT 1 / (3 - g) FROM generate_series(1, 5) g) TO STDOUT`, (chunk) => rows.push(chunk.toString()));
    await expect(failing).rejects.toMatchObject({ code: '22012' });
    expect(rows.length).toBeLessThan(5);
    await stillUsable();
  });

  test('a throwing row handler stops the calls and rejects with its error', async () => {
    let calls = 0;
    const failing = copyOut(client, `COPY (SELECT g FROM generate_series(1, 100) g) TO STDOUT`, () => {
      calls += 1;
      if (calls === 3) throw new Error('handler failed');
    });
    await expect(failing).rejects.toThrow('handler failed');
    expect(calls).toBe(3);
    await stillUsable();
  });
});

describe('copyIn', () => {
  test('writes rows sent in several buffers', async () => {
    await client.query('CREATE TEMP TABLE copied (id int PRIMARY KEY, note text)');
    await copyIn(client, 'COPY copied (id, note) FROM STDIN', [Buffer.from('1\tone\n2\ttw'), Buffer.from('o\n3\t\\N\n')]);
    const { rows } = await client.query('SELECT id, note FROM copied ORDER BY id');
    expect(rows).toEqual([
      { id: 1, note: 'one' },
      { id: 2, note: 'two' },
      { id: 3, note: null },
    ]);
  });

  test('a value the column rejects fails the COPY, writes nothing and leaves the connection usable', async () => {
    await client.query('CREATE TEMP TABLE strict_copy (id int PRIMARY KEY)');
    await expect(copyIn(client, 'COPY strict_copy (id) FROM STDIN', [Buffer.from('1\nnot a number\n')])).rejects.toMatchObject({ code: '22P02' });
    const { rows } = await client.query('SELECT count(*)::int AS n FROM strict_copy');
    expect(rows[0].n).toBe(0);
    await stillUsable();
  });
});

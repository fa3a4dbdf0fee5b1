import type pg from 'pg';
import { copyOut } from '../../src/db/copy.js';

/** The raw read rate of a query's rows: `COPY (query) TO STDOUT`, counted as they arrive and thrown away. */
export async function copyRate(client: pg.ClientBase, query: string): Promise<{ rows: number; bytes: number; seconds: number }> {
  let bytes = 0;
  const started = performance.now();
  const rows = await copyOut(client, `COPY (${query}) TO STDOUT`, (chunk) => {
    bytes += chunk.length;
  });
  return { rows, bytes, seconds: (performance.now() - started) / 1000 };
}

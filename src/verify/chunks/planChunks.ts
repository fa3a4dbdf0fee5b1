import type { AggregateType } from '../../config/resolve.js';
import type { Sql } from '../../db/queryable.js';
import type { StoreTables } from '../../store/tables.js';
import { afterKeyArray, keyOfId, upToKey } from '../legacy.js';

/** What every chunk of a type's shared run runs with, stored with the run so any worker agrees. */
export interface ChunkRunOptions {
  pageSize: number;
  concurrency: number;
  lagTimeoutMs: number;
  leaseMs: number;
  /** The pause after each page (absent in runs planned before it existed: none). */
  pauseMs?: number;
}

/** Shared runs are kept this long after they started, for a look at their chunks; then the next plan deletes them. */
const KEEP_CHUNK_RUNS = '7 days';

/**
 * Splits a full run of a type into key ranges of `chunkRows` legacy rows each, by keyset
 * steps in the key columns' own order (each step one index walk of `chunkRows` keys), and
 * stores the run and its chunks. The last chunk is open-ended, so rows and heads with keys
 * past the last boundary (inserted since) still belong to exactly one chunk.
 */
export async function planChunks(
  sql: Sql,
  tables: StoreTables,
  aggregate: AggregateType,
  runId: string,
  startedAt: string,
  chunkRows: number,
  options: ChunkRunOptions,
): Promise<number> {
  const keys = aggregate.key.map((k) => `t.${k.quoted}`);
  const bounds: string[][] = [];
  for (;;) {
    const [row] = await sql.query<{ key: string[] }>(
      `SELECT ARRAY[${keys.map((k) => `${k}::text`).join(', ')}] AS key FROM ${aggregate.table.quoted} t
       WHERE ${afterKeyArray(aggregate, keys, '$1::text[]')} ORDER BY ${keys.join(', ')} OFFSET $2::int LIMIT 1`,
      [bounds[bounds.length - 1] ?? null, chunkRows - 1],
    );
    if (!row) break;
    bounds.push(row.key);
  }
  const [{ heads }] = (await sql.query<{ heads: string }>(`SELECT count(*)::text AS heads FROM ${tables.heads} WHERE aggregate_type = $1::text`, [aggregate.type])) as [
    { heads: string },
  ];
  const chunks = bounds.length + 1;
  // The history holds every recorded run; chunks are only the work list. A run still open a
  // week on goes too, unless a worker is on one of its chunks right now.
  await sql.query(
    `DELETE FROM ${tables.verifyChunkRuns} r WHERE r.started_at < now() - interval '${KEEP_CHUNK_RUNS}'
     AND NOT EXISTS (SELECT 1 FROM ${tables.verifyChunks} c WHERE c.run_id = r.run_id AND c.aggregate_type = r.aggregate_type AND c.state = 'taken' AND c.lease_until > now())`,
  );
  await sql.query(
    `INSERT INTO ${tables.verifyChunkRuns} (run_id, aggregate_type, options, heads, chunks, started_at)
     VALUES ($1::uuid, $2::text, $3::jsonb, $4::bigint, $5::int, $6::timestamptz)`,
    [runId, aggregate.type, JSON.stringify(options), heads, chunks, startedAt],
  );
  // Chunk i runs after bound i-1 (exclusive) up to bound i (inclusive); JSON carries the
  // ragged NULL ends that a text[][] cannot. Each chunk also gets its share of the heads
  // pass, found here in one walk of the heads (a chunk walking them itself would read them
  // once per chunk): the aggregates with events and no legacy row now, in its key range.
  const ranges = Array.from({ length: chunks }, (_, i) => ({ after: bounds[i - 1] ?? null, upTo: bounds[i] ?? null }));
  const key = keyOfId(aggregate, 'a.id');
  await sql.query(
    `WITH absent AS (
       SELECT h.aggregate_id AS id FROM ${tables.heads} h
       WHERE h.aggregate_type = $2::text
         AND NOT EXISTS (SELECT 1 FROM ${aggregate.table.quoted} t WHERE ${keyOfId(aggregate, 'h.aggregate_id').map((v, i) => `t.${aggregate.key[i]!.quoted} = ${v}`).join(' AND ')})
     ),
     ranges AS (
       SELECT (r.ordinality - 1)::int AS chunk,
              CASE WHEN jsonb_typeof(r.value->'after') = 'array' THEN ARRAY(SELECT x FROM jsonb_array_elements_text(r.value->'after') WITH ORDINALITY e(x, n) ORDER BY n) END AS after_key,
              CASE WHEN jsonb_typeof(r.value->'upTo') = 'array' THEN ARRAY(SELECT x FROM jsonb_array_elements_text(r.value->'upTo') WITH ORDINALITY e(x, n) ORDER BY n) END AS up_to_key
       FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY r
     )
     INSERT INTO ${tables.verifyChunks} (run_id, aggregate_type, chunk, after_key, up_to_key, absent_heads)
     SELECT $1::uuid, $2::text, g.chunk, g.after_key, g.up_to_key,
            ARRAY(SELECT a.id FROM absent a
                  WHERE ${afterKeyArray(aggregate, key, 'g.after_key')} AND ${upToKey(aggregate, key, 'g.up_to_key')}
                  ORDER BY a.id)
     FROM ranges g`,
    [runId, aggregate.type, JSON.stringify(ranges)],
  );
  return chunks;
}

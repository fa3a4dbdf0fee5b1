import type { Sql } from '../../db/queryable.js';
import type { StoreTables } from '../../store/tables.js';
import type { Mismatch, TypeCounts, TypeReport } from '../report.js';
import type { ChunkRunOptions } from './planChunks.js';

/** A chunk a worker has taken: its range and the options of its run. */
export interface TakenChunk {
  runId: string;
  aggregateType: string;
  chunk: number;
  after: string[] | undefined;
  upTo: string[] | undefined;
  /** Its share of the heads pass: ids with events but no legacy row when the run was planned (undefined: planned before these were kept). */
  absentHeads: string[] | undefined;
  attempts: number;
  options: ChunkRunOptions;
}

/** What a chunk reports: its share of the type's counts, cut and mismatches, or why it could not be checked. */
export interface ChunkResult {
  counts: TypeCounts;
  cut: TypeReport['cut'];
  warnings: string[];
  mismatches: Mismatch[];
  reason?: string;
}

/**
 * Takes the first chunk (of `runId`, or of any run) that is pending or whose lease has run
 * out: its worker died or lost the database without reporting, so anyone may redo it. A
 * type already recorded (its run was cancelled and stored incomplete) has nothing left to take.
 * SKIP LOCKED lets concurrent workers take different chunks without waiting on each other.
 */
export async function takeChunk(sql: Sql, tables: StoreTables, worker: string, runId: string | undefined): Promise<TakenChunk | undefined> {
  const [row] = await sql.query<{ run_id: string; aggregate_type: string; chunk: number; after_key: string[] | null; up_to_key: string[] | null; absent_heads: string[] | null; attempts: number; options: ChunkRunOptions }>(
    `UPDATE ${tables.verifyChunks} c
     SET state = 'taken', worker = $2::text, attempts = c.attempts + 1,
         lease_until = now() + (r.options->>'leaseMs')::int * interval '1 millisecond'
     FROM ${tables.verifyChunkRuns} r
     WHERE r.run_id = c.run_id AND r.aggregate_type = c.aggregate_type
       AND (c.run_id, c.aggregate_type, c.chunk) = (
         SELECT o.run_id, o.aggregate_type, o.chunk FROM ${tables.verifyChunks} o
         JOIN ${tables.verifyChunkRuns} orun ON orun.run_id = o.run_id AND orun.aggregate_type = o.aggregate_type AND orun.recorded_run IS NULL
         WHERE ($1::uuid IS NULL OR o.run_id = $1::uuid) AND o.state <> 'done' AND (o.state = 'pending' OR o.lease_until < now())
         ORDER BY o.run_id, o.aggregate_type, o.chunk LIMIT 1 FOR UPDATE OF o SKIP LOCKED)
     RETURNING c.run_id::text, c.aggregate_type, c.chunk, c.after_key, c.up_to_key, c.absent_heads, c.attempts, r.options`,
    [runId ?? null, worker],
  );
  if (!row) return undefined;
  return {
    runId: row.run_id,
    aggregateType: row.aggregate_type,
    chunk: row.chunk,
    after: row.after_key ?? undefined,
    upTo: row.up_to_key ?? undefined,
    absentHeads: row.absent_heads ?? undefined,
    attempts: row.attempts,
    options: row.options,
  };
}

/** Extends the lease of a chunk this worker still holds; false if another worker has taken it since. */
export async function renewLease(sql: Sql, tables: StoreTables, worker: string, chunk: TakenChunk): Promise<boolean> {
  const rows = await sql.query(
    `UPDATE ${tables.verifyChunks} SET lease_until = now() + $5::int * interval '1 millisecond'
     WHERE run_id = $1::uuid AND aggregate_type = $2::text AND chunk = $3::int AND worker = $4::text AND state = 'taken'
     RETURNING 1`,
    [chunk.runId, chunk.aggregateType, chunk.chunk, worker, chunk.options.leaseMs],
  );
  return rows.length > 0;
}

/**
 * Whether `runId` (or any run) still has chunks not done in a type not yet recorded, and when the earliest lease of a taken one
 * runs out (ms from now, 0 if one is pending or already expired).
 */
export async function openChunks(sql: Sql, tables: StoreTables, runId: string | undefined): Promise<{ open: number; nextInMs: number }> {
  const [row] = await sql.query<{ open: number; next_ms: number | null }>(
    `SELECT count(*)::int AS open,
            greatest(0, min(CASE WHEN state = 'pending' THEN 0 ELSE extract(epoch FROM lease_until - now()) * 1000 END))::float8 AS next_ms
     FROM ${tables.verifyChunks} c JOIN ${tables.verifyChunkRuns} r USING (run_id, aggregate_type)
     WHERE ($1::uuid IS NULL OR c.run_id = $1::uuid) AND c.state <> 'done' AND r.recorded_run IS NULL`,
    [runId ?? null],
  );
  return { open: row!.open, nextInMs: row!.next_ms ?? 0 };
}

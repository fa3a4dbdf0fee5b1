import type { MigrationContext } from './context.js';

/**
 * Verify runs shared by several workers: a full run of a type is split into key ranges
 * (chunks) that any worker may take. A taken chunk holds a lease its worker renews; a chunk
 * whose lease ran out (its worker died) can be taken again by anyone. The run is recorded in
 * verify_runs only by the worker that reports its last chunk.
 * FROZEN once shipped (see test/migrations/frozen.unit.test.ts).
 */
export async function up({ run, schema: s }: MigrationContext): Promise<void> {
  // One row per type of a chunked run: what every chunk needs to run (`options`: page size,
  // concurrency, lag timeout, lease), the heads counted when it was planned, and the
  // verify_runs row once every chunk has reported (NULL until then: the run is incomplete).
  await run(`
    CREATE TABLE ${s}.verify_chunk_runs (
      run_id         uuid NOT NULL,
      aggregate_type text COLLATE "C" NOT NULL,
      options        jsonb NOT NULL,
      heads          bigint NOT NULL,
      chunks         integer NOT NULL,
      started_at     timestamptz NOT NULL,
      recorded_run   bigint REFERENCES ${s}.verify_runs (id) ON DELETE SET NULL,
      PRIMARY KEY (run_id, aggregate_type)
    )`);
  // One row per key range: after_key exclusive (NULL: from the first row), up_to_key
  // inclusive (NULL: to the last), as the key columns' text. `state`: pending, taken (by
  // `worker` until `lease_until`) or done (with the chunk's counts and mismatches in `result`).
  await run(`
    CREATE TABLE ${s}.verify_chunks (
      run_id         uuid NOT NULL,
      aggregate_type text COLLATE "C" NOT NULL,
      chunk          integer NOT NULL,
      after_key      text[],
      up_to_key      text[],
      state          text NOT NULL DEFAULT 'pending',
      worker         text,
      lease_until    timestamptz,
      attempts       integer NOT NULL DEFAULT 0,
      result         jsonb,
      reported_at    timestamptz,
      PRIMARY KEY (run_id, aggregate_type, chunk),
      FOREIGN KEY (run_id, aggregate_type) REFERENCES ${s}.verify_chunk_runs (run_id, aggregate_type) ON DELETE CASCADE,
      CONSTRAINT verify_chunks_state_check CHECK (state IN ('pending', 'taken', 'done'))
    )`);
  await run(`CREATE INDEX verify_chunks_open_idx ON ${s}.verify_chunks (run_id) WHERE state <> 'done'`);
}

export async function down({ run, schema: s }: MigrationContext): Promise<void> {
  await run(`DROP TABLE IF EXISTS ${s}.verify_chunks`);
  await run(`DROP TABLE IF EXISTS ${s}.verify_chunk_runs`);
}

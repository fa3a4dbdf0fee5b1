import type { MigrationContext } from './context.js';

/**
 * The logical-replication listener and the baseline backfill.
 * FROZEN once shipped (see test/migrations/frozen.unit.test.ts).
 */
export async function up({ run, schema: s }: MigrationContext): Promise<void> {
  // One row per replication slot hindsight consumes. `checkpoint_lsn`: every source
  // transaction whose commit LSN is at or below it has had its events appended, in the same
  // transaction that moved it; the listener acknowledges the slot only up to it.
  // `consistent_point`: where the slot started, the point the baseline snapshot shows.
  await run(`
    CREATE TABLE ${s}.replication_state (
      slot_name        text COLLATE "C" PRIMARY KEY,
      consistent_point pg_lsn NOT NULL,
      checkpoint_lsn   pg_lsn NOT NULL,
      created_at       timestamptz NOT NULL DEFAULT now(),
      updated_at       timestamptz NOT NULL DEFAULT now()
    )`);

  // The opening import of each listener type's legacy rows, read in the slot's exported
  // snapshot (kept: it says which source transactions the import saw). While one is
  // pending, the listener holds that slot's stream (never drops it).
  await run(`
    CREATE TABLE ${s}.baselines (
      aggregate_type   text COLLATE "C" PRIMARY KEY,
      slot_name        text COLLATE "C",
      status           text NOT NULL,
      consistent_point pg_lsn,
      snapshot         pg_snapshot,
      rows_imported    bigint NOT NULL DEFAULT 0,
      started_at       timestamptz NOT NULL DEFAULT now(),
      completed_at     timestamptz,
      CONSTRAINT baselines_status_check CHECK (status IN ('pending', 'done'))
    )`);

  // Capture "both": the wrappers stage whole events here in the app's transaction; the
  // listener takes them from the decoded INSERTs (this table has its own insert-only
  // publication), appends them unchanged with that transaction's row changes, and deletes
  // the rows by id. The canonical id is computed in SQL by the staging statement.
  await run(`
    CREATE TABLE ${s}.staged_events (
      event_id       uuid PRIMARY KEY,
      aggregate_type text COLLATE "C" NOT NULL,
      aggregate_id   text COLLATE "C" NOT NULL,
      event_type     text NOT NULL,
      schema_version integer NOT NULL,
      payload        jsonb NOT NULL,
      metadata       jsonb NOT NULL,
      occurred_at    timestamptz NOT NULL DEFAULT now(),
      transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
      staged_at      timestamptz NOT NULL DEFAULT now()
    )`);

  // Row changes whose mapped domain event failed its schema were appended as generic
  // events with the error in their metadata; \`replication status\` counts them.
  await run(`CREATE INDEX events_mapping_error_idx ON ${s}.events (recorded_at) WHERE (metadata->>'mapping_error') IS NOT NULL`);
}

export async function down({ run, schema: s }: MigrationContext): Promise<void> {
  await run(`DROP INDEX ${s}.events_mapping_error_idx`);
  await run(`DROP TABLE ${s}.staged_events`);
  await run(`DROP TABLE ${s}.baselines`);
  await run(`DROP TABLE ${s}.replication_state`);
}

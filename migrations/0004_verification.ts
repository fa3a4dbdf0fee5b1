import type { MigrationContext } from './context.js';

/**
 * The dual-run verifier's history and the cut-over of reads.
 * FROZEN once shipped (see test/migrations/frozen.unit.test.ts).
 */
export async function up({ run, schema: s }: MigrationContext): Promise<void> {
  // One row per verified aggregate type per run, written after its comparison snapshots
  // have ended. `mode`: full, sample, ids or changed (only full runs count for the gate).
  // `target`: "projection" (events against the legacy rows) or "read-model:<name>".
  // `outcome`: clean, mismatches, incomplete or empty; `reason` says why when incomplete.
  await run(`
    CREATE TABLE ${s}.verify_runs (
      id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      run_id             uuid NOT NULL,
      aggregate_type     text COLLATE "C" NOT NULL,
      target             text NOT NULL,
      mode               text NOT NULL,
      started_at         timestamptz NOT NULL,
      finished_at        timestamptz NOT NULL DEFAULT now(),
      cut                jsonb NOT NULL DEFAULT '{}'::jsonb,
      projector_version  text NOT NULL,
      config_hash        text NOT NULL,
      counts             jsonb NOT NULL,
      outcome            text NOT NULL,
      reason             text,
      CONSTRAINT verify_runs_mode_check CHECK (mode IN ('full', 'sample', 'ids', 'changed')),
      CONSTRAINT verify_runs_outcome_check CHECK (outcome IN ('clean', 'mismatches', 'incomplete', 'empty'))
    )`);
  await run(`CREATE INDEX verify_runs_type_idx ON ${s}.verify_runs (aggregate_type, target, finished_at)`);

  // Every mismatch of a run, with the values of both sides and the explanation.
  await run(`
    CREATE TABLE ${s}.verify_mismatches (
      run_row        bigint NOT NULL REFERENCES ${s}.verify_runs (id) ON DELETE CASCADE,
      aggregate_id   text COLLATE "C" NOT NULL,
      class          text NOT NULL,
      kind           text NOT NULL,
      fields         jsonb NOT NULL DEFAULT '[]'::jsonb,
      explanation    jsonb NOT NULL DEFAULT '{}'::jsonb,
      PRIMARY KEY (run_row, aggregate_id)
    )`);

  // Which side reads of a type come from, and every switch and revert (forced ones with
  // their reason): the cut-over gate's record.
  await run(`
    CREATE TABLE ${s}.cutover (
      aggregate_type text COLLATE "C" PRIMARY KEY,
      source         text NOT NULL,
      read_model     text,
      switched_at    timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT cutover_source_check CHECK (source IN ('legacy', 'read-model'))
    )`);
  await run(`
    CREATE TABLE ${s}.cutover_log (
      id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      aggregate_type text COLLATE "C" NOT NULL,
      action         text NOT NULL,
      read_model     text,
      forced         boolean NOT NULL DEFAULT false,
      reason         text,
      checklist      jsonb NOT NULL DEFAULT '[]'::jsonb,
      at             timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT cutover_log_action_check CHECK (action IN ('switch', 'revert'))
    )`);
}

export async function down({ run, schema: s }: MigrationContext): Promise<void> {
  await run(`DROP TABLE ${s}.cutover_log`);
  await run(`DROP TABLE ${s}.cutover`);
  await run(`DROP TABLE ${s}.verify_mismatches`);
  await run(`DROP TABLE ${s}.verify_runs`);
}

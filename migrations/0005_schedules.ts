import type { MigrationContext } from './context.js';

/**
 * The scheduled consistency checks of `hindsight run`: how far each check's schedule has
 * been evaluated, and a log of every tick (run, skipped, missed) and every run it started.
 * FROZEN once shipped (see test/migrations/frozen.unit.test.ts).
 */
export async function up({ run, schema: s }: MigrationContext): Promise<void> {
  // One row per check (its id is the schedule's name, or one derived from what it checks).
  // The minute tick locks the row, so its schedule is evaluated once per minute across all
  // instances even if the job queue ever ran a tick twice.
  await run(`
    CREATE TABLE ${s}.schedule_state (
      check_id     text COLLATE "C" PRIMARY KEY,
      evaluated_to timestamptz NOT NULL,
      updated_at   timestamptz NOT NULL DEFAULT now()
    )`);
  // `event`: queued (a tick's run was enqueued), started, finished (with the verify run and
  // its outcome), failed (the run threw; detail says why), skipped (the previous run of the
  // same check was still going), missed (no instance ran at the tick).
  await run(`
    CREATE TABLE ${s}.schedule_log (
      id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      check_id    text COLLATE "C" NOT NULL,
      tick        timestamptz NOT NULL,
      event       text NOT NULL,
      run_id      uuid,
      outcome     text,
      detail      text,
      instance    text,
      recorded_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT schedule_log_event_check CHECK (event IN ('queued', 'started', 'finished', 'failed', 'skipped', 'missed'))
    )`);
  await run(`CREATE INDEX schedule_log_check_idx ON ${s}.schedule_log (check_id, tick)`);
}

export async function down({ run, schema: s }: MigrationContext): Promise<void> {
  await run(`DROP TABLE IF EXISTS ${s}.schedule_log`);
  await run(`DROP TABLE IF EXISTS ${s}.schedule_state`);
}

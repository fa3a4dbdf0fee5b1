import type { MigrationContext } from './context.js';

/**
 * Projections at scale: snapshots, subscriber checkpoints and leases.
 * FROZEN once shipped (see test/migrations/frozen.unit.test.ts).
 */
export async function up({ run, schema: s }: MigrationContext): Promise<void> {
  // An aggregate's projected state at a sequence, encoded by the projector's codec and kept
  // as a jsonb string of that JSON text (a jsonb object would reorder its keys). A snapshot
  // is used only by the projection version that wrote it.
  await run(`
    CREATE TABLE ${s}.snapshots (
      aggregate_type    text COLLATE "C" NOT NULL,
      aggregate_id      text COLLATE "C" NOT NULL,
      projector_version text NOT NULL,
      sequence          bigint NOT NULL,
      state             jsonb NOT NULL,
      deleted           boolean NOT NULL DEFAULT false,
      created_at        timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT snapshots_pkey PRIMARY KEY (aggregate_type, aggregate_id, projector_version, sequence),
      CONSTRAINT snapshots_sequence_check CHECK (sequence >= 1)
    )`);

  // How far each subscriber (a read model's updater, a rebuild, an app's own consumer) has
  // read, as the (transaction id, global position) pair of the gap-safe read, and whether it
  // stopped on an error.
  await run(`
    CREATE TABLE ${s}.checkpoints (
      subscriber      text COLLATE "C" PRIMARY KEY,
      transaction_id  xid8 NOT NULL DEFAULT '0'::xid8,
      global_position bigint NOT NULL DEFAULT 0,
      events_applied  bigint NOT NULL DEFAULT 0,
      updated_at      timestamptz NOT NULL DEFAULT now(),
      failed_at       timestamptz DEFAULT NULL,
      failure         jsonb DEFAULT NULL
    )`);

  // Who processes a subscriber now. The holder renews expires_at from a connection of its
  // own and re-checks (and locks) the row in the transaction of every checkpoint write, so
  // a holder that lost its lease (paused, partitioned) can never commit over the new one.
  // A row, not a session advisory lock, because those are silently lost behind a
  // transaction-mode pooler.
  await run(`
    CREATE TABLE ${s}.leases (
      name        text COLLATE "C" PRIMARY KEY,
      owner       text NOT NULL,
      acquired_at timestamptz NOT NULL DEFAULT now(),
      expires_at  timestamptz NOT NULL
    )`);

  // The sequence a read model reached for aggregates whose row it removed (onDelete
  // "remove"), so an older event arriving late never brings the row back. Keyed by the
  // table's oid, which a rebuild's swap carries over with the table.
  await run(`
    CREATE TABLE ${s}.read_model_tombstones (
      table_oid    oid NOT NULL,
      aggregate_id text COLLATE "C" NOT NULL,
      sequence     bigint NOT NULL,
      CONSTRAINT read_model_tombstones_pkey PRIMARY KEY (table_oid, aggregate_id)
    )`);
}

export async function down({ run, schema: s }: MigrationContext): Promise<void> {
  await run(`DROP TABLE ${s}.read_model_tombstones`);
  await run(`DROP TABLE ${s}.leases`);
  await run(`DROP TABLE ${s}.checkpoints`);
  await run(`DROP TABLE ${s}.snapshots`);
}

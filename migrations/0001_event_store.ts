import type { MigrationContext } from './context.js';

/**
 * The event store: the events table, the heads table and the hash function.
 * FROZEN: shipped migrations never change (test/migrations/frozen.unit.test.ts holds their
 * checksums); later changes come as new migrations.
 */
export async function up({ run, schema: s }: MigrationContext): Promise<void> {
  await run(`
    CREATE TABLE ${s}.events (
      global_position   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      event_id          uuid NOT NULL DEFAULT gen_random_uuid(),
      aggregate_type    text COLLATE "C" NOT NULL,
      aggregate_id      text COLLATE "C" NOT NULL,
      sequence          bigint NOT NULL,
      event_type        text NOT NULL,
      schema_version    integer NOT NULL DEFAULT 1,
      payload           jsonb NOT NULL,
      metadata          jsonb NOT NULL DEFAULT '{}'::jsonb,
      source            text NOT NULL DEFAULT 'app',
      source_commit_lsn pg_lsn DEFAULT NULL,
      source_ordinal    integer DEFAULT NULL,
      source_xid        xid8 DEFAULT NULL,
      transaction_id    xid8 NOT NULL DEFAULT pg_current_xact_id(),
      occurred_at       timestamptz NOT NULL DEFAULT now(),
      recorded_at       timestamptz NOT NULL DEFAULT now(),
      hash              bytea NOT NULL,
      CONSTRAINT events_event_id_key UNIQUE (event_id),
      CONSTRAINT events_aggregate_sequence_key UNIQUE (aggregate_type, aggregate_id, sequence),
      CONSTRAINT events_sequence_check CHECK (sequence >= 1),
      CONSTRAINT events_schema_version_check CHECK (schema_version >= 1),
      CONSTRAINT events_metadata_check CHECK (jsonb_typeof(metadata) = 'object'),
      CONSTRAINT events_source_check CHECK (source IN ('app', 'replication', 'import')),
      CONSTRAINT events_source_position_check CHECK (
        (source_commit_lsn IS NULL) = (source_ordinal IS NULL)
        AND (source_commit_lsn IS NULL) = (source_xid IS NULL)
        AND (source <> 'replication' OR source_commit_lsn IS NOT NULL)
        AND (source <> 'import' OR source_commit_lsn IS NULL)
      ),
      CONSTRAINT events_hash_check CHECK (octet_length(hash) = 32)
    )`);
  // Per-aggregate time-range reads and "as of" lookups.
  await run(`CREATE INDEX events_aggregate_occurred_at_idx ON ${s}.events (aggregate_type, aggregate_id, occurred_at)`);
  // The gap-safe global read orders by (transaction_id, global_position) and checkpoints that pair.
  await run(`CREATE INDEX events_transaction_position_idx ON ${s}.events (transaction_id, global_position)`);
  // A listener re-delivering a source transaction cannot insert its events twice.
  await run(`
    CREATE UNIQUE INDEX events_source_commit_key ON ${s}.events (source_commit_lsn, source_ordinal)
      WHERE source_commit_lsn IS NOT NULL`);

  // One row per aggregate: the append locks and updates it with the expected version, which
  // orders writers of one aggregate while appends to different aggregates never wait.
  // fillfactor leaves room for HOT updates (no indexed column changes).
  await run(`
    CREATE TABLE ${s}.heads (
      aggregate_type text COLLATE "C" NOT NULL,
      aggregate_id   text COLLATE "C" NOT NULL,
      version        bigint NOT NULL,
      last_hash      bytea NOT NULL,
      CONSTRAINT heads_pkey PRIMARY KEY (aggregate_type, aggregate_id),
      CONSTRAINT heads_version_check CHECK (version >= 1)
    ) WITH (fillfactor = 70)`);

  // The chained hash: sha256 over the previous hash and every stored column but
  // global_position, encoded as jsonb text (no session setting changes it); timestamps as
  // UTC microseconds since the epoch, never ::text, which follows TimeZone and DateStyle.
  // STABLE, as the functions it calls are, so the planner can inline it into the append.
  await run(`
    CREATE FUNCTION ${s}.event_hash(
      previous bytea, event_id uuid, aggregate_type text, aggregate_id text, sequence bigint,
      event_type text, schema_version integer, payload jsonb, metadata jsonb, source text,
      source_commit_lsn pg_lsn, source_ordinal integer, source_xid xid8, transaction_id xid8,
      occurred_at timestamptz, recorded_at timestamptz
    ) RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
      SELECT sha256(convert_to(jsonb_build_array(
        encode(previous, 'hex'), event_id::text, aggregate_type, aggregate_id, sequence,
        event_type, schema_version, payload, metadata, source,
        source_commit_lsn::text, source_ordinal, source_xid::text, transaction_id::text,
        (extract(epoch FROM occurred_at) * 1000000)::bigint,
        (extract(epoch FROM recorded_at) * 1000000)::bigint
      )::text, 'UTF8'))
    $fn$`);

  // Append-only. ENABLE ALWAYS: the trigger also fires under session_replication_role =
  // replica, which silences ordinary triggers. Only the table owner or a superuser can
  // disable it; the hash chain shows what they change.
  await run(`
    CREATE FUNCTION ${s}.refuse_event_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      RAISE EXCEPTION 'hindsight events are append-only: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'HS001',
              HINT = 'Record a correcting event instead of changing history.';
    END
    $fn$`);
  await run(`
    CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ${s}.events
      FOR EACH STATEMENT EXECUTE FUNCTION ${s}.refuse_event_change()`);
  await run(`ALTER TABLE ${s}.events ENABLE ALWAYS TRIGGER events_append_only`);
  await run(`REVOKE UPDATE, DELETE, TRUNCATE ON ${s}.events FROM PUBLIC`);
}

export async function down({ run, schema: s }: MigrationContext): Promise<void> {
  await run(`DROP TABLE ${s}.events`);
  await run(`DROP TABLE ${s}.heads`);
  await run(`DROP FUNCTION ${s}.event_hash`);
  await run(`DROP FUNCTION ${s}.refuse_event_change`);
}

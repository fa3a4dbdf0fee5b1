import pg from 'pg';
import { migrate } from '../../src/store/migrate.js';

/**
 * A second hindsight schema whose chained hash costs nothing: its event_hash returns the
 * same 32 zero bytes for every event, so the append statement does every write it does
 * today (head row, event row, the same indexes, a 32-byte hash column) but no hashing. This is the
 * ceiling of any design that seals hashes after commit (issue 12's idea): such a design
 * removes this cost from the append and adds the sealing elsewhere. Benchmark only; a
 * store in this schema has no tamper evidence.
 */
export const UNHASHED_SCHEMA = 'hindsight_unhashed';

export async function migrateUnhashed(url: string): Promise<string> {
  await migrate({ connectionString: url, schema: UNHASHED_SCHEMA });
  const client = new pg.Client(url);
  await client.connect();
  try {
    await client.query(`
      CREATE OR REPLACE FUNCTION ${UNHASHED_SCHEMA}.event_hash(
        previous bytea, event_id uuid, aggregate_type text, aggregate_id text, sequence bigint,
        event_type text, schema_version integer, payload jsonb, metadata jsonb, source text,
        source_commit_lsn pg_lsn, source_ordinal integer, source_xid xid8, transaction_id xid8,
        occurred_at timestamptz, recorded_at timestamptz
      ) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$ SELECT '\\x${'00'.repeat(32)}'::bytea $fn$`);
  } finally {
    await client.end();
  }
  return UNHASHED_SCHEMA;
}

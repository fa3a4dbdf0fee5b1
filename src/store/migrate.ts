import { migrations, type Migration } from '../../migrations/index.js';
import type { MigrationContext } from '../../migrations/context.js';
import { ConfigError, DatabaseError } from '../errors.js';
import { quoteIdent } from '../db/identifiers.js';
import { describeDatabaseError } from '../db/describeError.js';

export interface MigrateOptions {
  connectionString: string;
  /** hindsight's schema. Default "hindsight". */
  schema?: string;
  /** Roles granted what appends need; UPDATE, DELETE and TRUNCATE on events revoked. Default none. */
  appRoles?: ReadonlyArray<string>;
  /** Apply only the first N migrations (for upgrade tests). Default all. */
  onlyFirst?: number;
}

export interface MigrateResult {
  /** Migrations applied by this call, in order; empty when the schema was up to date. */
  applied: string[];
  /** Every migration now applied. */
  current: string[];
}

/** Server versions before 14 lack what the event store needs (xid8 functions, pgoutput messages). */
const MIN_SERVER_VERSION = 140000;

/**
 * Creates or upgrades hindsight's schema with knex migrations. Idempotent: a second run
 * applies nothing. Concurrent runs are serialised by an advisory lock.
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const schema = options.schema ?? 'hindsight';
  const quoted = quoteIdent(schema);
  const { default: knexFactory } = await import('knex');
  // One connection, so the advisory lock and the migrations share a session.
  const quiet = () => undefined; // the library never prints; failures surface as errors
  const knex = knexFactory({
    client: 'pg',
    connection: options.connectionString,
    pool: { min: 0, max: 1 },
    acquireConnectionTimeout: 15_000,
    log: { warn: quiet, error: quiet, deprecate: quiet, debug: quiet },
  });
  try {
    const version = await knex.raw(`SELECT current_setting('server_version_num')::int AS v`);
    if (Number(version.rows[0].v) < MIN_SERVER_VERSION) {
      throw new DatabaseError(`hindsight needs PostgreSQL 14 or later; this server is ${version.rows[0].v}`);
    }
    await knex.raw(`SELECT pg_advisory_lock(hashtext('hindsight.migrate'))`);
    try {
      await knex.raw(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
      const selected = migrations.slice(0, options.onlyFirst ?? migrations.length);
      const config = {
        schemaName: schema,
        tableName: 'migrations',
        migrationSource: {
          getMigrations: async () => selected,
          getMigrationName: (m: Migration) => m.name,
          getMigration: async (m: Migration) => ({
            up: (k: typeof knex) => m.up(context(k, quoted)),
            down: (k: typeof knex) => m.down(context(k, quoted)),
          }),
        },
      };
      const [, applied] = (await knex.migrate.latest(config)) as [number, string[]];
      const [done] = (await knex.migrate.list(config)) as [Array<{ name: string }>, unknown];
      await grantAppRoles(knex, quoted, options.appRoles ?? []);
      return { applied, current: done.map((m) => m.name) };
    } finally {
      await knex.raw(`SELECT pg_advisory_unlock(hashtext('hindsight.migrate'))`).catch(() => undefined);
    }
  } catch (error) {
    throw describeDatabaseError(error, 'migrate');
  } finally {
    await knex.destroy();
  }
}

function context(k: { raw(sql: string): PromiseLike<unknown> }, schema: string): MigrationContext {
  return {
    schema,
    async run(sql: string) {
      await k.raw(sql);
    },
  };
}

/**
 * What the application's roles need for appends, and no more: events can be read and
 * inserted but never updated, deleted or truncated.
 */
async function grantAppRoles(knex: { raw(sql: string, b?: unknown[]): PromiseLike<any> }, schema: string, roles: ReadonlyArray<string>) {
  for (const role of roles) {
    const found = await knex.raw('SELECT 1 FROM pg_roles WHERE rolname = ?', [role]);
    if (found.rows.length === 0) {
      throw new ConfigError(`appRoles: the role "${role}" does not exist in this database cluster; create it or remove it from appRoles`);
    }
    const r = quoteIdent(role);
    await knex.raw(`GRANT USAGE ON SCHEMA ${schema} TO ${r}`);
    await knex.raw(`GRANT SELECT, INSERT ON ${schema}.events TO ${r}`);
    await knex.raw(`GRANT SELECT, INSERT, UPDATE ON ${schema}.heads TO ${r}`);
    // Capture "both": the app stages events (after checking that the listener's baseline exists).
    await knex.raw(`GRANT SELECT, INSERT ON ${schema}.staged_events TO ${r}`);
    await knex.raw(`GRANT SELECT ON ${schema}.baselines, ${schema}.replication_state TO ${r}`);
    await knex.raw(`REVOKE UPDATE, DELETE, TRUNCATE ON ${schema}.events FROM ${r}`);
  }
}

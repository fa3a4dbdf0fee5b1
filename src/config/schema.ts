import { z } from 'zod';
import { identifierProblem, parseTableName } from '../db/identifiers.js';
import { isEventDefinition, type EventDefinition } from '../events/defineEvent.js';
import { isProjectorDefinition, type ProjectorDefinition } from '../projection/defineProjector.js';
import { parseKeyType } from './keyTypes.js';
import { readModelSchema } from '../readmodel/declaration.js';

/**
 * The schema of `hindsight.config.ts` (or .js, .json). One declaration per aggregate
 * type; later features extend that declaration rather than adding parallel ones.
 */

const identifier = z.string().superRefine((name, ctx) => {
  const problem = identifierProblem(name);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/**
 * Slot and publication names: lower-case letters, digits and _, as PostgreSQL requires of
 * slots; publications are held to the same because the replication package interpolates
 * their names unquoted into START_REPLICATION.
 */
const plainName = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, {
  message: 'use 1-63 lower-case letters, digits and _, starting with a letter or _ (slot and publication names are not quoted)',
});

/** Aggregate type names: letters, digits, `_`, `-` and dots, like event types. */
const aggregateTypeName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/, {
    message: 'an aggregate type is a name of letters, digits, _, - and dots, for example "account"',
  })
  .max(200);

const keyColumn = z
  .object({
    /** The legacy key column. */
    column: identifier,
    /** Its exact type: smallint, integer, bigint, uuid, text, varchar(n) or numeric(p,s). */
    type: z.string().superRefine((declared, ctx) => {
      const parsed = parseKeyType(declared);
      if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
    }),
  })
  .strict();

/** A column-map entry: the state field a legacy column becomes (default: the column's own name). */
const columnSpec = z.preprocess(
  (value) => (typeof value === 'string' ? { field: value } : value),
  z.object({ field: z.string().min(1).optional() }).strict(),
);

/** A column value as a rule compares it: its text form ('active', '42', true for 't'). */
const columnValue = z.union([z.string(), z.number(), z.boolean()]);

/**
 * A mapping rule for listener types: when `column` becomes `becomes` (on an insert, or an
 * update that changed it, optionally only from `from`), the change is recorded as the
 * domain event `event` with a payload taken from the row (`payload`: field -> column),
 * instead of the generic event.
 */
const mappingRule = z
  .object({
    column: identifier,
    becomes: columnValue,
    from: columnValue.optional(),
    event: z.string().min(1),
    payload: z.record(z.string(), identifier).default({}),
  })
  .strict();

const aggregate = z
  .object({
    /** The aggregate type, e.g. "account". */
    type: aggregateTypeName,
    /** The legacy table holding its current state: "table" or "schema.table". */
    table: z.string().superRefine((table, ctx) => {
      const parsed = parseTableName(table);
      if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
    }),
    /** The key column, or the columns of a composite key, in order. */
    key: z.preprocess((value) => (Array.isArray(value) ? value : [value]), z.array(keyColumn).min(1)),
    /** Legacy column -> state field. Default: every column of a row image, under its own name. */
    columns: z.record(z.string(), columnSpec).optional(),
    /** Who writes the events: "app" (the wrappers; default), "listener" or "both". */
    capture: z.enum(['app', 'listener', 'both']).default('app'),
    /**
     * For listener types: "full" (default) makes PostgreSQL log whole old rows, so updates
     * carry before-values and unchanged large values; "default" keeps the table's replica
     * identity (cheaper writes; updates then carry no before-values).
     */
    replicaIdentity: z.enum(['full', 'default']).default('full'),
    /** Listener types: column transitions that become domain events (see README, mapping rules). */
    mappings: z.array(mappingRule).default([]),
    /** Domain events made by defineEvent(); the table's generic events are added automatically. */
    events: z
      .array(
        z.custom<EventDefinition>(isEventDefinition, {
          message: 'expected an event definition made by defineEvent(type, schema)',
        }),
      )
      .default([]),
    /** A projector made by defineProjector(); default: the column-map fold of the generic events. */
    projector: z
      .custom<ProjectorDefinition>(isProjectorDefinition, {
        message: 'expected a projector made by defineProjector({...})',
      })
      .optional(),
    /** Refuse appends without an actor in their context. Default: the top-level requireActor. */
    requireActor: z.boolean().optional(),
    /** The read-model updater writes a snapshot every N events of an aggregate. Default: off. */
    snapshotEvery: z.number().int().positive().optional(),
    /** Tables kept up to date from this type's projected state (see README, read models). */
    readModels: z.array(readModelSchema).default([]),
  })
  .strict();

export const configSchema = z
  .object({
    /** The PostgreSQL schema for hindsight's own tables. Default "hindsight". */
    schema: identifier.default('hindsight'),
    /** Use the embedded PostgreSQL (kept under ./.hindsight/) when no database URL is given. Default false. */
    embedded: z.boolean().default(false),
    /** The database URL; `--database-url` and DATABASE_URL take precedence. */
    databaseUrl: z.string().min(1).optional(),
    /** Refuse appends whose context has no actor. Default false. */
    requireActor: z.boolean().default(false),
    /**
     * Roles of the application: `migrate` grants them what appends need and revokes
     * UPDATE, DELETE and TRUNCATE on the events table. Default none.
     */
    appRoles: z.array(identifier).default([]),
    aggregates: z.array(aggregate).default([]),
    /** The logical-replication slot and publication of listener types (see README, capture what the app misses). */
    replication: z
      .object({
        /** The slot's name, unique in the cluster. Default "hindsight". */
        slot: plainName.default('hindsight'),
        /**
         * The publication of the mapped legacy tables. Default "hindsight_legacy". Capture
         * "both" adds "<publication>_staging", insert-only, on hindsight's staging table.
         */
        publication: plainName.refine((name) => name.length <= 55, { message: 'at most 55 characters (hindsight appends "_staging" for the staging publication)' }).default('hindsight_legacy'),
      })
      .strict()
      .default({ slot: 'hindsight', publication: 'hindsight_legacy' }),
  })
  .strict();

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type AggregateInput = z.input<typeof aggregate>;

/** Identity function that gives a config file its types. */
export function defineConfig(config: ConfigInput): ConfigInput {
  return config;
}

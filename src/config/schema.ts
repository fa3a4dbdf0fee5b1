import { z } from 'zod';
import { identifierProblem, parseTableName } from '../db/identifiers.js';
import { isEventDefinition, type EventDefinition } from '../events/defineEvent.js';
import { isProjectorDefinition, type ProjectorDefinition } from '../projection/defineProjector.js';
import { parseKeyType } from './keyTypes.js';
import { readModelSchema } from '../readmodel/declaration.js';
import { scheduleSpec } from '../schedule/scheduleSpec.js';
import { alertsSpec } from '../alerts/alertSpec.js';

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

/**
 * A column-map entry: the state field a legacy column becomes (default: the column's own
 * name), and how the verifier compares the two (see README, verification).
 */
const columnSpec = z.preprocess(
  (value) => (typeof value === 'string' ? { field: value } : value),
  z
    .object({
      field: z.string().min(1).optional(),
      /**
       * "exact" (default: by the column's type, so 1.50 = 1.5 for numbers and jsonb compares
       * structurally), "numeric", "timestamp", "json" or "text" (the column's text form).
       */
      compare: z.enum(['exact', 'numeric', 'timestamp', 'json', 'text']).optional(),
      /** numeric: round both sides to this many decimals first. */
      scale: z.number().int().min(0).max(1000).optional(),
      /** numeric: equal when they differ by at most this much (a decimal, as text or number). */
      tolerance: z.union([z.string().regex(/^\d+(\.\d+)?$/, { message: 'a non-negative decimal such as "0.01"' }), z.number().nonnegative()]).optional(),
      /** timestamp: compare to this precision (default microsecond). */
      precision: z.enum(['microsecond', 'millisecond', 'second', 'minute', 'day']).optional(),
      /** Legacy value -> the value the state holds for it, e.g. { "A": "active" } (compared as text). */
      values: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).optional(),
      /** A NULL column equals a state without the field. Default false: only an explicit null equals NULL. */
      nullEqualsMissing: z.boolean().optional(),
    })
    .strict()
    .superRefine((spec, ctx) => {
      const numericOnly = spec.scale !== undefined || spec.tolerance !== undefined;
      if (numericOnly && spec.compare !== 'numeric') ctx.addIssue({ code: 'custom', message: 'scale and tolerance need compare: "numeric"' });
      if (spec.scale !== undefined && spec.tolerance !== undefined) ctx.addIssue({ code: 'custom', message: 'give scale or tolerance, not both' });
      if (spec.precision !== undefined && spec.compare !== 'timestamp') ctx.addIssue({ code: 'custom', message: 'precision needs compare: "timestamp"' });
      if (spec.values !== undefined && spec.compare !== undefined && spec.compare !== 'text' && spec.compare !== 'exact') {
        ctx.addIssue({ code: 'custom', message: 'values (a rename of legacy values) compares text: leave compare out or set it to "text"' });
      }
    }),
);

/** A verifier ignore rule: a known divergence, with why and until when. */
const ignoreRule = z
  .object({
    /** Only this state field (default: the whole aggregate). */
    field: z.string().min(1).optional(),
    /** Only these aggregates, by canonical id (default: every aggregate of the type). */
    ids: z.array(z.string()).min(1).optional(),
    /** Why the divergence is accepted: shown in every report. */
    reason: z.string().trim().min(3, { message: 'say why this divergence is accepted' }),
    /** The last day the rule applies (YYYY-MM-DD); a run after it fails until the rule is renewed or removed. */
    expires: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, { message: 'a date as YYYY-MM-DD' }),
  })
  .strict();

/** How `hindsight verify` treats a type beyond its column map. */
const verifySpec = z
  .object({
    /** A legacy column every write path sets to the time of the write: it lets verify see writes no event recorded. */
    updatedAt: identifier.optional(),
    ignore: z.array(ignoreRule).default([]),
    /** Scheduled runs of this type's check, run by `hindsight run` (see README, scheduled checks). */
    schedule: z.array(scheduleSpec).default([]),
  })
  .strict();

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
    /** The dual-run verifier's settings (see README, verification). */
    verify: verifySpec.default({ ignore: [], schedule: [] }),
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
    /** Checks of every type at once, run by `hindsight run`: `{ schedule: [...] }`. */
    verify: z
      .object({ schedule: z.array(scheduleSpec).default([]) })
      .strict()
      .default({ schedule: [] }),
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
    /** Webhooks `hindsight run` POSTs alerts to (see README, Alerts). Default: none. */
    alerts: alertsSpec.optional(),
  })
  .strict();

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type AggregateInput = z.input<typeof aggregate>;

/** Identity function that gives a config file its types. */
export function defineConfig(config: ConfigInput): ConfigInput {
  return config;
}

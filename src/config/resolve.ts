import { createHash } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { quoteIdent, parseTableName, type TableName } from '../db/identifiers.js';
import type { KeyColumn } from '../db/canonicalKey.js';
import type { EventDefinition } from '../events/defineEvent.js';
import { genericEventsFor } from '../events/genericEvents.js';
import type { ProjectorDefinition } from '../projection/defineProjector.js';
import type { CaptureMode } from '../types.js';
import { redactUrl } from '../db/redactUrl.js';
import { parseKeyType } from './keyTypes.js';
import { configSchema } from './schema.js';
import { resolveReadModel, type ReadModel } from '../readmodel/declaration.js';
import { resolveChecks, type ScheduledCheck } from '../schedule/checks.js';
import { resolveAlerts, type AlertSettings } from '../alerts/alertSpec.js';

/** One aggregate type's declaration, checked and with its SQL pieces prepared. */
export interface AggregateType {
  type: string;
  /** The legacy table, quoted. */
  table: TableName;
  /** The table as declared; the prefix of its generic event types (`accounts.updated`). */
  tableLabel: string;
  key: ReadonlyArray<KeyColumn>;
  /** Legacy column -> state field; undefined means every column under its own name. */
  columns: ReadonlyMap<string, string> | undefined;
  capture: CaptureMode;
  /** Listener types: log whole old rows ("full") or keep the table's replica identity. */
  replicaIdentity: 'full' | 'default';
  /** Listener types: column transitions recorded as domain events instead of generic ones. */
  mappings: ReadonlyArray<MappingRule>;
  /** Every event type this aggregate may have: its domain events and its table's generic ones. */
  events: ReadonlyMap<string, EventDefinition>;
  projector: ProjectorDefinition | undefined;
  requireActor: boolean;
  /** Snapshot every N events (written by the updater); undefined: off. */
  snapshotEvery: number | undefined;
  /**
   * Identifies what the fold means: the projector's version and the column map. A
   * snapshot is used only by the same projection version that wrote it.
   */
  projectionVersion: string;
  readModels: ReadonlyArray<ReadModel>;
  /**
   * How the verifier compares each legacy column of `columns` with its state field; empty
   * when `columns` is not declared (the verifier then compares every non-key column, exactly).
   */
  comparisons: ReadonlyMap<string, ComparisonRule>;
  verify: {
    /** A legacy column set to the time of every write (lets the verifier see uncaptured writes). */
    updatedAt: string | undefined;
    ignore: ReadonlyArray<IgnoreRule>;
  };
}

/** How the verifier compares one legacy column with the state field it becomes. */
export interface ComparisonRule {
  column: string;
  field: string;
  compare: 'exact' | 'numeric' | 'timestamp' | 'json' | 'text';
  scale?: number;
  /** A non-negative decimal, as text. */
  tolerance?: string;
  precision?: 'microsecond' | 'millisecond' | 'second' | 'minute' | 'day';
  /** Legacy text -> the state's value for it (null: SQL NULL). */
  values?: ReadonlyMap<string, string | null>;
  nullEqualsMissing: boolean;
}

export interface IgnoreRule {
  field: string | undefined;
  ids: ReadonlySet<string> | undefined;
  reason: string;
  /** YYYY-MM-DD, the last day it applies. */
  expires: string;
}

export interface MappingRule {
  column: string;
  /** The column's text the rule waits for. */
  becomes: string;
  from: string | undefined;
  event: EventDefinition;
  /** [payload field, column] pairs. */
  payload: ReadonlyArray<readonly [string, string]>;
}

export interface ResolvedConfig {
  schema: string;
  /** The schema name quoted for interpolation. */
  quotedSchema: string;
  embedded: boolean;
  databaseUrl: string | undefined;
  appRoles: ReadonlyArray<string>;
  aggregates: ReadonlyMap<string, AggregateType>;
  /** The slot and publication the listener types use. */
  replication: { slot: string; publication: string };
  /** Every read model of every aggregate type, by name. */
  readModels: ReadonlyMap<string, ReadModel>;
  /** The scheduled consistency checks `hindsight run` runs, per type and for all types. */
  schedules: ReadonlyArray<ScheduledCheck>;
  /** Where `hindsight run` sends alerts; undefined: it sends none. */
  alerts: AlertSettings | undefined;
  /** The file the config came from, for messages. */
  source: string | undefined;
}

/**
 * Validates a config object and prepares it for use. Errors name the failing key, what
 * was expected and what was given; nothing is created from a config that fails here.
 */
export function resolveConfig(input: unknown, source?: string): ResolvedConfig {
  const where = source ? ` in ${source}` : '';
  const parsed = configSchema.safeParse(input ?? {}, { reportInput: true });
  if (!parsed.success) {
    // Webhook headers may hold secrets: an issue under them never shows what was given.
    const lines = parsed.error.issues.map((issue) => `  - ${formatPath(issue.path)}: ${issue.message}${underHeaders(issue.path) ? '' : given(issue)}`);
    throw new ConfigError(`invalid config${where}:\n${lines.join('\n')}`);
  }
  const config = parsed.data;
  const aggregates = new Map<string, AggregateType>();
  const readModels = new Map<string, ReadModel>();
  const readModelTables = new Set<string>();
  config.aggregates.forEach((declared, index) => {
    const at = `aggregates[${index}] (${declared.type})`;
    const fail = (message: string): never => {
      throw new ConfigError(`invalid config${where}:\n  - ${at}: ${message}`);
    };
    if (aggregates.has(declared.type)) fail(`the aggregate type "${declared.type}" is declared twice`);
    const table = parseTableName(declared.table) as TableName;
    const key = declared.key.map((k) => ({
      column: k.column,
      quoted: quoteIdent(k.column),
      type: parseKeyType(k.type) as Exclude<ReturnType<typeof parseKeyType>, { error: string }>,
    }));
    if (new Set(key.map((k) => k.column)).size !== key.length) fail('a key column is listed twice');

    const events = new Map<string, EventDefinition>();
    for (const generic of genericEventsFor(declared.table)) events.set(generic.type, generic);
    const genericTypes = new Set(events.keys());
    for (const event of declared.events) {
      if (genericTypes.has(event.type)) {
        fail(`event type "${event.type}" is one of the table's built-in generic events; give the domain event its own name`);
      }
      if (events.has(event.type)) fail(`event type "${event.type}" is declared twice`);
      events.set(event.type, event);
    }
    if (declared.projector && declared.projector.aggregateType !== declared.type) {
      fail(`its projector is for aggregate type "${declared.projector.aggregateType}"`);
    }

    let columns: Map<string, string> | undefined;
    const comparisons = new Map<string, ComparisonRule>();
    if (declared.columns) {
      columns = new Map();
      const fields = new Set<string>();
      for (const [column, spec] of Object.entries(declared.columns)) {
        const field = spec.field ?? column;
        if (fields.has(field)) fail(`columns: two legacy columns map to the state field "${field}"`);
        fields.add(field);
        columns.set(column, field);
        comparisons.set(column, {
          column,
          field,
          compare: spec.values ? 'text' : (spec.compare ?? 'exact'),
          ...(spec.scale !== undefined ? { scale: spec.scale } : {}),
          ...(spec.tolerance !== undefined ? { tolerance: String(spec.tolerance) } : {}),
          ...(spec.precision !== undefined ? { precision: spec.precision } : {}),
          ...(spec.values ? { values: new Map(Object.entries(spec.values).map(([from, to]) => [from, to === null ? null : String(to)])) } : {}),
          nullEqualsMissing: spec.nullEqualsMissing ?? false,
        });
      }
    }
    const knownFields = columns ? new Set(columns.values()) : undefined;
    declared.verify.ignore.forEach((rule, i) => {
      if (rule.field !== undefined && knownFields && !knownFields.has(rule.field)) {
        fail(`verify.ignore[${i}]: "${rule.field}" is not a state field of the column map (${[...knownFields].join(', ')})`);
      }
      const day = new Date(`${rule.expires}T00:00:00Z`);
      if (Number.isNaN(day.getTime()) || day.toISOString().slice(0, 10) !== rule.expires) fail(`verify.ignore[${i}]: expires "${rule.expires}" is not a date`);
    });

    if (declared.mappings.length > 0 && declared.replicaIdentity !== 'full') {
      fail('mapping rules need replicaIdentity "full": without the old row an update cannot show that a column changed');
    }
    const mappings: MappingRule[] = declared.mappings.map((rule, i) => {
      const at = `mappings[${i}]`;
      if (declared.capture === 'app') fail(`${at}: mapping rules apply to row changes, so only to capture "listener" or "both" types`);
      const definition = events.get(rule.event);
      if (!definition || genericTypes.has(rule.event)) fail(`${at}: event "${rule.event}" is not one of this type's declared domain events (add it to "events" with defineEvent)`);
      for (const column of [rule.column, ...Object.values(rule.payload)]) {
        if (declared.columns && !(column in declared.columns) && !declared.key.some((k) => k.column === column)) {
          fail(`${at}: column "${column}" is not in this type's "columns" map or key, so its changes are not read`);
        }
      }
      return {
        column: rule.column,
        becomes: ruleText(rule.becomes),
        from: rule.from === undefined ? undefined : ruleText(rule.from),
        event: definition!,
        payload: Object.entries(rule.payload),
      };
    });

    const models: ReadModel[] = [];
    declared.readModels.forEach((input, i) => {
      const resolved = resolveReadModel(input, declared.type);
      if ('error' in resolved) fail(`readModels[${i}] (${input.name}): ${resolved.error}`);
      const model = resolved as ReadModel;
      if (readModels.has(model.name)) fail(`readModels[${i}]: the read-model name "${model.name}" is used twice`);
      if (readModelTables.has(model.table.quoted)) fail(`readModels[${i}] (${model.name}): the table ${input.table} is used by another read model`);
      readModels.set(model.name, model);
      readModelTables.add(model.table.quoted);
      models.push(model);
    });

    aggregates.set(declared.type, {
      type: declared.type,
      table,
      tableLabel: declared.table,
      key,
      columns,
      capture: declared.capture,
      replicaIdentity: declared.replicaIdentity,
      mappings,
      events,
      projector: declared.projector,
      requireActor: declared.requireActor ?? config.requireActor,
      snapshotEvery: declared.snapshotEvery,
      projectionVersion: projectionVersion(declared.projector, columns),
      readModels: models,
      comparisons,
      verify: {
        updatedAt: declared.verify.updatedAt,
        ignore: declared.verify.ignore.map((rule) => ({
          field: rule.field,
          ids: rule.ids ? new Set(rule.ids) : undefined,
          reason: rule.reason,
          expires: rule.expires,
        })),
      },
    });
  });

  const schedules = [...resolveChecks(config.verify.schedule, undefined), ...config.aggregates.flatMap((declared) => resolveChecks(declared.verify.schedule, declared.type))];
  const seen = new Set<string>();
  for (const check of schedules) {
    if (seen.has(check.id)) throw new ConfigError(`invalid config${where}:\n  - verify.schedule: two schedules are both "${check.id}"; give one a name`);
    seen.add(check.id);
    const model = check.target.startsWith('read-model:') ? readModels.get(check.target.slice('read-model:'.length)) : undefined;
    if (check.target !== 'projection' && (!model || (check.types && check.types[0] !== model.aggregateType))) {
      throw new ConfigError(`invalid config${where}:\n  - verify.schedule "${check.id}": target "${check.target}" is not a read model of ${check.types?.[0] ?? 'the config'} (give projection or read-model:<name>)`);
    }
  }

  return {
    schema: config.schema,
    quotedSchema: quoteIdent(config.schema),
    embedded: config.embedded,
    databaseUrl: config.databaseUrl,
    appRoles: config.appRoles,
    aggregates,
    replication: config.replication,
    readModels,
    schedules,
    alerts: resolveAlerts(config.alerts),
    source,
  };
}

/** A rule's value as PostgreSQL prints the column: booleans as t/f. */
function ruleText(value: string | number | boolean): string {
  return typeof value === 'boolean' ? (value ? 't' : 'f') : String(value);
}

/** Looks up an aggregate type, with the known types in the message when it is not one. */
export function aggregateTypeOf(config: ResolvedConfig, type: string): AggregateType {
  const found = config.aggregates.get(type);
  if (found) return found;
  const known = [...config.aggregates.keys()];
  throw new ConfigError(
    `unknown aggregate type "${type}"; ${known.length ? `the config declares: ${known.join(', ')}` : 'the config declares no aggregates'}`,
  );
}

function projectionVersion(projector: ProjectorDefinition | undefined, columns: Map<string, string> | undefined): string {
  const columnMap = createHash('sha256')
    .update(JSON.stringify(columns ? [...columns.entries()] : null))
    .digest('hex')
    .slice(0, 12);
  return `${projector ? projector.version : 0}:${columnMap}`;
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${String(part)}` : String(part);
  return out || '(top level)';
}

function underHeaders(path: ReadonlyArray<PropertyKey>): boolean {
  return path[0] === 'alerts' && path.includes('headers');
}

function given(issue: { input?: unknown; code?: string }): string {
  if (!('input' in issue) || issue.code === 'custom' || issue.code === 'unrecognized_keys') return '';
  const value = issue.input;
  let text: string;
  if (value === undefined) text = 'nothing';
  else if (typeof value === 'function') text = 'a function';
  else if (typeof value === 'string') text = JSON.stringify(redactUrl(value));
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  if (text.length > 80) text = `${text.slice(0, 77)}...`;
  return ` (given: ${text})`;
}

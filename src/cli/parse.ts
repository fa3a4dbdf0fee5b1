import yargs, { type Argv } from 'yargs';
import { UsageError, isValidationError } from '../errors.js';
import { STATUS_LIMITS } from '../replication/statusProblems.js';
import { checkTimeZone, parseCliTime } from '../time.js';
import type { ExpectedVersion } from '../types.js';

/**
 * Step one of every command: turn argv into a validated options object, or help text, or
 * a usage error. Needs no database and no config, so it is tested on its own.
 */

export interface GlobalOptions {
  config: string | undefined;
  databaseUrl: string | undefined;
  embedded: boolean;
  json: boolean;
}

export type Command =
  | { name: 'migrate' }
  | { name: 'db'; action: 'start' | 'stop' | 'status' | 'url' }
  | {
      name: 'append';
      aggregateType: string;
      aggregateId: string;
      eventType: string;
      payload: unknown;
      expectedVersion: ExpectedVersion;
      actor: string | undefined;
      reason: string | undefined;
      occurredAt: string | undefined;
    }
  | { name: 'history'; aggregateType: string; aggregateId: string; from: string | undefined; to: string | undefined; tz: string }
  | { name: 'state'; aggregateType: string; aggregateId: string; asOf: string | undefined; atSequence: number | undefined; tz: string }
  | { name: 'audit'; aggregateType: string | undefined; aggregateId: string | undefined }
  | { name: 'snapshot'; aggregateType: string; aggregateId: string | undefined }
  | {
      name: 'rebuild';
      readModels: string[];
      all: boolean;
      cancel: boolean;
      batchSize: number | undefined;
      checkpointEveryMs: number | undefined;
      lockTimeoutMs: number | undefined;
    }
  | {
      name: 'project';
      once: boolean;
      status: boolean;
      readModels: string[];
      retryFailed: boolean;
      leaseTtlMs: number | undefined;
      batchSize: number | undefined;
      gatherMs: number | undefined;
    }
  | {
      name: 'replication';
      action: 'setup' | 'status' | 'teardown';
      lockTimeoutMs: number | undefined;
      maxLagBytes: number;
      maxLagSeconds: number;
      maxCheckpointAgeSeconds: number;
      yes: boolean;
      force: boolean;
    }
  | { name: 'backfill'; aggregateType: string | undefined; batchSize: number | undefined; slotWaitMs: number | undefined }
  | { name: 'listen'; groupMs: number | undefined; heartbeatMs: number | undefined }
  | {
      name: 'verify';
      aggregateType: string | undefined;
      target: string | undefined;
      history: boolean;
      ids: string[];
      sample: number | undefined;
      changedSinceLast: boolean;
      lagTimeoutMs: number | undefined;
      concurrency: number | undefined;
      jsonl: boolean;
      show: number;
      metricsFile: string | undefined;
    }
  | {
      name: 'cutover';
      action: 'status' | 'switch' | 'revert';
      aggregateType: string;
      readModel: string | undefined;
      runs: number | undefined;
      days: number | undefined;
      force: boolean;
      reason: string | undefined;
    }
  | { name: 'demo' };

export type ParsedCli =
  | { kind: 'output'; text: string }
  | { kind: 'command'; global: GlobalOptions; command: Command };

const VERSION = '0.1.0';

const EPILOGUE = [
  "Database: --database-url, else --embedded, else DATABASE_URL, else the config's databaseUrl, else the config's \"embedded: true\". With none of them, commands that need a database exit 2 with \"no database configured\".",
  'Exit codes: 0 success; 1 a check found problems, an append lost a race, or there was nothing to show; 2 usage, config or connection error.',
].join('\n\n');

function describeCli(args: string[]): Argv {
  return yargs(args)
    .scriptName('hindsight')
    .usage('$0 <command> [options]\n\nRetrofit event sourcing onto an existing CRUD PostgreSQL database.')
    .exitProcess(false)
    .strict()
    .recommendCommands()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .option('config', { type: 'string', describe: 'config file (default ./hindsight.config.ts, .js or .json)', global: true })
    .option('database-url', { type: 'string', describe: 'PostgreSQL URL (default DATABASE_URL)', global: true })
    .option('embedded', { type: 'boolean', default: false, describe: 'use the embedded PostgreSQL kept in ./.hindsight/', global: true })
    .option('json', { type: 'boolean', default: false, describe: 'machine-readable output on stdout', global: true })
    .command('migrate', "create or upgrade hindsight's schema (idempotent)")
    .command('db <action>', 'the embedded PostgreSQL kept in ./.hindsight/', (y) =>
      y.positional('action', { choices: ['start', 'stop', 'status', 'url'] as const, describe: 'what to do' }),
    )
    .command('append <type> <id> <event-type>', 'append one event to an aggregate (operations, scripts)', (y) =>
      y
        .positional('type', { type: 'string', describe: 'aggregate type, e.g. account' })
        .positional('id', { type: 'string', describe: 'aggregate id; a JSON array for a composite key' })
        .positional('event-type', { type: 'string', describe: 'event type declared for the aggregate' })
        .option('payload', { type: 'string', demandOption: true, describe: 'the payload as JSON' })
        .option('expected-version', { type: 'string', default: 'any', describe: 'a number, any, none or exists' })
        .option('actor', { type: 'string', describe: 'who is doing this (metadata.actor)' })
        .option('reason', { type: 'string', describe: 'why (metadata.reason)' })
        .option('occurred-at', { type: 'string', describe: 'business time, ISO-8601 with an offset (default now)' })
        .example('$0 append account 42 account.credited --payload \'{"amount":100}\' --actor ops --reason "refund #17"', ''),
    )
    .command('history <type> <id>', 'the ledger: when, which event, who, why, and which fields changed', (y) =>
      y
        .positional('type', { type: 'string' })
        .positional('id', { type: 'string' })
        .option('from', { type: 'string', describe: 'start (a date is midnight in --tz)' })
        .option('to', { type: 'string', describe: 'end (a date includes that whole day)' })
        .option('tz', { type: 'string', default: 'UTC', describe: 'time zone for bare dates and for output' })
        .example('$0 history account 42 --from 2026-02-03 --to 2026-02-17 --tz Europe/Berlin', ''),
    )
    .command('state <type> <id>', 'projected state, now or at a point in its history', (y) =>
      y
        .positional('type', { type: 'string' })
        .positional('id', { type: 'string' })
        .option('as-of', { type: 'string', describe: 'state as of this time (a date is midnight in --tz)' })
        .option('at-sequence', { type: 'string', describe: 'state after this event sequence' })
        .option('tz', { type: 'string', default: 'UTC', describe: 'time zone for --as-of dates' })
        .conflicts('as-of', 'at-sequence'),
    )
    .command('audit [type] [id]', 'check hash chains; exit 1 naming the first broken event', (y) =>
      y.positional('type', { type: 'string' }).positional('id', { type: 'string' }),
    )
    .command('snapshot <type>', 'write snapshots of every aggregate of a type (or one) at its current version', (y) =>
      y.positional('type', { type: 'string' }).option('id', { type: 'string', describe: 'only this aggregate' }),
    )
    .command('project', 'run the read-model updaters until SIGTERM/SIGINT (or --once), or show their --status', (y) =>
      y
        .option('once', { type: 'boolean', describe: 'drain every read model to the current end of the log, then exit' })
        .option('status', { type: 'boolean', describe: 'show checkpoint, lag and state per read model, and what holds the horizon; exit 1 if any is failed or stalled' })
        .option('read-model', { type: 'string', array: true, describe: 'only these read models (repeatable)' })
        .option('retry-failed', { type: 'boolean', default: false, describe: 'clear a recorded failure and try again' })
        .option('lease-ttl', { type: 'string', describe: 'seconds before another process takes over a dead one (default 10)' })
        .option('batch-size', { type: 'string', describe: 'events read per batch (default 500)' })
        .option('gather-ms', { type: 'string', describe: 'wait after a batch that was not full, so batches grow: lower for fresher read models, higher to spare a busy database (default 100)' })
        .conflicts('once', 'status'),
    )
    .command('rebuild [read-model]', 'rebuild a read model into a shadow table from the start of the log, then swap it in without downtime', (y) =>
      y
        .positional('read-model', { type: 'string', describe: 'the read model to rebuild' })
        .option('all', { type: 'boolean', describe: 'rebuild every read model of the config, one after the other' })
        .option('cancel', { type: 'boolean', describe: 'drop an unfinished rebuild (its shadow table and checkpoint)' })
        .option('batch-size', { type: 'string', describe: 'events read per chunk, each with one COPY in its own transaction (default 250000)' })
        .option('checkpoint-every', { type: 'string', describe: 'seconds between saves of the built rows and the checkpoint: what a crash can cost (default 10; 0 saves after every chunk)' })
        .option('lock-timeout', { type: 'string', describe: 'seconds the swap may wait for its locks (default 5)' })
        .example('$0 rebuild account_balances', '')
        .example('$0 rebuild --all --json', ''),
    )
    .command('replication <action>', 'the publication and replica identity of listener types (setup), the slot\'s health (status), removal (teardown)', (y) =>
      y
        .positional('action', {
          choices: ['setup', 'status', 'teardown'] as const,
          describe: 'setup: check and create; status: exit 1 when the slot is missing or lost, no listener consumes it, or it lags too far; teardown: drop slot and publication',
        })
        .option('lock-timeout', { type: 'string', describe: 'setup: seconds its DDL on live tables may wait for locks (default 5)' })
        .option('max-lag-bytes', { type: 'string', describe: `status: exit 1 when the WAL written since the slot's confirmed position is more than this many bytes (default ${STATUS_LIMITS.maxLagBytes}, 1 GiB)` })
        .option('max-lag-seconds', { type: 'string', describe: `status: exit 1 when a staged app event (capture "both") has waited longer than this (default ${STATUS_LIMITS.maxLagSeconds})` })
        .option('max-checkpoint-age', {
          type: 'string',
          describe: `status: exit 1 when the listener last wrote its checkpoint longer ago than this many seconds (default ${STATUS_LIMITS.maxCheckpointAgeSeconds}; a running listener writes it at least at every heartbeat)`,
        })
        .option('yes', { type: 'boolean', default: false, describe: 'teardown: confirm' })
        .option('force', { type: 'boolean', default: false, describe: 'teardown: even while staged app events wait (they are lost)' })
        .example('$0 replication setup', '')
        .example('$0 replication status || alert', 'exit 1 on a missing or lost slot, no listener, over 1 GiB of lag or a checkpoint older than 5 minutes')
        .example('$0 replication status --max-lag-bytes 104857600 --max-checkpoint-age 60', 'tighter limits'),
    )
    .command('backfill [type]', 'create the slot with an exported snapshot and give every existing row of the listener types its opening event', (y) =>
      y
        .positional('type', { type: 'string', describe: 'a listener type (they share one slot, so all are backfilled together)' })
        .option('batch-size', { type: 'string', describe: 'rows per page and write transaction (default 1000)' })
        .option('slot-wait', { type: 'string', describe: 'seconds to wait for running write transactions before creating the slot (default 30)' }),
    )
    .command('listen', 'turn legacy row changes into events until SIGTERM/SIGINT; a second one waits as a standby', (y) =>
      y
        .option('group-ms', { type: 'string', describe: 'how long to gather source transactions into one write (default 50)' })
        .option('heartbeat', { type: 'string', describe: 'seconds between heartbeat messages that let an idle slot advance (default 10; 0 = off)' }),
    )
    .command('verify [type]', 'compare the state the events produce with the legacy rows, for every aggregate; exit 0 clean (or empty), 1 mismatches, 2 incomplete', (y) =>
      y
        .positional('type', { type: 'string', describe: 'only this aggregate type (default: all)' })
        .option('target', { type: 'string', describe: 'projection (events against legacy rows; default) or read-model:<name> (its rows against their events)' })
        .option('ids', { type: 'string', array: true, describe: 'only these aggregates (a JSON array for a composite key)' })
        .option('sample', { type: 'string', describe: 'only this many random legacy rows' })
        .option('changed-since-last', { type: 'boolean', describe: 'only aggregates with events since the last complete run, those it found mismatched, and rows whose verify.updatedAt is later' })
        .option('lag-timeout', { type: 'string', describe: 'listener types: seconds to wait for the listener to reach the cut (default 30)' })
        .option('concurrency', { type: 'string', describe: 'pages of legacy rows compared at once (default 2)' })
        .option('show', { type: 'string', default: '20', describe: 'mismatches printed per type' })
        .option('jsonl', { type: 'boolean', describe: 'one JSON line per mismatch on stdout (the summary goes to stderr)' })
        .option('metrics-file', { type: 'string', describe: 'write the Prometheus text metrics of this run to this file' })
        .option('history', { type: 'boolean', describe: 'show the stored runs instead of running one' })
        .conflicts('ids', ['sample', 'changed-since-last'])
        .conflicts('sample', 'changed-since-last')
        .example('$0 verify account', '')
        .example('$0 verify --metrics-file /var/lib/node_exporter/hindsight.prom || alert', '')
        .example('$0 verify account --ids 42 17 --json', '')
        .example('$0 verify --target read-model:account_balances', ''),
    )
    .command('cutover <action> <type>', 'the gate that moves reads of a type to its read model: status (a checklist; exit 1 while closed), switch, revert', (y) =>
      y
        .positional('action', { choices: ['status', 'switch', 'revert'] as const, describe: 'status: the checklist from stored runs; switch: move reads (refused while the gate is closed); revert: back to the legacy columns' })
        .positional('type', { type: 'string', describe: 'the aggregate type' })
        .option('read-model', { type: 'string', describe: 'the read model reads move to (default: the type\'s only one)' })
        .option('runs', { type: 'string', describe: 'consecutive clean, complete, full runs needed of each check (default 3)' })
        .option('days', { type: 'string', describe: 'days those runs must span (default 7)' })
        .option('force', { type: 'boolean', describe: 'switch even though the gate is closed (needs --reason; recorded)' })
        .option('reason', { type: 'string', describe: 'why: recorded with the switch or revert' })
        .example('$0 cutover status account', '')
        .example('$0 cutover switch account --force --reason "incident 123: legacy table corrupt"', ''),
    )
    .command('demo', 'the whole story end to end on a throwaway embedded PostgreSQL')
    .demandCommand(1, 'give a command; see hindsight --help')
    .epilogue(EPILOGUE)
    .help()
    .alias('help', 'h')
    .version(VERSION)
    .fail((message, error) => {
      throw new UsageError(message || error?.message || 'invalid command line');
    });
}

export async function parseCli(args: string[]): Promise<ParsedCli> {
  let output = '';
  const argv = (await describeCli(args).parseAsync(args, {}, (_error: unknown, _argv: unknown, text: string) => {
    output = text ?? '';
  })) as Record<string, unknown>;
  if (argv.help || argv.version || output) return { kind: 'output', text: output };
  const global: GlobalOptions = {
    config: argv.config as string | undefined,
    databaseUrl: argv['database-url'] as string | undefined,
    embedded: Boolean(argv.embedded),
    json: Boolean(argv.json),
  };
  try {
    return { kind: 'command', global, command: toCommand(argv) };
  } catch (error) {
    if (isValidationError(error)) throw new UsageError(error.message);
    throw error;
  }
}

function toCommand(argv: Record<string, unknown>): Command {
  const name = String((argv._ as unknown[])[0]);
  const text = (key: string) => argv[key] as string | undefined;
  const required = (key: string) => {
    const value = text(key);
    if (value === undefined || value === '') throw new UsageError(`${key} must not be empty`);
    return value;
  };
  switch (name) {
    case 'migrate':
    case 'demo':
      return { name };
    case 'db':
      return { name, action: argv.action as 'start' | 'stop' | 'status' | 'url' };
    case 'append':
      return {
        name,
        aggregateType: required('type'),
        aggregateId: required('id'),
        eventType: required('event-type'),
        payload: parseJson(required('payload'), '--payload'),
        expectedVersion: parseExpectedVersion(required('expected-version')),
        actor: text('actor'),
        reason: text('reason'),
        occurredAt: text('occurred-at') === undefined ? undefined : parseCliTime(required('occurred-at'), 'UTC'),
      };
    case 'history': {
      const tz = checkTimeZone(required('tz'));
      const from = text('from') === undefined ? undefined : parseCliTime(required('from'), tz);
      const to = text('to') === undefined ? undefined : parseCliTime(required('to'), tz, { wholeDay: true });
      if (from && to && Date.parse(from) >= Date.parse(to)) {
        throw new UsageError(`--from (${text('from')}) must be before --to (${text('to')})`);
      }
      return { name, aggregateType: required('type'), aggregateId: required('id'), from, to, tz };
    }
    case 'state': {
      const tz = checkTimeZone(required('tz'));
      const atSequence = text('at-sequence');
      if (atSequence !== undefined && !/^[1-9]\d*$/.test(atSequence)) {
        throw new UsageError(`--at-sequence must be a whole number from 1, got ${JSON.stringify(atSequence)}`);
      }
      return {
        name,
        aggregateType: required('type'),
        aggregateId: required('id'),
        asOf: text('as-of') === undefined ? undefined : parseCliTime(required('as-of'), tz),
        atSequence: atSequence === undefined ? undefined : Number(atSequence),
        tz,
      };
    }
    case 'audit':
      if (text('id') !== undefined && text('type') === undefined) throw new UsageError('audit: an id needs a type');
      return { name, aggregateType: text('type'), aggregateId: text('id') };
    case 'snapshot':
      return { name, aggregateType: required('type'), aggregateId: text('id') };
    case 'rebuild': {
      const one = text('read-model');
      const all = Boolean(argv.all);
      if (!one && !all) throw new UsageError('rebuild: name a read model, or give --all');
      if (one && all) throw new UsageError('rebuild: give a read model or --all, not both');
      return {
        name,
        readModels: one ? [one] : [],
        all,
        cancel: Boolean(argv.cancel),
        batchSize: text('batch-size') === undefined ? undefined : wholeNumber(required('batch-size'), '--batch-size'),
        checkpointEveryMs:
          text('checkpoint-every') === undefined ? undefined : nonNegativeNumber(required('checkpoint-every'), '--checkpoint-every') * 1000,
        lockTimeoutMs: text('lock-timeout') === undefined ? undefined : positiveNumber(required('lock-timeout'), '--lock-timeout') * 1000,
      };
    }
    case 'project':
      return {
        name,
        once: Boolean(argv.once),
        status: Boolean(argv.status),
        readModels: ((argv['read-model'] as string[] | undefined) ?? []).filter((n) => n !== ''),
        retryFailed: Boolean(argv['retry-failed']),
        leaseTtlMs: text('lease-ttl') === undefined ? undefined : positiveNumber(required('lease-ttl'), '--lease-ttl') * 1000,
        batchSize: text('batch-size') === undefined ? undefined : wholeNumber(required('batch-size'), '--batch-size'),
        gatherMs: text('gather-ms') === undefined ? undefined : wholeNumberOrZero(required('gather-ms'), '--gather-ms'),
      };
    case 'replication':
      return {
        name,
        action: argv.action as 'setup' | 'status' | 'teardown',
        lockTimeoutMs: text('lock-timeout') === undefined ? undefined : positiveNumber(required('lock-timeout'), '--lock-timeout') * 1000,
        maxLagBytes: text('max-lag-bytes') === undefined ? STATUS_LIMITS.maxLagBytes : wholeNumber(required('max-lag-bytes'), '--max-lag-bytes'),
        maxLagSeconds: text('max-lag-seconds') === undefined ? STATUS_LIMITS.maxLagSeconds : positiveNumber(required('max-lag-seconds'), '--max-lag-seconds'),
        maxCheckpointAgeSeconds:
          text('max-checkpoint-age') === undefined ? STATUS_LIMITS.maxCheckpointAgeSeconds : positiveNumber(required('max-checkpoint-age'), '--max-checkpoint-age'),
        yes: Boolean(argv.yes),
        force: Boolean(argv.force),
      };
    case 'backfill':
      return {
        name,
        aggregateType: text('type'),
        batchSize: text('batch-size') === undefined ? undefined : wholeNumber(required('batch-size'), '--batch-size'),
        slotWaitMs: text('slot-wait') === undefined ? undefined : positiveNumber(required('slot-wait'), '--slot-wait') * 1000,
      };
    case 'listen':
      return {
        name,
        groupMs: text('group-ms') === undefined ? undefined : wholeNumber(required('group-ms'), '--group-ms'),
        heartbeatMs: text('heartbeat') === undefined ? undefined : nonNegativeNumber(required('heartbeat'), '--heartbeat') * 1000,
      };
    case 'cutover': {
      const action = argv.action as 'status' | 'switch' | 'revert';
      if (argv.force && action !== 'switch') throw new UsageError('--force applies to cutover switch only');
      if (argv.force && !text('reason')?.trim()) throw new UsageError('cutover switch --force needs --reason "...": say why the gate is overridden (it is recorded)');
      return {
        name,
        action,
        aggregateType: required('type'),
        readModel: text('read-model'),
        runs: text('runs') === undefined ? undefined : wholeNumber(required('runs'), '--runs'),
        days: text('days') === undefined ? undefined : nonNegativeNumber(required('days'), '--days'),
        force: Boolean(argv.force),
        reason: text('reason'),
      };
    }
    case 'verify':
      if (argv.jsonl && argv.json) throw new UsageError('verify: give --json (one document) or --jsonl (one line per mismatch), not both');
      return {
        name,
        aggregateType: text('type'),
        target: text('target'),
        history: Boolean(argv.history),
        ids: ((argv.ids as string[] | undefined) ?? []).map(String),
        sample: text('sample') === undefined ? undefined : wholeNumber(required('sample'), '--sample'),
        changedSinceLast: Boolean(argv['changed-since-last']),
        lagTimeoutMs: text('lag-timeout') === undefined ? undefined : positiveNumber(required('lag-timeout'), '--lag-timeout') * 1000,
        concurrency: text('concurrency') === undefined ? undefined : wholeNumber(required('concurrency'), '--concurrency'),
        jsonl: Boolean(argv.jsonl),
        show: wholeNumberOrZero(required('show'), '--show'),
        metricsFile: text('metrics-file'),
      };
    default:
      throw new UsageError(`unknown command ${JSON.stringify(name)}`);
  }
}

function positiveNumber(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, got ${JSON.stringify(value)}`);
  return n;
}

function nonNegativeNumber(value: string, flag: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`${flag} must be a number of 0 or more, got ${JSON.stringify(value)}`);
  return n;
}

function wholeNumber(value: string, flag: string): number {
  if (!/^[1-9]\d*$/.test(value)) throw new UsageError(`${flag} must be a whole number from 1, got ${JSON.stringify(value)}`);
  return Number(value);
}

function wholeNumberOrZero(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

function parseJson(value: string, flag: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch (error) {
    throw new UsageError(`${flag} is not valid JSON (${(error as Error).message}); quote it, e.g. --payload '{"amount":100}'`);
  }
}

function parseExpectedVersion(value: string): ExpectedVersion {
  if (value === 'any' || value === 'none' || value === 'exists') return value;
  if (/^\d+$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value);
  throw new UsageError(`--expected-version must be a whole number, any, none or exists; got ${JSON.stringify(value)}`);
}

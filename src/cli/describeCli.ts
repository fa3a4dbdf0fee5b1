import yargs, { type Argv } from 'yargs';
import { UsageError } from '../errors.js';
import { STATUS_LIMITS } from '../replication/statusProblems.js';
import { SERVICE_COMPONENTS } from '../service/components.js';

/** The command line as yargs knows it: every command, option, default and example of `--help`. */

const VERSION = '0.1.0';

const EPILOGUE = [
  "Database: --database-url, else --embedded, else DATABASE_URL, else the config's databaseUrl, else the config's \"embedded: true\". With none of them, commands that need a database exit 2 with \"no database configured\".",
  'Exit codes: 0 success; 1 a check found problems, an append lost a race, or there was nothing to show; 2 usage, config or connection error, or a verify that could not check everything (incomplete).',
].join('\n\n');

export function describeCli(args: string[]): Argv {
  return yargs(args)
    .scriptName('hindsight')
    .usage('$0 <command> [options]\n\nRetrofit event sourcing onto an existing CRUD PostgreSQL database.')
    .exitProcess(false)
    .strict()
    .recommendCommands()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .option('config', { type: 'string', describe: 'config file (default: the first of hindsight.config.ts, .mts, .js, .mjs, .json in the current folder)', global: true })
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
        .positional('type', { type: 'string', describe: 'an app type (a plain snapshot import), or the only listener type (they share one slot, so all are backfilled together)' })
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
        .option('pause-ms', { type: 'string', describe: 'milliseconds to wait after each page, leaving the database to live traffic (default 0)' })
        .option('workers', { type: 'string', describe: 'share the run: split each type into key-range chunks worked on by this many local workers (and by any hindsight run)' })
        .option('chunk-rows', { type: 'string', describe: 'with --workers: legacy rows per chunk (default 10,000)' })
        .option('chunk-lease', { type: 'string', describe: "with --workers: seconds a chunk stays with a worker that stopped renewing it before another retakes it (default 30)" })
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
    .command('run', 'run as a service: the listener, the read-model updaters and the scheduled checks in one process, with /metrics, /healthz and /readyz', (y) =>
      y
        .option('only', { type: 'string', describe: `a comma-separated subset of ${SERVICE_COMPONENTS.join(', ')} (default: each one the config gives work to)` })
        .option('http', { type: 'string', default: '127.0.0.1:9464', describe: 'host:port of the HTTP listener; another host than loopback needs --token' })
        .option('no-http', { type: 'boolean', describe: 'no HTTP listener' })
        .option('token', { type: 'string', describe: 'bearer token the HTTP listener requires (or HINDSIGHT_HTTP_TOKEN); needed to bind a non-loopback address' })
        .option('shutdown-timeout', { type: 'string', default: '30', describe: 'seconds SIGTERM/SIGINT may take to finish the work in hand and release leases' })
        .option('log-level', { choices: ['debug', 'info', 'warn', 'error'] as const, default: 'info', describe: 'the least severe log line written (JSON lines; readable on a terminal)' })
        .option('lease-ttl', { type: 'string', describe: 'project: seconds a read model\'s lease lives without renewal (default 10)' })
        .option('heartbeat', { type: 'string', describe: 'listener: seconds between heartbeat messages while idle (default 10)' })
        .option('instance', { type: 'string', describe: "names this process in leases, the schedule log, verify chunks and alerts (default host:pid:random)" })
        .example('$0 run', 'everything the config declares, metrics on 127.0.0.1:9464')
        .example('$0 run --only listener,project --http 0.0.0.0:9464 --token "$TOKEN"', 'two parts, reachable from other hosts'),
    )
    .command('console', 'the read-only web console (ledgers, states, events, verify runs, the gate, listener and updater status) until SIGTERM/SIGINT', (y) =>
      y
        .option('http', { type: 'string', default: '127.0.0.1:9464', describe: 'host:port to listen on; an address other than loopback needs --token' })
        .option('token', { type: 'string', describe: 'a secret every request must bring (Authorization: Bearer, or a cookie set by opening a page once with ?token=); default HINDSIGHT_HTTP_TOKEN' })
        .example('$0 console', 'then open http://127.0.0.1:9464/')
        .example('HINDSIGHT_HTTP_TOKEN=$(openssl rand -hex 24) $0 console --http 0.0.0.0:9464', 'reachable from other machines, with a token'),
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

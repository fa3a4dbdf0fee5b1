import { UsageError, isValidationError } from '../errors.js';
import { parseListen } from '../http/server.js';
import { STATUS_LIMITS } from '../replication/statusProblems.js';
import { checkTimeZone, parseCliTime } from '../time.js';
import type { ExpectedVersion } from '../types.js';
import { nonNegativeNumber, parseExpectedVersion, parseJson, positiveNumber, wholeNumber, wholeNumberOrZero } from './argValues.js';
import { describeCli } from './describeCli.js';
import { SERVICE_COMPONENTS, type ServiceComponent } from '../service/components.js';

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
      pauseMs: number | undefined;
      workers: number | undefined;
      chunkRows: number | undefined;
      chunkLeaseMs: number | undefined;
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
  | {
      name: 'run';
      only: ServiceComponent[] | undefined;
      http: string | undefined;
      token: string | undefined;
      shutdownTimeoutMs: number;
      logLevel: 'debug' | 'info' | 'warn' | 'error';
      leaseTtlMs: number | undefined;
      heartbeatMs: number | undefined;
      instance: string | undefined;
    }
  | { name: 'console'; http: string; token: string | undefined }
  | { name: 'demo' };

export type ParsedCli =
  | { kind: 'output'; text: string }
  | { kind: 'command'; global: GlobalOptions; command: Command };

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
        pauseMs: text('pause-ms') === undefined ? undefined : wholeNumberOrZero(required('pause-ms'), '--pause-ms'),
        ...sharedRunOptions(text),
        jsonl: Boolean(argv.jsonl),
        show: wholeNumberOrZero(required('show'), '--show'),
        metricsFile: text('metrics-file'),
      };
    case 'console': {
      const http = required('http');
      parseListen(http);
      const token = text('token');
      if (token !== undefined && token.trim() === '') throw new UsageError('--token must not be empty');
      return { name, http, token };
    }
    case 'run':
      return {
        name,
        only: text('only') === undefined ? undefined : serviceComponentList(required('only')),
        http: argv['no-http'] || argv.http === false ? undefined : required('http'),
        token: text('token'),
        shutdownTimeoutMs: positiveNumber(required('shutdown-timeout'), '--shutdown-timeout') * 1000,
        logLevel: argv['log-level'] as 'debug' | 'info' | 'warn' | 'error',
        leaseTtlMs: text('lease-ttl') === undefined ? undefined : positiveNumber(required('lease-ttl'), '--lease-ttl') * 1000,
        heartbeatMs: text('heartbeat') === undefined ? undefined : positiveNumber(required('heartbeat'), '--heartbeat') * 1000,
        instance: text('instance') === undefined ? undefined : instanceName(required('instance')),
      };
    default:
      throw new UsageError(`unknown command ${JSON.stringify(name)}`);
  }
}

function serviceComponentList(value: string): ServiceComponent[] {
  const parts = value.split(',').map((p) => p.trim());
  for (const part of parts) {
    if (!(SERVICE_COMPONENTS as readonly string[]).includes(part)) {
      throw new UsageError(`--only takes a comma-separated list of ${SERVICE_COMPONENTS.join(', ')}; got ${JSON.stringify(part)} in ${JSON.stringify(value)}`);
    }
  }
  return [...new Set(parts)] as ServiceComponent[];
}

/** `run --instance`: it names the process in leases, the schedule log, chunks and alerts, and chunk workers append "/<random>". */
function instanceName(raw: string): string {
  if (!/^[A-Za-z0-9_.:@-]{1,100}$/.test(raw)) throw new UsageError(`--instance must be 1 to 100 letters, digits or _ . : @ -, got ${JSON.stringify(raw)}`);
  return raw;
}

/** `verify --workers N [--chunk-rows N] [--chunk-lease S]`: the chunk options need --workers. */
function sharedRunOptions(text: (name: string) => string | undefined): { workers: number | undefined; chunkRows: number | undefined; chunkLeaseMs: number | undefined } {
  const workers = text('workers') === undefined ? undefined : wholeNumber(text('workers')!, '--workers');
  for (const flag of ['chunk-rows', 'chunk-lease']) {
    if (text(flag) !== undefined && workers === undefined) throw new UsageError(`verify: --${flag} applies to a shared run: give --workers N too`);
  }
  return {
    workers,
    chunkRows: text('chunk-rows') === undefined ? undefined : wholeNumber(text('chunk-rows')!, '--chunk-rows'),
    chunkLeaseMs: text('chunk-lease') === undefined ? undefined : Math.round(positiveNumber(text('chunk-lease')!, '--chunk-lease') * 1000),
  };
}

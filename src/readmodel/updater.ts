import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { aggregateTypeOf, type ResolvedConfig } from '../config/resolve.js';
import { describeDatabaseError } from '../db/describeError.js';
import { toSql } from '../db/queryable.js';
import { ConfigError, isRestoredClusterError } from '../errors.js';
import { loadCheckpoint, recordFailure } from '../store/checkpoints.js';
import { START_OF_LOG, type GlobalCheckpoint } from '../store/readAll.js';
import { storeTables } from '../store/tables.js';
import type { ReadModel } from './declaration.js';
import { ensureReadModelTables } from './ensureTables.js';
import { releaseLease, renewLeases, tryAcquireLease, verifyLease } from './leases.js';
import { LeaseBusy, LeaseLost, ProjectionFailure, processBatch, StaleBatch, StateCache, WriteFailure, type BatchContext } from './processBatch.js';
import { checkTransactionIds } from './restoredClusterGuard.js';

/**
 * The read-model updater: runs each read model's subscription. Several processes may run
 * it at once; each read model is worked on by the one holding its lease, and another
 * takes over within the lease's time to live when that one dies. Runs until stopped, or
 * with runOnce drains to the current end of the log and returns.
 */

export interface UpdaterOptions {
  connectionString: string;
  /** Read models to run, by name. Default: all in the config. */
  readModels?: readonly string[];
  /** Names this process in leases. Default: host:pid:random. */
  owner?: string;
  /** Events scanned per batch. Default 500. */
  batchSize?: number;
  /** Lease time to live; a dead holder is replaced after at most this long. Default 10 s. */
  leaseTtlMs?: number;
  /** Longest wait between polls when idle. Default 50 ms. */
  maxIdleMs?: number;
  /**
   * Wait after a batch that was not full but showed a stream (5 events or more), so that
   * batches grow instead of one small transaction per few events: each batch wakes the updater and its
   * server process, which on a small machine the application pays for. Default 100 ms
   * (lag p50 59 / p99 115 ms at 500 tx/s; at 50 ms, 32 / 63 ms, but the updater took about
   * twice as much of a one-client application's throughput: docs/benchmarks.md).
   */
  gatherMs?: number;
  /** Clear a recorded failure and try the read model again. Default false. */
  retryFailed?: boolean;
  /** Progress and problems, one line each (the library never prints). */
  onLog?: (line: string) => void;
}

/** retrying: it holds (or held) the lease but lost its connection, and tries again with backoff. */
export type WorkerState = 'standby' | 'active' | 'retrying' | 'failed' | 'stopped';

export interface ReadModelRun {
  readModel: string;
  state: WorkerState;
  applied: number;
  batches: number;
  failure?: string;
}

export interface Updater {
  readonly owner: string;
  /** Runs until stop() (or the signal aborts). Rejects only on a problem that stops everything (config, restored cluster). */
  run(signal?: AbortSignal): Promise<ReadModelRun[]>;
  /** Drains every read model to the current end of the log, then returns. */
  runOnce(): Promise<ReadModelRun[]>;
  stop(): Promise<void>;
  /** Each read model's state and counts right now (health checks, metrics). */
  runs(): ReadModelRun[];
}

interface Worker {
  model: ReadModel;
  context: BatchContext;
  run: ReadModelRun;
  holding: boolean;
  /**
   * The checkpoint this process last wrote, so a poll costs one query, not two. Only a
   * hint: every batch's write compares it with the stored one (StaleBatch when a rebuild
   * moved it), and it is forgotten whenever the lease changes hands or a step fails.
   */
  position?: GlobalCheckpoint;
}

/**
 * A batch of at least this many events shows a stream, which the gathering pause turns
 * into fewer, bigger batches; after fewer (a lone event, a trickle) the updater polls as
 * when idle, so such events are read within tens of milliseconds.
 */
const STREAM_BATCH = 5;

export function createUpdater(config: ResolvedConfig, options: UpdaterOptions): Updater {
  const tables = storeTables(config.quotedSchema);
  const owner = options.owner ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const ttl = options.leaseTtlMs ?? 10_000;
  const maxIdle = options.maxIdleMs ?? 50;
  const gather = options.gatherMs ?? 100;
  const log = options.onLog ?? (() => undefined);
  const models = selectModels(config, options.readModels);
  const pool = new pg.Pool({ connectionString: options.connectionString, max: models.length + 2 });
  pool.on('error', () => undefined);
  const stopping = new AbortController();
  let leaseClient: pg.Client | undefined;
  let renewTimer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;

  const workers: Worker[] = models.map((model) => {
    const run: ReadModelRun = { readModel: model.name, state: 'standby', applied: 0, batches: 0 };
    const worker: Worker = {
      model,
      run,
      holding: false,
      context: {
        pool,
        tables,
        aggregate: aggregateTypeOf(config, model.aggregateType),
        model,
        cache: new StateCache(),
        batchSize: options.batchSize ?? 500,
        target: {
          table: model.table,
          subscriber: model.subscriber,
          mayCommit: (client) => verifyLease(toSql(client), tables, model.subscriber, owner),
          lease: { name: model.subscriber, owner },
        },
      },
    };
    return worker;
  });

  async function prepare(): Promise<void> {
    const sql = toSql(pool);
    try {
      await checkTransactionIds(sql, tables);
      await ensureReadModelTables(pool, tables, models);
      for (const worker of workers) {
        const checkpoint = await loadCheckpoint(sql, tables, worker.model.subscriber);
        if (checkpoint?.failedAt && !options.retryFailed) {
          worker.run.state = 'failed';
          worker.run.failure = String(checkpoint.failure?.message ?? 'failed earlier');
          log(`${worker.model.name}: stopped on an earlier failure (${worker.run.failure}); fix it and run with --retry-failed`);
        }
      }
    } catch (error) {
      throw describeDatabaseError(error, 'start the updater');
    }
  }

  /**
   * One batch: 'full' when there is more to read at once, 'progress' when it caught up with
   * a stream (or must try again shortly), 'trickle' when it caught up after a few events,
   * 'idle' when there was nothing.
   */
  async function step(worker: Worker): Promise<'full' | 'progress' | 'trickle' | 'idle' | 'lost' | 'failed'> {
    const sql = toSql(pool);
    const checkpoint = worker.position ?? (await loadCheckpoint(sql, tables, worker.model.subscriber))?.position ?? START_OF_LOG;
    worker.position = undefined;
    try {
      const result = await processBatch(worker.context, checkpoint);
      worker.position = result.checkpoint;
      worker.run.batches += result.scanned > 0 ? 1 : 0;
      worker.run.applied += result.applied;
      if (result.scanned >= worker.context.batchSize) return 'full';
      if (result.scanned === 0) return 'idle';
      return result.scanned >= STREAM_BATCH ? 'progress' : 'trickle';
    } catch (error) {
      if (error instanceof LeaseLost) {
        worker.holding = false;
        worker.context.cache.clear();
        log(`${worker.model.name}: lease lost; standing by`);
        return 'lost';
      }
      if (error instanceof LeaseBusy) return 'progress'; // nothing written; the next step tries again
      if (error instanceof StaleBatch) {
        worker.context.cache.clear();
        log(`${worker.model.name}: its checkpoint moved (a rebuild was swapped in); going on from there`);
        return 'progress';
      }
      if (error instanceof ProjectionFailure || error instanceof WriteFailure) {
        await recordFailure(sql, tables, worker.model.subscriber, { ...error.details, message: error.message }).catch(() => undefined);
        await releaseLease(sql, tables, worker.model.subscriber, owner).catch(() => undefined);
        worker.holding = false;
        worker.run.state = 'failed';
        worker.run.failure = error.message;
        log(error.message);
        return 'failed';
      }
      throw error;
    }
  }

  async function acquire(worker: Worker): Promise<boolean> {
    if (worker.holding) return true;
    worker.holding = await tryAcquireLease(toSql(pool), tables, worker.model.subscriber, owner, ttl);
    if (worker.holding) {
      worker.context.cache.clear();
      worker.position = undefined;
      worker.run.state = 'active';
      log(`${worker.model.name}: processing (lease held by ${owner})`);
    } else {
      worker.run.state = 'standby';
    }
    return worker.holding;
  }

  async function loop(worker: Worker): Promise<void> {
    let idle = 0;
    let backoff = 100;
    let reconnected = false;
    while (!stopping.signal.aborted && worker.run.state !== 'failed') {
      if (reconnected) {
        // After a lost connection the server may be another one (a restore): check again before reading.
        await checkTransactionIds(toSql(pool), tables).catch((error: unknown) => {
          if (isRestoredClusterError(error)) throw error;
        });
        reconnected = false;
      }
      try {
        if (!(await acquire(worker))) {
          await pause(Math.min(ttl / 2, 1000));
          continue;
        }
        const outcome = await step(worker);
        backoff = 100;
        if (worker.run.state === 'retrying') worker.run.state = worker.holding ? 'active' : 'standby';
        if (outcome === 'full') {
          idle = 0;
          continue;
        }
        if (outcome === 'progress') {
          idle = 0;
          await pause(gather);
          continue;
        }
        if (outcome === 'trickle') {
          // A few events are no stream worth waiting for: poll as when idle, from the shortest wait.
          idle = 0;
          await pause(5);
          continue;
        }
        if (outcome === 'idle') {
          idle = Math.min(maxIdle, Math.max(5, idle * 2));
          await pause(idle);
        }
      } catch (error) {
        // A lost connection or server restart: retry with backoff; the checkpoint was not moved.
        log(`${worker.model.name}: ${describeDatabaseError(error, 'update').message}; retrying in ${backoff} ms`);
        worker.context.cache.clear();
        reconnected = true;
        if (worker.run.state === 'active' || worker.run.state === 'standby') worker.run.state = 'retrying';
        await pause(backoff);
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }

  function pause(ms: number): Promise<void> {
    return sleep(ms, undefined, { signal: stopping.signal }).catch(() => undefined);
  }

  let renewing = false;
  async function renew(): Promise<void> {
    const held = workers.filter((w) => w.holding).map((w) => w.model.subscriber);
    if (held.length === 0 || renewing) return; // one renewal at a time, on one connection
    renewing = true;
    try {
      if (!leaseClient) {
        leaseClient = new pg.Client({ connectionString: options.connectionString });
        leaseClient.on('error', () => undefined);
        await leaseClient.connect();
      }
      const still = await renewLeases(toSql(leaseClient), tables, held, owner, ttl);
      for (const worker of workers) {
        if (worker.holding && !still.has(worker.model.subscriber)) {
          worker.holding = false;
          worker.run.state = 'standby';
          log(`${worker.model.name}: lease expired before renewal; standing by`);
        }
      }
    } catch {
      // The lease connection is gone: reconnect next time. Until then commits check the
      // lease themselves, so nothing is written on an expired lease.
      await leaseClient?.end().catch(() => undefined);
      leaseClient = undefined;
    } finally {
      renewing = false;
    }
  }

  async function shutdown(): Promise<void> {
    if (renewTimer) clearInterval(renewTimer);
    const sql = toSql(pool);
    for (const worker of workers) {
      if (worker.holding) await releaseLease(sql, tables, worker.model.subscriber, owner).catch(() => undefined);
      worker.holding = false;
      if (worker.run.state === 'active' || worker.run.state === 'retrying') worker.run.state = 'stopped';
    }
    await leaseClient?.end().catch(() => undefined);
    await pool.end().catch(() => undefined);
  }

  return {
    owner,
    async run(signal) {
      signal?.addEventListener('abort', () => stopping.abort(), { once: true });
      try {
        await prepare();
        renewTimer = setInterval(() => void renew(), Math.max(100, ttl / 3));
        running = Promise.all(workers.map((worker) => loop(worker)));
        await running;
      } finally {
        await shutdown();
      }
      return workers.map((w) => ({ ...w.run }));
    },
    async runOnce() {
      try {
        await prepare();
        renewTimer = setInterval(() => void renew(), Math.max(100, ttl / 3));
        for (const worker of workers) {
          if (worker.run.state === 'failed') continue;
          let outcome: Awaited<ReturnType<typeof step>> = 'lost';
          // Acquire (waiting out a lease left by a process that died: it frees itself within one
          // time to live), drain, and acquire again if the lease was lost on the way.
          for (let attempt = 0; attempt < 3 && outcome === 'lost'; attempt++) {
            const until = Date.now() + ttl + 500;
            while (!(await acquire(worker)) && Date.now() < until) await sleep(Math.min(250, ttl / 4));
            if (!worker.holding) break;
            do outcome = await step(worker);
            while (outcome === 'progress' || outcome === 'trickle' || outcome === 'full');
          }
          if (outcome === 'lost') {
            worker.run.state = 'standby';
            log(`${worker.model.name}: another process is updating it (it holds the lease); not drained here`);
          }
          if (worker.holding) await releaseLease(toSql(pool), tables, worker.model.subscriber, owner);
          worker.holding = false;
        }
      } finally {
        await shutdown();
      }
      return workers.map((w) => ({ ...w.run }));
    },
    async stop() {
      stopping.abort();
      await running?.catch(() => undefined);
    },
    runs: () => workers.map((w) => ({ ...w.run })),
  };
}

function selectModels(config: ResolvedConfig, names: readonly string[] | undefined): ReadModel[] {
  if (!names || names.length === 0) return [...config.readModels.values()];
  return names.map((name) => {
    const model = config.readModels.get(name);
    if (!model) {
      const known = [...config.readModels.keys()];
      throw new ConfigError(`unknown read model "${name}"; ${known.length ? `the config declares: ${known.join(', ')}` : 'the config declares none'}`);
    }
    return model;
  });
}

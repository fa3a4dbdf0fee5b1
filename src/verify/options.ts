import type { ResolvedConfig } from '../config/resolve.js';
import { ValidationError } from '../errors.js';
import type { ReadModel } from '../readmodel/declaration.js';
import type { RunMode } from './report.js';

/** The options of a verify run, and their checks before anything runs. */

export interface VerifyOptions {
  connectionString: string;
  /** Types to verify. Default: every type in the config. */
  types?: readonly string[];
  /**
   * "projection" (default): events against the legacy rows. "read-model:<name>": each row of
   * that read model against the fold of its events up to the sequence it records.
   */
  target?: string;
  /** Aggregates to check, by canonical id (mode "ids"). */
  ids?: readonly string[];
  /** Check this many random legacy rows (mode "sample"). */
  sample?: number;
  /** Only aggregates with events after the last complete run's cut, and rows updated since (mode "changed"). */
  changedSinceLast?: boolean;
  /** How long to wait for the listener to reach a page's cut. Default 30 s. */
  lagTimeoutMs?: number;
  /** Pages compared at once. Default 2. */
  concurrency?: number;
  /** Legacy rows per page (each page is one snapshot). Default 1,000. */
  pageSize?: number;
  /**
   * Milliseconds to wait after each page before reading the next: a run beside live
   * traffic (a scheduled check) leaves the database's cores to the writers in between. Default 0.
   */
  pauseMs?: number;
  /** Store the run in the history. Default true. */
  record?: boolean;
  /** After each page; a returned promise is waited for. */
  onProgress?: (progress: { aggregateType: string; rows: number; estimatedRows: number }) => void | Promise<void>;
  signal?: AbortSignal;
  /**
   * Share the run between workers: each type (full projection runs only) is split into key
   * ranges that this process works on with this many workers, and that any other process
   * running `workOnChunks` (every `hindsight run`) may take too. Default: one process, no chunks.
   */
  workers?: number;
  /** Legacy rows per chunk of a shared run. Default 10 pages (10,000 rows). */
  chunkRows?: number;
  /** How long a taken chunk is held without its worker renewing it before anyone may retake it. Default 30 s. */
  chunkLeaseMs?: number;
  /** Shared runs: names this process in verify_chunks.worker. Default host:pid. */
  instance?: string;
  /** Shared runs: after this process takes a chunk, before checking it (crash tests kill the process here). */
  onChunkTaken?: (chunk: { runId: string; aggregateType: string; chunk: number; attempts: number }) => void | Promise<void>;
}

/** A whole-number option from `min`, when given; refused with its name otherwise. */
function whole(value: number | undefined, path: string, min: number): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < min)) throw new ValidationError(`${path} must be a whole number from ${min}, got ${String(value)}`, { path });
}

/** Checks the shared-run options; they apply to full projection runs only. */
export function checkWorkers(options: VerifyOptions, mode: RunMode): void {
  if (options.workers === undefined) return;
  whole(options.workers, 'workers', 1);
  whole(options.chunkRows, 'chunkRows', 1);
  whole(options.chunkLeaseMs, 'chunkLeaseMs', 100);
  if (mode !== 'full' || (options.target ?? 'projection') !== 'projection') {
    throw new ValidationError('workers share full projection runs only: leave out ids, sample, changedSinceLast and a read-model target', { path: 'workers' });
  }
  if (options.record === false) throw new ValidationError('a shared run is always recorded (its chunks report through the history): leave out record: false', { path: 'workers' });
}

/** The pacing options, checked before anything runs. */
export function checkPacing(options: Pick<VerifyOptions, 'concurrency' | 'pageSize' | 'pauseMs'>): void {
  whole(options.concurrency, 'concurrency', 1);
  whole(options.pageSize, 'pageSize', 1);
  whole(options.pauseMs, 'pauseMs', 0);
}

/** Validated mode and ids; throws before anything runs on bad options. */
export function verifyMode(options: Pick<VerifyOptions, 'ids' | 'sample' | 'changedSinceLast'>): RunMode {
  const chosen = [options.ids !== undefined, options.sample !== undefined, options.changedSinceLast === true].filter(Boolean).length;
  if (chosen > 1) throw new ValidationError('give at most one of ids, sample and changedSinceLast');
  if (options.sample !== undefined && (!Number.isSafeInteger(options.sample) || options.sample < 1)) {
    throw new ValidationError(`sample must be a whole number from 1, got ${String(options.sample)}`, { path: 'sample' });
  }
  if (options.ids !== undefined && options.ids.length === 0) throw new ValidationError('ids is empty', { path: 'ids' });
  return options.ids ? 'ids' : options.sample !== undefined ? 'sample' : options.changedSinceLast ? 'changed' : 'full';
}

/** The read model named by `target`, checked before anything runs. */
export function readModelTarget(config: ResolvedConfig, options: VerifyOptions): ReadModel | undefined {
  const target = options.target ?? 'projection';
  if (target === 'projection') return undefined;
  const name = target.startsWith('read-model:') ? target.slice('read-model:'.length) : undefined;
  const model = name === undefined ? undefined : config.readModels.get(name);
  if (!model) {
    const known = [...config.readModels.keys()].map((n) => `read-model:${n}`);
    throw new ValidationError(`unknown target "${target}": give projection${known.length ? ` or one of ${known.join(', ')}` : ' (the config declares no read models)'}`, { path: 'target' });
  }
  if (options.types && (options.types.length !== 1 || options.types[0] !== model.aggregateType)) {
    throw new ValidationError(`the read model ${model.name} belongs to ${model.aggregateType}, not ${options.types.join(', ')}`, { path: 'target' });
  }
  if (verifyMode(options) !== 'full') throw new ValidationError('a read-model target is verified whole: leave out ids, sample and changedSinceLast', { path: 'target' });
  return model;
}

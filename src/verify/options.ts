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
  /** Store the run in the history. Default true. */
  record?: boolean;
  /** After each page; a returned promise is waited for. */
  onProgress?: (progress: { aggregateType: string; rows: number; estimatedRows: number }) => void | Promise<void>;
  signal?: AbortSignal;
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

import { ValidationError } from '../errors.js';
import type { ProjectedEvent } from '../types.js';
import { initialCopier } from './copyInitial.js';
import { defaultStateCodec, type StateCodec } from './stateCodec.js';

/** A handler folds one event into the state and returns the new state. */
export type Handler<S> = (state: S, event: ProjectedEvent<any>) => S;

export interface ProjectorDefinition<S = any> {
  readonly [PROJECTOR_DEFINITION]: true;
  readonly aggregateType: string;
  /** A fresh initial state for each projection. */
  readonly initial: () => S;
  readonly handlers: Readonly<Record<string, Handler<S>>>;
  /** Bump when the handlers change meaning; stored snapshots of older versions are then ignored. */
  readonly version: number;
  /** When true, an event type with no handler (and no default fold) is an error instead of skipped. */
  readonly strict: boolean;
  /** How snapshots store the state; the default carries JSON plus Dates, bigints, Maps and Sets. */
  readonly codec: StateCodec<S>;
}

export interface DefineProjectorOptions<S> {
  aggregateType: string;
  /** The state before the first event: a value (copied for each projection) or a factory. */
  initial: S | (() => S);
  handlers: Record<string, Handler<S>>;
  /** Default 1. */
  version?: number;
  /** Default false: events with no handler are skipped. */
  strict?: boolean;
  /** For states JSON cannot carry (class instances...): how to store them in a snapshot. */
  codec?: StateCodec<S>;
}

export const PROJECTOR_DEFINITION = Symbol.for('hindsight.projectorDefinition');

export function defineProjector<S>(options: DefineProjectorOptions<S>): ProjectorDefinition<S> {
  const where = `defineProjector(${JSON.stringify(options?.aggregateType)})`;
  if (typeof options?.aggregateType !== 'string' || options.aggregateType === '') {
    throw new ValidationError(`${where}: aggregateType must be a non-empty string`);
  }
  const version = options.version ?? 1;
  if (!Number.isInteger(version) || version < 1) {
    throw new ValidationError(`${where}: version must be a whole number from 1, got ${String(version)}`);
  }
  if (typeof options.handlers !== 'object' || options.handlers === null) {
    throw new ValidationError(`${where}: handlers must be an object of event type to function`);
  }
  for (const [type, handler] of Object.entries(options.handlers)) {
    if (typeof handler !== 'function') {
      throw new ValidationError(`${where}: handlers["${type}"] must be a function, got ${typeof handler}`);
    }
  }
  const { initial } = options;
  let copyInitial: () => S;
  try {
    copyInitial = typeof initial === 'function' ? (initial as () => S) : initialCopier(initial);
  } catch (error) {
    throw new ValidationError(`${where}: initial cannot be copied for each aggregate (${(error as Error).message}); pass a factory function instead`);
  }
  if (options.codec && (typeof options.codec.encode !== 'function' || typeof options.codec.decode !== 'function')) {
    throw new ValidationError(`${where}: codec must have encode(state) and decode(json) functions`);
  }
  return Object.freeze({
    [PROJECTOR_DEFINITION]: true as const,
    aggregateType: options.aggregateType,
    initial: copyInitial,
    handlers: Object.freeze({ ...options.handlers }),
    version,
    strict: options.strict ?? false,
    codec: options.codec ?? defaultStateCodec,
  });
}

export function isProjectorDefinition(value: unknown): value is ProjectorDefinition {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PROJECTOR_DEFINITION] === true;
}

import type { AggregateType } from '../config/resolve.js';
import { ValidationError } from '../errors.js';
import { genericKindOf, type RowImage } from '../events/genericEvents.js';
import type { ProjectedEvent } from '../types.js';
import { upcast } from './upcast.js';

/** An aggregate's state after a prefix of its events. */
export interface Folded<S = any> {
  state: S;
  /** The sequence of the last event folded (0 before any). */
  version: number;
  /** True after a `<table>.deleted` event (until a later insert or import). */
  deleted: boolean;
}

export function initialFold(aggregate: AggregateType): Folded {
  return { state: aggregate.projector ? aggregate.projector.initial() : {}, version: 0, deleted: false };
}

/**
 * Folds events into state, strictly in sequence order. A handler of the type's projector
 * wins; generic events (`<table>.imported/inserted/updated/deleted`) otherwise go through
 * the default fold of the column map; any other type is skipped, or refused when the
 * projector is strict. Payloads are upcast to the current schema version first.
 */
export function foldEvents<S>(aggregate: AggregateType, events: Iterable<ProjectedEvent>, start: Folded<S> = initialFold(aggregate)): Folded<S> {
  let { state, version, deleted } = start;
  const handlers = aggregate.projector?.handlers ?? {};
  for (const stored of events) {
    if (stored.sequence !== version + 1) {
      throw new Error(
        `internal: ${aggregate.type} ${stored.aggregateId} folded out of order: sequence ${stored.sequence} after ${version}`,
      );
    }
    const event = upcast(aggregate, stored);
    const handler = handlers[event.type];
    const kind = genericKindOf(aggregate.tableLabel, event.type);
    if (handler) {
      state = handler(state, event);
    } else if (kind) {
      state = defaultFold(aggregate, state, kind, event) as S;
    } else if (aggregate.projector?.strict) {
      throw new ValidationError(
        `the ${aggregate.type} projector is strict and has no handler for ${event.type} (sequence ${event.sequence})`,
      );
    }
    if (kind === 'deleted') deleted = true;
    else if (kind === 'inserted' || kind === 'imported') deleted = false;
    version = stored.sequence;
  }
  return { state, version, deleted };
}

/** The column map turns a generic event's after-image into state fields. */
function defaultFold(aggregate: AggregateType, state: unknown, kind: string, event: ProjectedEvent): unknown {
  if (kind === 'deleted') return state;
  if (typeof state !== 'object' || state === null || Array.isArray(state)) {
    throw new ValidationError(
      `${aggregate.type}: the default fold of ${event.type} needs an object state; give the projector a handler for it`,
    );
  }
  const after = (event.payload as { after?: RowImage }).after ?? {};
  const next: Record<string, unknown> = { ...(state as Record<string, unknown>) };
  for (const [column, value] of Object.entries(after)) {
    const field = aggregate.columns ? aggregate.columns.get(column) : column;
    if (field !== undefined) next[field] = value;
  }
  return next;
}

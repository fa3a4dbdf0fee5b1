import type { AggregateType } from '../config/resolve.js';
import { ValidationError } from '../errors.js';
import { genericKindOf, type GenericEventKind, type RowImage } from '../events/genericEvents.js';
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
  const folded = { ...start };
  for (const event of events) foldInto(aggregate, folded, event);
  return folded;
}

/** Folds one event into `folded`, in place (a rebuild folds millions, one at a time). */
export function foldInto<S>(aggregate: AggregateType, folded: Folded<S>, stored: ProjectedEvent): void {
  if (stored.sequence !== folded.version + 1) {
    throw new Error(`internal: ${aggregate.type} ${stored.aggregateId} folded out of order: sequence ${stored.sequence} after ${folded.version}`);
  }
  const event = upcast(aggregate, stored);
  const { handler, kind } = planOf(aggregate, event.type);
  if (handler) {
    folded.state = handler(folded.state, event) as S;
  } else if (kind) {
    folded.state = defaultFold(aggregate, folded.state, kind, event) as S;
  } else if (aggregate.projector?.strict) {
    throw new ValidationError(`the ${aggregate.type} projector is strict and has no handler for ${event.type} (sequence ${event.sequence})`);
  }
  if (kind === 'deleted') folded.deleted = true;
  else if (kind === 'inserted' || kind === 'imported') folded.deleted = false;
  folded.version = stored.sequence;
}

interface FoldPlan {
  handler: ((state: any, event: ProjectedEvent) => unknown) | undefined;
  kind: GenericEventKind | undefined;
}

/** What folding an event type means for an aggregate type, worked out once per pair. */
const plans = new WeakMap<AggregateType, Map<string, FoldPlan>>();
function planOf(aggregate: AggregateType, eventType: string): FoldPlan {
  let byType = plans.get(aggregate);
  if (!byType) plans.set(aggregate, (byType = new Map()));
  let plan = byType.get(eventType);
  if (!plan) {
    const handlers = (aggregate.projector?.handlers ?? {}) as Record<string, FoldPlan['handler']>;
    plan = { handler: Object.hasOwn(handlers, eventType) ? handlers[eventType] : undefined, kind: genericKindOf(aggregate.tableLabel, eventType) };
    byType.set(eventType, plan);
  }
  return plan;
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

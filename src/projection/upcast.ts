import type { AggregateType } from '../config/resolve.js';
import { ValidationError } from '../errors.js';
import type { ProjectedEvent } from '../types.js';

/**
 * Brings a stored payload to the current schema version of its event definition by
 * running the upcasters from its stored version up. Stored events are never rewritten;
 * projectors always see the current shape.
 */
export function upcast<E extends ProjectedEvent>(aggregate: AggregateType, event: E): E {
  const definition = aggregate.events.get(event.type);
  if (!definition || event.schemaVersion === definition.version) return event;
  if (event.schemaVersion > definition.version) {
    throw new ValidationError(
      `${event.type} event ${event.eventId} has schema version ${event.schemaVersion}, newer than this code's ${definition.version}; deploy the newer event definition`,
    );
  }
  let payload = event.payload;
  for (let v = event.schemaVersion; v < definition.version; v++) {
    const step = definition.upcasters[v];
    if (!step) {
      throw new ValidationError(
        `${event.type} has no upcaster from schema version ${v} to ${v + 1}, needed for event ${event.eventId}`,
      );
    }
    payload = step(payload);
  }
  // A copy: the stored event (and a caller's page of events) stays as read.
  return Object.assign(Object.create(Object.getPrototypeOf(event) as object) as E, event, { payload, schemaVersion: definition.version });
}

import type { AggregateType } from '../config/resolve.js';
import { ValidationError } from '../errors.js';
import type { StoredEvent } from '../types.js';

/**
 * Brings a stored payload to the current schema version of its event definition by
 * running the upcasters from its stored version up. Stored events are never rewritten;
 * projectors always see the current shape.
 */
export function upcast(aggregate: AggregateType, event: StoredEvent): StoredEvent {
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
  return { ...event, payload, schemaVersion: definition.version };
}

import { v7 } from 'uuid';

/**
 * A new event's id: a UUIDv7 (RFC 9562), whose leading 48 bits are the time in milliseconds
 * and which the `uuid` package keeps increasing within a process, even within one millisecond.
 * Ids made one after another sort one after another, so the unique index on event_id takes
 * each new id at its right-hand edge. A random (v4) id instead dirties a random leaf of that
 * index on every append, which stops scaling once the index outgrows memory (tens of millions
 * of events: docs/benchmarks.md, "Costs as the log grows"). PostgreSQL has uuidv7() only from
 * version 18, so ids are made here, for every supported server. An id says nothing the event's
 * recorded_at does not already say.
 */
export function newEventId(): string {
  return v7();
}

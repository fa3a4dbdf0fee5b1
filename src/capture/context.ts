import { AsyncLocalStorage } from 'node:async_hooks';
import type { EventMetadata } from '../types.js';

/**
 * Who did it and why, carried to every event recorded while it is in effect. Set it once
 * per request (middleware) or per job with `withContext`, or pass it to `transaction`.
 */
export interface CaptureContext {
  actor?: string;
  reason?: string;
  correlationId?: string;
  causationId?: string;
  requestId?: string;
  /** Anything else JSON can carry; stored in the metadata under its own key. */
  [key: string]: unknown;
}

// One store per process, even if two copies of this module are loaded (a config file read
// through a TS loader may import a second copy): contexts set through one are seen by both.
const STORE_KEY = Symbol.for('hindsight.captureContext');
const globals = globalThis as { [STORE_KEY]?: AsyncLocalStorage<CaptureContext> };
/** Created on first use: importing hindsight has no side effects. */
const storage = () => (globals[STORE_KEY] ??= new AsyncLocalStorage<CaptureContext>());

/** Runs `fn` with `context` merged over the context already in effect. */
export function withContext<T>(context: CaptureContext, fn: () => T): T {
  return storage().run({ ...currentContext(), ...context }, fn);
}

/** The context in effect here (empty outside any withContext). */
export function currentContext(): CaptureContext {
  return globals[STORE_KEY]?.getStore() ?? {};
}

const WELL_KNOWN: Record<string, string> = {
  correlationId: 'correlation_id',
  causationId: 'causation_id',
  requestId: 'request_id',
};

/** Event metadata from a context: the well-known keys in snake_case, the rest as given, undefined dropped. */
export function contextToMetadata(context: CaptureContext): EventMetadata {
  const metadata: EventMetadata = {};
  for (const [key, value] of Object.entries(context)) {
    if (value !== undefined) metadata[WELL_KNOWN[key] ?? key] = value;
  }
  return metadata;
}

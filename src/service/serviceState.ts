import type { ListenerState } from '../replication/listener.js';

/** Whether one component of the service is doing its job, and if not, what it is doing instead. */
export interface ComponentReadiness {
  ready: boolean;
  detail: string;
}

export interface Readiness {
  ready: boolean;
  components: Record<string, ComponentReadiness>;
}

/** What only this process knows about itself: read by /readyz and /metrics. */
export interface ServiceState {
  listener: { readonly state: ListenerState; reconnectingMs(): number } | undefined;
  readiness(): Readiness;
}

/** Tracks the listener's state and the time it spent reconnecting (a metric). */
export function listenerTracker(now: () => number = () => performance.now()) {
  let state: ListenerState = 'starting';
  let reconnectingSince: number | undefined;
  let reconnectingTotal = 0;
  return {
    get state() {
      return state;
    },
    set(next: ListenerState) {
      if (next === 'reconnecting' && reconnectingSince === undefined) reconnectingSince = now();
      if (next !== 'reconnecting' && reconnectingSince !== undefined) {
        reconnectingTotal += now() - reconnectingSince;
        reconnectingSince = undefined;
      }
      state = next;
    },
    reconnectingMs: () => reconnectingTotal + (reconnectingSince === undefined ? 0 : now() - reconnectingSince),
    readiness(): ComponentReadiness {
      switch (state) {
        case 'streaming':
          return { ready: true, detail: 'streaming from the slot' };
        case 'standby':
          return { ready: true, detail: 'a healthy standby: another listener holds the slot' };
        case 'holding':
          return { ready: false, detail: 'holding the stream until a baseline backfill commits' };
        case 'reconnecting':
          return { ready: false, detail: 'lost the connection to PostgreSQL; reconnecting with backoff' };
        default:
          return { ready: false, detail: state };
      }
    },
  };
}

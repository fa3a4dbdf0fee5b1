import { randomUUID } from 'node:crypto';
import { redactUrl } from '../db/redactUrl.js';
import type { AlertKind, AlertSettings, Webhook } from './alertSpec.js';

/**
 * Alerts: a JSON document POSTed to each configured webhook, and a log line. alert() only
 * queues: it never throws and never waits, so the listener, the updaters and capture never
 * slow down for a receiver that is slow or down. Each delivery retries with capped
 * exponential backoff on a network error, a timeout, a 5xx or a 429 (a receiver saying
 * "later"), never on another 4xx (the request itself is wrong: sending it again will not
 * help). Receivers dedupe retries by the alert's `id`.
 */

export interface AlertRun {
  runId: string;
  /** The stored run row (the console's /verify/run?id=). */
  historyId: number | undefined;
  outcome: string;
  counts: Record<string, number>;
  /** Mismatches per class (projector bug, legacy drift, ...). */
  classCounts: Record<string, number>;
}

/** What the caller says; the alerter adds id, at and instance. */
export interface AlertInput {
  kind: AlertKind;
  type?: string;
  readModel?: string;
  check?: string;
  run?: AlertRun;
  detail: string;
  link?: string;
}

export interface Alert extends AlertInput {
  /** A uuid, the same in every retry of every webhook: receivers dedupe on it. */
  id: string;
  /** ISO-8601 UTC. */
  at: string;
  instance: string;
}

export interface AlerterLogEntry {
  level: 'info' | 'warn' | 'error';
  message: string;
}

export interface AlerterOptions {
  /** Names this process in every alert. */
  instance: string;
  onLog?: (entry: AlerterLogEntry) => void;
  /** The first retry's wait, doubled for each next one up to maxBackoffMs. Default 1000. */
  backoffMs?: number;
  /** Default 30,000. */
  maxBackoffMs?: number;
  /** Deliveries in flight or waiting to retry beyond which new alerts are dropped (and logged). Default 1000. */
  maxPending?: number;
}

export interface Alerter {
  /** Queues the alert for every webhook that takes its kind. Never throws, never blocks. */
  alert(input: AlertInput): void;
  /** Stops taking alerts and waits up to `timeoutMs` (default 10 s) for those in hand; then abandons the rest, logged. */
  stop(timeoutMs?: number): Promise<void>;
}

export function createAlerter(settings: AlertSettings, options: AlerterOptions): Alerter {
  const log = (level: AlerterLogEntry['level'], message: string) => {
    try {
      options.onLog?.({ level, message });
    } catch {
      // a logger that throws must not make alert() throw
    }
  };
  const backoffMs = options.backoffMs ?? 1000;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const maxPending = options.maxPending ?? 1000;
  const abandon = new AbortController();
  const pending = new Set<Promise<void>>();
  let stopped = false;

  const deliver = async (webhook: Webhook, alert: Alert, body: string): Promise<void> => {
    const what = `alert ${alert.kind} ${alert.id} to ${webhook.label}`;
    for (let attempt = 0; ; attempt++) {
      let outcome: { retry: boolean; why: string; after?: number };
      try {
        const response = await fetch(webhook.url, {
          method: 'POST',
          headers: { ...webhook.headers, 'content-type': 'application/json', 'user-agent': 'hindsight', 'idempotency-key': alert.id },
          body,
          signal: AbortSignal.any([AbortSignal.timeout(settings.timeoutMs), abandon.signal]),
        });
        await response.body?.cancel().catch(() => undefined); // the answer's body means nothing to us: free the connection
        if (response.ok) {
          log('info', `${what}: delivered (HTTP ${response.status}${attempt > 0 ? `, after ${attempt} retries` : ''})`);
          return;
        }
        const retry = response.status >= 500 || response.status === 429;
        outcome = { retry, why: `HTTP ${response.status}`, after: retryAfterMs(response.headers.get('retry-after')) };
      } catch (error) {
        if (abandon.signal.aborted) break;
        outcome = { retry: true, why: describeFailure(error, webhook, settings.timeoutMs) };
      }
      if (!outcome.retry) {
        log('error', `${what}: refused with ${outcome.why}, not retried (a 4xx other than 429 means the request is wrong: check the URL and headers)`);
        return;
      }
      if (attempt >= settings.retries) {
        log('error', `${what}: gave up after ${attempt + 1} attempts, the last one ${outcome.why}`);
        return;
      }
      const wait = Math.min(maxBackoffMs, Math.max(outcome.after ?? 0, backoffMs * 2 ** attempt));
      log('warn', `${what}: ${outcome.why}; retry ${attempt + 1} of ${settings.retries} in ${wait} ms`);
      if (!(await sleep(wait, abandon.signal))) break;
    }
    log('error', `${what}: abandoned at shutdown, not delivered`);
  };

  return {
    alert(input) {
      try {
        const alert: Alert = { id: randomUUID(), at: new Date().toISOString(), instance: options.instance, ...input };
        log('warn', `alert ${alert.kind}${alert.type ? ` (${alert.type})` : ''}: ${alert.detail}`);
        if (stopped) {
          log('error', `alert ${alert.kind} ${alert.id}: not sent, the alerter is stopping`);
          return;
        }
        const body = JSON.stringify(alert);
        for (const webhook of settings.webhooks) {
          if (webhook.events && !webhook.events.has(alert.kind)) continue;
          if (pending.size >= maxPending) {
            log('error', `alert ${alert.kind} ${alert.id} to ${webhook.label}: dropped, ${pending.size} deliveries are already pending`);
            continue;
          }
          const delivery = deliver(webhook, alert, body).catch((error: unknown) => log('error', `alert ${alert.id} to ${webhook.label}: ${describeFailure(error, webhook, settings.timeoutMs)}`));
          pending.add(delivery);
          void delivery.finally(() => pending.delete(delivery));
        }
      } catch (error) {
        log('error', `alert ${input.kind}: not sent: ${error instanceof Error ? error.message : String(error)}`);
      }
    },
    async stop(timeoutMs = 10_000) {
      stopped = true;
      if (pending.size === 0) return;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
      await Promise.race([Promise.allSettled([...pending]), timeout]);
      clearTimeout(timer);
      if (pending.size > 0) {
        abandon.abort();
        await Promise.allSettled([...pending]);
      }
    },
  };
}

/** A Retry-After in seconds (the HTTP-date form is rare from webhooks and ignored). */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null || !/^\d+$/.test(header.trim())) return undefined;
  return Number(header.trim()) * 1000;
}

/** Why a POST failed, without the webhook's URL (its path may be its secret) or any header. */
function describeFailure(error: unknown, webhook: Webhook, timeoutMs: number): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return `no answer within ${timeoutMs} ms`;
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
  const text = `${error instanceof Error ? error.message : String(error)}${cause}`;
  let safe = text.split(webhook.url).join(webhook.label);
  for (const value of Object.values(webhook.headers)) if (value) safe = safe.split(value).join('****');
  return redactUrl(safe);
}

/** Resolves true after `ms`, false at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

import os from 'node:os';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { ResolvedConfig } from '../config/resolve.js';
import { toSql } from '../db/queryable.js';
import { UsageError } from '../errors.js';
import { startHttpServer, type HttpServer, type Route } from '../http/server.js';
import { createUpdater, type Updater, type UpdaterOptions } from '../readmodel/updater.js';
import { listen, type ListenerOptions } from '../replication/listener.js';
import { listenerTypes } from '../replication/setup.js';
import type { ScheduledCheck } from '../schedule/checks.js';
import { startScheduler, type Scheduler, type SchedulerOptions } from '../schedule/scheduler.js';
import type { VerifyReport } from '../verify/report.js';
import { createAlerter, type Alerter } from '../alerts/alerter.js';
import { startMonitor } from '../alerts/monitor.js';
import { missedAlert, runAlerts } from '../alerts/runAlerts.js';
import { SERVICE_COMPONENTS, type ServiceComponent } from './components.js';
import { serviceRoutes } from './health.js';
import { createServiceMetrics } from './metrics.js';
import { listenerTracker, type ComponentReadiness, type Readiness, type ServiceState } from './serviceState.js';

/**
 * `hindsight run`: the listener, the read-model updaters and the scheduled checks in one
 * supervised process, with /metrics, /healthz and /readyz (and the console's routes, when
 * given) on one HTTP listener. Several instances cooperate through what each part already
 * has: the listener's standby, the updaters' leases, the job queue's exactly-once ticks.
 * A component that fails for good (a change the listener cannot turn into events, a
 * restored cluster) stops the whole service, so a supervisor sees it and alerts.
 */


export interface ServiceLogEntry {
  level: 'info' | 'warn' | 'error';
  component: 'service' | ServiceComponent | 'http' | 'alerts';
  message: string;
}

export interface ServiceOptions {
  connectionString: string;
  /** The components to run. Default: each one the config gives work to. */
  only?: readonly ServiceComponent[];
  /** Names this process in leases and the schedule log. Default host:pid:random. */
  instance?: string;
  /** `{ listen: 'host:port', token }`, and more routes (the console). Default: no HTTP listener. */
  http?: { listen: string; token?: string; routes?: readonly Route[] };
  /** How long stop() may take before it gives up. Default 30 s. */
  shutdownTimeoutMs?: number;
  listener?: Pick<ListenerOptions, 'maxGroupMs' | 'heartbeatMs' | 'failpoint'>;
  updater?: Pick<UpdaterOptions, 'leaseTtlMs' | 'batchSize' | 'gatherMs'>;
  /** The scheduled checks' chunk work: the crash tests' hook, and how often idle instances look for chunks. */
  verify?: Pick<SchedulerOptions, 'onChunkTaken' | 'chunkPollMs'>;
  /** Tests: how often the alert monitor reads the status (default 15 s) and the first retry's wait (default 1 s). */
  alerts?: { monitorIntervalMs?: number; backoffMs?: number };
  /** After each scheduled check's run (the config's alerts are sent before it is called). */
  onCheckRun?: (check: ScheduledCheck, report: VerifyReport) => void;
  onLog?: (entry: ServiceLogEntry) => void;
}

export interface Service {
  readonly instance: string;
  readonly components: readonly ServiceComponent[];
  /** The HTTP listener's address, when there is one. */
  readonly url: string | undefined;
  readiness(): Readiness;
  /** Stops taking work, finishes or releases what is in hand, and resolves; rejects after the shutdown timeout. */
  stop(): Promise<void>;
  /** Settles when every component has stopped: rejects with the error that stopped a component for good. */
  readonly done: Promise<void>;
}

/** The components the config gives work to, narrowed by `only` (naming one with no work is an error). */
export function serviceComponents(config: ResolvedConfig, only?: readonly ServiceComponent[]): ServiceComponent[] {
  const work: Record<ServiceComponent, string | undefined> = {
    listener: listenerTypes(config).length > 0 ? undefined : 'no aggregate type has capture "listener" or "both"',
    project: config.readModels.size > 0 ? undefined : 'the config declares no read models',
    verify: config.schedules.length > 0 ? undefined : 'the config declares no verify.schedule',
  };
  if (only && only.length > 0) {
    for (const component of only) if (work[component]) throw new UsageError(`run --only ${component}: nothing to do, ${work[component]}`);
    return SERVICE_COMPONENTS.filter((c) => only.includes(c));
  }
  const chosen = SERVICE_COMPONENTS.filter((c) => !work[c]);
  if (chosen.length === 0) {
    throw new UsageError('run: nothing to run: the config has no listener types, no read models and no verify.schedule (see the README, "Run it as a service")');
  }
  return chosen;
}

export async function startService(config: ResolvedConfig, options: ServiceOptions): Promise<Service> {
  const components = serviceComponents(config, options.only);
  const instance = options.instance ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const log = (component: ServiceLogEntry['component'], level: ServiceLogEntry['level'], message: string) => options.onLog?.({ level, component, message });
  const stopping = new AbortController();
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 3 });
  pool.on('error', () => undefined); // a restart of the server: the next query says so
  const sql = toSql(pool);

  const listener = components.includes('listener') ? listenerTracker() : undefined;
  let updater: Updater | undefined;
  let scheduler: Scheduler | undefined;
  const state: ServiceState = {
    listener,
    readiness() {
      const parts: Record<string, ComponentReadiness> = {};
      if (listener) parts.listener = listener.readiness();
      if (components.includes('project')) parts.project = updaterReadiness(updater);
      if (components.includes('verify')) parts.verify = scheduler ? { ready: true, detail: `${config.schedules.length} scheduled checks` } : { ready: false, detail: 'starting' };
      return { ready: Object.values(parts).every((p) => p.ready), components: parts };
    },
  };

  let http: HttpServer | undefined;
  if (options.http) {
    const metrics = createServiceMetrics(config, sql, state);
    http = await startHttpServer({
      listen: options.http.listen,
      token: options.http.token,
      routes: [...serviceRoutes(state, sql, metrics), ...(options.http.routes ?? [])],
      onError: (error, url) => log('http', 'error', `${url}: ${error instanceof Error ? error.message : String(error)}`),
    });
    log('http', 'info', `serving /metrics, /healthz and /readyz on ${http.url}`);
  }

  let fatal: unknown;
  const failed = (component: ServiceComponent) => (error: unknown) => {
    if (stopping.signal.aborted && fatal === undefined) return; // errors while shutting down are not why it stopped
    fatal ??= error;
    log(component, 'error', `stopped: ${error instanceof Error ? error.message : String(error)}; stopping the service`);
    stopping.abort();
  };
  const running: Array<Promise<unknown>> = [];
  // Alerts only queue: a slow or absent receiver never holds up the parts that raise them.
  const alerter: Alerter | undefined = config.alerts && createAlerter(config.alerts, { instance, backoffMs: options.alerts?.backoffMs, onLog: (e) => log('alerts', e.level, e.message) });
  const monitor = alerter && startMonitor(config, { sql, alert: alerter.alert, intervalMs: options.alerts?.monitorIntervalMs, signal: stopping.signal, onLog: (line) => log('alerts', 'warn', line) });
  if (listener) {
    running.push(
      listen(config, {
        connectionString: options.connectionString,
        signal: stopping.signal,
        ...options.listener,
        onState: (s) => listener.set(s),
        onLog: (line) => log('listener', 'info', line),
      }).catch(failed('listener')),
    );
  }
  if (components.includes('project')) {
    // A random part: two processes given the same --instance must never both hold a lease.
    updater = createUpdater(config, { connectionString: options.connectionString, owner: `${instance}/${randomUUID().slice(0, 8)}`, ...options.updater, onLog: (line) => log('project', 'info', line) });
    running.push(updater.run(stopping.signal).catch(failed('project')));
  }
  if (components.includes('verify')) {
    try {
      scheduler = await startScheduler(config, {
        connectionString: options.connectionString,
        instance,
        ...options.verify,
        onRun: (check, report) => {
          if (alerter) for (const input of runAlerts(check, report, config.alerts?.consoleUrl)) alerter.alert(input);
          options.onCheckRun?.(check, report);
        },
        onMissed: (checkId, missed) => {
          const input = missedAlert(checkId, missed);
          if (alerter && input) alerter.alert(input);
        },
        onLog: (line) => log('verify', 'info', line),
      });
      running.push(scheduler.done.catch(failed('verify')));
    } catch (error) {
      failed('verify')(error);
    }
  }
  log('service', 'info', `running ${components.join(', ')} as ${instance}`);

  const done = (async () => {
    await new Promise<void>((resolve) => (stopping.signal.aborted ? resolve() : stopping.signal.addEventListener('abort', () => resolve(), { once: true })));
    await scheduler?.stop().catch(() => undefined);
    await Promise.all(running);
    await monitor?.done;
    await alerter?.stop(5000); // bounded: what is still undelivered after 5 s is logged and dropped
    await http?.close();
    await pool.end().catch(() => undefined);
    if (fatal !== undefined) throw fatal;
  })();
  done.catch(() => undefined); // observed through stop() or `done`

  return {
    instance,
    components,
    url: http?.url,
    readiness: () => state.readiness(),
    done,
    async stop() {
      stopping.abort();
      const limit = options.shutdownTimeoutMs ?? 30_000;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new UsageError(`run: did not stop within ${limit / 1000} s (--shutdown-timeout); leases it held expire on their own`)), limit);
      });
      try {
        await Promise.race([done.catch(() => undefined), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function updaterReadiness(updater: Updater | undefined): ComponentReadiness {
  if (!updater) return { ready: false, detail: 'starting' };
  const runs = updater.runs();
  const unready = runs.filter((r) => r.state !== 'active' && r.state !== 'standby');
  const describe = (list: typeof runs) => list.map((r) => `${r.readModel} ${r.state}${r.failure ? ` (${r.failure})` : ''}`).join(', ');
  return unready.length === 0 ? { ready: true, detail: describe(runs) } : { ready: false, detail: describe(unready) };
}

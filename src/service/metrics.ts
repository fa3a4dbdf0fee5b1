import { Counter, Gauge, Registry } from 'prom-client';
import type { ResolvedConfig } from '../config/resolve.js';
import type { Sql } from '../db/queryable.js';
import { rebuildSubscriber } from '../readmodel/rebuild.js';
import { projectStatus } from '../readmodel/status.js';
import { listenerTypes, replicationStatus } from '../replication/setup.js';
import { scheduleCounts } from '../schedule/scheduleLog.js';
import { loadCheckpoints } from '../store/checkpoints.js';
import { storeTables } from '../store/tables.js';
import { cutoverStatus } from '../verify/cutover.js';
import { lastCleanFullRun, recentRuns, type StoredRun } from '../verify/history.js';
import { countNewEvents, type EventCounter } from './eventCounter.js';
import type { ServiceState } from './serviceState.js';

/**
 * `/metrics`: the Prometheus text of one service, on a registry of its own (the host
 * process's default registry is never touched). Most values are read from the database at
 * scrape time, so every instance reports the same truth; what only this process knows (its
 * listener's state, its reconnect time) comes from the service state. README lists each.
 */
export interface ServiceMetrics {
  /** Reads the database and renders the exposition text. */
  render(): Promise<string>;
  readonly contentType: string;
}

export function createServiceMetrics(config: ResolvedConfig, sql: Sql, state: ServiceState): ServiceMetrics {
  const tables = storeTables(config.quotedSchema);
  const registry = new Registry();
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: [registry] });
  const appended = new Counter({
    name: 'hindsight_events_appended_total',
    help: 'Events appended to the log since this process started watching, by aggregate type and source (app, replication, import).',
    labelNames: ['type', 'source'],
    registers: [registry],
  });
  const reconnect = new Counter({
    name: 'hindsight_listener_reconnecting_seconds_total',
    help: "Seconds this process's listener has spent reconnecting after lost connections.",
    registers: [registry],
  });
  let reconnectCounted = 0;
  const m = {
    up: gauge('hindsight_component_up', '1 when the component this process runs is ready (streaming, leased or a healthy standby).', ['component']),
    listenerState: gauge('hindsight_listener_state', "1 for the state this process's listener is in.", ['state']),
    lag: gauge('hindsight_listener_lag_bytes', "WAL written since the slot's confirmed position."),
    retained: gauge('hindsight_listener_retained_wal_bytes', 'WAL the server keeps for the slot, from its restart_lsn.'),
    checkpointAge: gauge('hindsight_listener_checkpoint_age_seconds', 'Seconds since the listener last wrote its checkpoint (at least every heartbeat while it runs).'),
    slotActive: gauge('hindsight_listener_slot_active', '1 when a listener is connected to the slot.'),
    walStatus: gauge('hindsight_listener_wal_status', "1 for the slot's wal_status (reserved, extended, unreserved, lost), or missing.", ['status']),
    staged: gauge('hindsight_staged_events_waiting', 'App events of capture "both" types staged but not yet in the stream.'),
    stagedAge: gauge('hindsight_staged_oldest_seconds', 'How long the oldest staged app event has waited.'),
    behind: gauge('hindsight_read_model_events_behind', "Events of the read model's type after its checkpoint.", ['read_model']),
    behindSeconds: gauge('hindsight_read_model_seconds_behind', 'How long the oldest event the read model has not applied has waited.', ['read_model']),
    applied: gauge('hindsight_read_model_events_applied', 'Events applied to the read model, as its checkpoint counts them.', ['read_model']),
    modelState: gauge('hindsight_read_model_state', "1 for the read model's state (caught-up, behind, stalled, failed, never-run).", ['read_model', 'state']),
    rebuild: gauge('hindsight_rebuild_position', 'The global position a rebuild in progress has read up to (absent when none runs).', ['read_model']),
    head: gauge('hindsight_log_head_position', 'The newest global position in the log.'),
    verifyOutcome: gauge('hindsight_verify_last_outcome', "1 for the outcome of the type's last run (clean, mismatches, incomplete, empty).", ['type', 'target', 'outcome']),
    verifyTime: gauge('hindsight_verify_last_run_timestamp_seconds', "When the type's last run finished.", ['type', 'target', 'mode']),
    verifyCounts: gauge('hindsight_verify_last_run_aggregates', "Aggregates per class in the type's last run.", ['type', 'target', 'class']),
    verifyClean: gauge('hindsight_verify_last_clean_full_run_timestamp_seconds', "When the type's last clean, complete, full run finished.", ['type', 'target']),
    gateOpen: gauge('hindsight_cutover_gate_open', "1 when the cut-over gate's checklist passes.", ['type', 'read_model']),
    readsFromModel: gauge('hindsight_cutover_reads_from_read_model', '1 when reads of the type come from its read model.', ['type', 'read_model']),
    ticks: gauge('hindsight_schedule_ticks', 'Scheduled-check log entries by check and event (queued, started, finished, failed, skipped, missed).', ['check', 'event']),
  };
  const counter: EventCounter = { position: undefined };

  async function refresh(): Promise<void> {
    for (const g of Object.values(m)) g.reset();
    for (const [component, readiness] of Object.entries(state.readiness().components)) m.up.set({ component }, readiness.ready ? 1 : 0);
    const listener = state.listener;
    if (listener) {
      m.listenerState.set({ state: listener.state }, 1);
      const seconds = listener.reconnectingMs() / 1000;
      reconnect.inc(seconds - reconnectCounted);
      reconnectCounted = seconds;
    }
    for (const row of await countNewEvents(sql, tables, counter)) appended.inc({ type: row.type, source: row.source }, row.count);
    if (listenerTypes(config).length > 0) {
      const s = await replicationStatus(sql, config);
      if (s.lagBytes !== null) m.lag.set(s.lagBytes);
      if (s.retainedWalBytes !== null) m.retained.set(s.retainedWalBytes);
      if (s.checkpointAgeSeconds !== null) m.checkpointAge.set(s.checkpointAgeSeconds);
      m.slotActive.set(s.active ? 1 : 0);
      m.walStatus.set({ status: s.health === 'missing' ? 'missing' : (s.walStatus ?? 'unknown') }, 1);
      m.staged.set(s.staged.waiting);
      if (s.staged.oldestSeconds !== null) m.stagedAge.set(s.staged.oldestSeconds);
    }
    if (config.readModels.size > 0) await refreshReadModels();
    const [head] = await sql.query<{ head: string | null }>(`SELECT max(global_position)::text AS head FROM ${tables.events}`);
    m.head.set(Number(head?.head ?? 0));
    await refreshVerify();
    for (const row of await scheduleCounts(sql, tables)) m.ticks.set({ check: row.checkId, event: row.event }, row.count);
  }

  async function refreshReadModels(): Promise<void> {
    const status = await projectStatus(sql, tables, config);
    for (const model of status.readModels) {
      m.behind.set({ read_model: model.readModel }, model.lag.events);
      m.behindSeconds.set({ read_model: model.readModel }, model.lag.seconds);
      m.applied.set({ read_model: model.readModel }, model.checkpoint?.eventsApplied ?? 0);
      m.modelState.set({ read_model: model.readModel, state: model.state }, 1);
    }
    const models = [...config.readModels.values()];
    const rebuilds = await loadCheckpoints(sql, tables, models.map(rebuildSubscriber));
    for (const model of models) {
      const checkpoint = rebuilds.get(rebuildSubscriber(model));
      if (checkpoint) m.rebuild.set({ read_model: model.name }, checkpoint.position.globalPosition);
    }
  }

  async function refreshVerify(): Promise<void> {
    const latest = new Map<string, StoredRun>();
    for (const run of await recentRuns(sql, tables, { limit: 500 })) {
      const key = `${run.aggregateType}\u0000${run.target}`;
      if (!latest.has(key)) latest.set(key, run);
    }
    for (const run of latest.values()) {
      const labels = { type: run.aggregateType, target: run.target };
      m.verifyOutcome.set({ ...labels, outcome: run.outcome }, 1);
      m.verifyTime.set({ ...labels, mode: run.mode }, Date.parse(run.finishedAt) / 1000);
      for (const cls of ['matched', 'mismatched', 'missingInEvents', 'missingInLegacy', 'ignored'] as const) m.verifyCounts.set({ ...labels, class: cls }, run.counts[cls]);
      const clean = await lastCleanFullRun(sql, tables, run.aggregateType, run.target);
      if (clean) m.verifyClean.set(labels, Date.parse(clean.finishedAt) / 1000);
    }
    for (const aggregate of config.aggregates.values()) {
      for (const model of aggregate.readModels) {
        const gate = await cutoverStatus(sql, tables, config, aggregate.type, { readModel: model.name });
        m.gateOpen.set({ type: aggregate.type, read_model: model.name }, gate.passed ? 1 : 0);
        m.readsFromModel.set({ type: aggregate.type, read_model: model.name }, gate.source === 'read-model' && gate.readModel === model.name ? 1 : 0);
      }
    }
  }

  return {
    contentType: registry.contentType,
    async render() {
      await refresh();
      return registry.metrics();
    },
  };
}

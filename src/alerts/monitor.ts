import type { ResolvedConfig } from '../config/resolve.js';
import type { Sql } from '../db/queryable.js';
import { replicationStatus, listenerTypes } from '../replication/setup.js';
import { storeTables } from '../store/tables.js';
import type { AlertInput } from './alerter.js';
import { unheldLeases } from './unheldLeases.js';

/**
 * The conditions no single run reports: the listener falling behind, its slot lost or
 * missing, a read model nobody updates. Read every `intervalMs` (one set of queries) by
 * every service instance; each alerts once when a condition starts, and again only after
 * it cleared and came back. The state is this process's memory, so each instance alerts on
 * what it sees (receivers that want one alert per condition dedupe on kind and subject).
 */

export interface MonitorOptions {
  sql: Sql;
  alert: (input: AlertInput) => void;
  onLog?: (line: string) => void;
  /** Default 15,000. */
  intervalMs?: number;
  signal: AbortSignal;
}

/** A condition that holds now, by a key that stays the same while it lasts. */
interface Condition {
  key: string;
  input: AlertInput;
}

export interface Monitor {
  /** Settles after the signal aborted and the reading in hand finished. */
  readonly done: Promise<void>;
}

export function startMonitor(config: ResolvedConfig, options: MonitorOptions): Monitor {
  const settings = config.alerts;
  const watchSlot = listenerTypes(config).length > 0;
  const models = [...config.readModels.values()];
  const tables = storeTables(config.quotedSchema);
  const active = new Set<string>();
  /** Read models seen with no lease row at all, and when this process first saw that. */
  const absentSince = new Map<string, number>();
  let failing = false;

  const read = async (): Promise<Condition[]> => {
    if (!settings) return [];
    const found: Condition[] = [];
    if (watchSlot) {
      const status = await replicationStatus(options.sql, config);
      if (status.health !== 'ok') {
        const kind = status.health === 'lost' ? 'slot.lost' : 'slot.missing';
        const detail =
          status.health === 'lost'
            ? `the replication slot ${status.slot} is lost (wal_status lost): changes were dropped; re-backfill and verify`
            : `the replication slot ${status.slot} is missing: no changes are being captured; run hindsight backfill`;
        found.push({ key: kind, input: { kind, detail } });
      } else if (status.lagBytes !== null && status.lagBytes > settings.listenerLagBytes) {
        found.push({ key: 'listener.lag', input: { kind: 'listener.lag', detail: `the listener is ${status.lagBytes} bytes of WAL behind, over alerts.listenerLagBytes (${settings.listenerLagBytes})${status.active ? '' : '; no listener is connected'}` } });
      }
    }
    if (models.length > 0) {
      const unheld = await unheldLeases(options.sql, tables, models.map((m) => m.subscriber));
      const now = Date.now();
      for (const model of models) {
        if (!unheld.has(model.subscriber)) {
          absentSince.delete(model.name);
          continue;
        }
        const expiredFor = unheld.get(model.subscriber);
        if (expiredFor === null) {
          if (!absentSince.has(model.name)) absentSince.set(model.name, now);
        } else absentSince.delete(model.name);
        const seconds = expiredFor ?? (now - absentSince.get(model.name)!) / 1000;
        if (seconds <= settings.leaseUnheldSeconds) continue;
        found.push({
          key: `lease.unheld:${model.name}`,
          input: {
            kind: 'lease.unheld',
            type: model.aggregateType,
            readModel: model.name,
            detail: `no updater has held the lease of read model ${model.name} for ${Math.round(seconds)} s, over alerts.leaseUnheldSeconds (${settings.leaseUnheldSeconds}): it is not being updated; is hindsight run (project) running?`,
            ...(settings.consoleUrl ? { link: `${settings.consoleUrl}/` } : {}),
          },
        });
      }
    }
    return found;
  };

  const tick = async () => {
    let conditions: Condition[];
    try {
      conditions = await read();
      if (failing) options.onLog?.('monitor: reading the status works again');
      failing = false;
    } catch (error) {
      // A failed reading says nothing about the conditions: keep what is active as it is.
      if (!failing) options.onLog?.(`monitor: could not read the status: ${error instanceof Error ? error.message : String(error)}`);
      failing = true;
      return;
    }
    const now = new Set(conditions.map((c) => c.key));
    for (const key of [...active]) if (!now.has(key)) active.delete(key);
    for (const condition of conditions) {
      if (active.has(condition.key)) continue;
      active.add(condition.key);
      options.alert(condition.input);
    }
  };

  const done = (async () => {
    const every = options.intervalMs ?? 15_000;
    while (!options.signal.aborted) {
      await tick();
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          options.signal.removeEventListener('abort', wake);
          resolve();
        };
        const timer = setTimeout(wake, every);
        options.signal.addEventListener('abort', wake, { once: true });
      });
    }
  })();
  return { done };
}

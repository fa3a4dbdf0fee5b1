import type { ReplicationStatus } from './setup.js';

/** What `replication status` counts as a problem (exit 1), and the defaults an operator gets without options. */
export interface StatusLimits {
  /** WAL written since the slot's confirmed position, in bytes. */
  maxLagBytes: number;
  /** How long the oldest staged app event (capture "both") may wait for the listener. */
  maxLagSeconds: number;
  /** How long ago the listener may have last written its checkpoint; a running one writes it at every heartbeat. */
  maxCheckpointAgeSeconds: number;
}

export const STATUS_LIMITS: StatusLimits = {
  maxLagBytes: 1024 * 1024 * 1024,
  maxLagSeconds: 300,
  maxCheckpointAgeSeconds: 300,
};

/** The problems in one status reading, each a sentence that says what to do. */
export function statusProblems(s: ReplicationStatus, limits: StatusLimits = STATUS_LIMITS): string[] {
  const problems: string[] = [];
  if (s.health !== 'ok') {
    problems.push(`the slot is ${s.health}: re-backfill and verify required`);
    return problems; // without a slot, the numbers below measure nothing
  }
  const waiting = (s.lagBytes ?? 0) > 0 || s.staged.waiting > 0;
  if (!s.active && waiting) {
    problems.push(
      `slot inactive, no listener connected, while ${s.staged.waiting > 0 ? `${s.staged.waiting} staged app events and ` : ''}${s.lagBytes ?? 0} bytes of WAL wait to be consumed: start hindsight listen`,
    );
  }
  if (s.mappingFallbacks.lastDay > 0) {
    problems.push(`${s.mappingFallbacks.lastDay} row changes in the last 24 hours did not fit their mapped event and were recorded as generic events (metadata.mapping_error says why)`);
  }
  if (s.staged.oldestSeconds !== null && s.staged.oldestSeconds > limits.maxLagSeconds) {
    problems.push(`a staged app event has waited ${s.staged.oldestSeconds.toFixed(1)} s, over the limit of ${limits.maxLagSeconds} s (--max-lag-seconds): is the listener running?`);
  }
  if (s.lagBytes !== null && s.lagBytes > limits.maxLagBytes) {
    problems.push(`lag ${s.lagBytes} bytes is over the limit of ${limits.maxLagBytes} bytes (--max-lag-bytes)`);
  }
  if (s.checkpointAgeSeconds !== null && s.checkpointAgeSeconds > limits.maxCheckpointAgeSeconds) {
    problems.push(
      `the listener last wrote its checkpoint ${s.checkpointAgeSeconds.toFixed(0)} s ago, over the limit of ${limits.maxCheckpointAgeSeconds} s (--max-checkpoint-age): a running listener writes it at every heartbeat, so it is stopped, stuck or holding for a baseline`,
    );
  }
  return problems;
}

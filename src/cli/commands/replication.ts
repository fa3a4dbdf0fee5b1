import { toSql } from '../../db/queryable.js';
import { UsageError } from '../../errors.js';
import { backfill, importAppType } from '../../replication/backfill.js';
import { listen } from '../../replication/listener.js';
import { listenerTypes, replicationStatus, setupReplication, teardownReplication, type ReplicationStatus } from '../../replication/setup.js';
import { statusProblems } from '../../replication/statusProblems.js';
import type { CommandContext } from '../context.js';
import { listenerFailpoint } from '../failpoint.js';
import { plural } from '../format.js';
import type { Command } from '../parse.js';

/** `replication setup | status | teardown`. */
export async function runReplication(ctx: CommandContext, command: Extract<Command, { name: 'replication' }>): Promise<number> {
  const config = await ctx.config();
  if (command.action === 'setup') {
    const result = await setupReplication(config, { connectionString: await ctx.databaseUrl(), lockTimeoutMs: command.lockTimeoutMs });
    for (const warning of result.warnings) ctx.note(`warning: ${warning}`);
    ctx.print(
      `publication ${result.publication} covers ${result.tables.join(', ')}; next: hindsight backfill (it creates the slot ${config.replication.slot})`,
      result,
    );
    return 0;
  }
  if (command.action === 'status') {
    const status = await ctx.withPool((pool) => replicationStatus(toSql(pool), config));
    const problems = statusProblems(status, command);
    ctx.print([...statusLines(status), ...problems.map((p) => `PROBLEM: ${p}`)].join('\n'), { ...status, problems });
    return problems.length > 0 ? 1 : 0;
  }
  if (!command.yes) throw new UsageError('replication teardown drops the slot and the publication: give --yes to confirm');
  const result = await ctx.withPool((pool) => teardownReplication(toSql(pool), config, { force: command.force }));
  ctx.print(
    `${result.droppedSlot ? `dropped slot ${config.replication.slot}` : `no slot ${config.replication.slot}`}; ${result.droppedPublication ? `dropped publication ${config.replication.publication}` : 'no publication'}. Changes from now on are not captured; a new slot needs a new baseline.`,
    result,
  );
  return 0;
}

function statusLines(s: ReplicationStatus): string[] {
  const mb = (bytes: number | null) => (bytes === null ? '?' : `${(bytes / 1024 / 1024).toFixed(1)} MB`);
  return [
    `slot ${s.slot}: ${s.health === 'ok' ? (s.active ? 'present, a listener is connected' : 'present, slot inactive: no listener connected') : s.health}`,
    `  confirmed ${s.confirmedLsn ?? '-'}, listener checkpoint ${s.checkpointLsn ?? '-'}${s.checkpointAgeSeconds === null ? '' : ` (written ${s.checkpointAgeSeconds.toFixed(0)} s ago)`}`,
    `  lag ${mb(s.lagBytes)}: WAL written since the position the listener confirmed (what it has yet to read)`,
    `  WAL retained ${mb(s.retainedWalBytes)}: WAL the server keeps for this slot, from its restart_lsn; decoding restarts from there, so it trails the confirmed position and shrinks as the server moves it on`,
    `  wal_status ${s.walStatus ?? '-'}`,
    `  baselines pending: ${s.pendingBaselines.length === 0 ? 'none' : s.pendingBaselines.join(', ')}`,
    `  staged app events waiting: ${s.staged.waiting}${s.staged.oldestSeconds === null ? '' : `, the oldest for ${s.staged.oldestSeconds.toFixed(1)} s`}`,
    `  mapped events that fell back to generic: ${s.mappingFallbacks.lastDay} in the last 24 hours, ${s.mappingFallbacks.total} in all`,
  ];
}

/** `backfill [<type>]`: the slot and every listener type's opening events. */
export async function runBackfill(ctx: CommandContext, command: Extract<Command, { name: 'backfill' }>): Promise<number> {
  const config = await ctx.config();
  const types = listenerTypes(config).map((t) => t.type);
  const showProgress = ctx.io.isTTY && !ctx.global.json;
  if (command.aggregateType && config.aggregates.get(command.aggregateType)?.capture === 'app') {
    // An app type has no slot: a plain snapshot import that skips aggregates the app already wrote.
    const result = await importAppType(config, command.aggregateType, {
      connectionString: await ctx.databaseUrl(),
      batchSize: command.batchSize,
      onProgress: showProgress ? (p) => ctx.io.stderr(`\r${p.aggregateType}: ${plural(p.rows, 'row')} read`) : undefined,
    });
    if (showProgress) ctx.io.stderr('\n');
    ctx.print(
      `${result.aggregateType}: ${plural(result.rows - result.skipped, 'row')} imported, ${plural(result.skipped, 'aggregate')} skipped (they already had events). Switch the wrappers on now: writes made before they are live are caught only by verification.`,
      result,
    );
    return 0;
  }
  if (command.aggregateType && !types.includes(command.aggregateType)) {
    throw new UsageError(`backfill: ${command.aggregateType} is not a declared aggregate type (listener types: ${types.join(', ') || 'none'})`);
  }
  if (command.aggregateType && types.length > 1) {
    throw new UsageError('backfill: every listener type shares one slot, so they are backfilled together; run it without a type');
  }
  const result = await backfill(config, {
    connectionString: await ctx.databaseUrl(),
    batchSize: command.batchSize,
    slotWaitMs: command.slotWaitMs,
    onLog: (line) => ctx.note(line),
    onProgress: showProgress ? (p) => ctx.io.stderr(`\r${p.aggregateType}: ${plural(p.rows, 'row')} imported`) : undefined,
  });
  if (showProgress) ctx.io.stderr('\n');
  if (result.imported.length === 0) {
    ctx.print('every listener type already has its baseline; nothing to do', result);
    return 0;
  }
  ctx.print(
    [`slot ${result.slot} created at ${result.consistentPoint}`, ...result.imported.map((i) => `  ${i.aggregateType}: ${plural(i.rows, 'row')} imported`), 'next: hindsight listen'].join('\n'),
    result,
  );
  return 0;
}

/** `listen`: until SIGTERM/SIGINT. */
export async function runListen(ctx: CommandContext, command: Extract<Command, { name: 'listen' }>): Promise<number> {
  const config = await ctx.config();
  if (listenerTypes(config).length === 0) throw new UsageError('listen: no aggregate type has capture "listener" or "both"');
  ctx.note(`starting the listener (stop with Ctrl-C or SIGTERM)`);
  await listen(config, {
    connectionString: await ctx.databaseUrl(),
    signal: ctx.io.signal,
    maxGroupMs: command.groupMs,
    heartbeatMs: command.heartbeatMs,
    onLog: (line) => ctx.note(line),
    failpoint: listenerFailpoint(ctx.io.env),
  });
  ctx.print('stopped', { stopped: true });
  return 0;
}

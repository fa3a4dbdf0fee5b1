import { createUpdater, type ReadModelRun } from '../../readmodel/updater.js';
import { projectStatus, type ProjectStatus } from '../../readmodel/status.js';
import { storeTables } from '../../store/tables.js';
import { toSql } from '../../db/queryable.js';
import { formatInstant } from '../../time.js';
import type { CommandContext } from '../context.js';
import { plural } from '../format.js';
import type { Command } from '../parse.js';

/** `project`: the read-model updaters; `--once` drains and exits; `--status` reports. */
export async function runProject(ctx: CommandContext, command: Extract<Command, { name: 'project' }>): Promise<number> {
  const config = await ctx.config();
  if (config.readModels.size === 0) {
    ctx.print('the config declares no read models (see the README: read models)', { readModels: [] });
    return 0;
  }
  if (command.status) {
    const status = await ctx.withPool((pool) => projectStatus(toSql(pool), storeTables(config.quotedSchema), config, command.readModels));
    ctx.print(statusText(status), status);
    return status.readModels.some((m) => m.state === 'failed' || m.state === 'stalled') ? 1 : 0;
  }
  const updater = createUpdater(config, {
    connectionString: await ctx.databaseUrl(),
    readModels: command.readModels,
    retryFailed: command.retryFailed,
    leaseTtlMs: command.leaseTtlMs,
    batchSize: command.batchSize,
    gatherMs: command.gatherMs,
    onLog: (line) => ctx.note(line),
  });
  let runs: ReadModelRun[];
  if (command.once) {
    runs = await updater.runOnce();
  } else {
    ctx.note(`updating ${plural(command.readModels.length || config.readModels.size, 'read model')} as ${updater.owner}; stop with Ctrl-C or SIGTERM`);
    runs = await updater.run(ctx.io.signal);
  }
  const lines = runs.map((r) => `  ${r.readModel}: ${r.state}, ${plural(r.applied, 'event')} applied${r.failure ? ` (${r.failure})` : ''}`);
  ctx.print([command.once ? 'drained to the end of the log:' : 'stopped:', ...lines].join('\n'), { readModels: runs });
  // --once: a read model left to another process was not drained by this one.
  return runs.some((r) => r.state === 'failed' || (command.once && r.state === 'standby')) ? 1 : 0;
}

function statusText(status: ProjectStatus): string {
  const lines: string[] = [];
  for (const m of status.readModels) {
    const lag = m.lag.events === 0 ? 'no lag' : `${plural(m.lag.events, 'event')} behind, oldest waiting ${m.lag.seconds.toFixed(1)} s`;
    const holder = m.lease && !m.lease.expired ? `updated by ${m.lease.owner}` : 'no updater running';
    lines.push(`${m.readModel} (${m.aggregateType} -> ${m.table}): ${m.state}${m.reason ? ` (${m.reason})` : ''}`);
    lines.push(`    ${lag}; ${holder}`);
    if (m.checkpoint) {
      lines.push(`    checkpoint at global position ${m.checkpoint.position.globalPosition} (transaction ${m.checkpoint.position.transactionId}), ${plural(m.checkpoint.eventsApplied, 'event')} applied, last write ${formatInstant(m.checkpoint.updatedAt, 'UTC')}`);
    }
  }
  const h = status.horizon;
  if (h) {
    const who = h.preparedGid ? `prepared transaction "${h.preparedGid}"` : `pid ${h.pid} (${h.user ?? 'unknown user'}, ${h.state ?? 'unknown state'})`;
    lines.push(`oldest open transaction holding readers back: ${who} in database ${h.database ?? '?'}, open ${h.ageSeconds.toFixed(1)} s, transaction ${h.transactionId}`);
  } else {
    lines.push('no open transaction is holding readers back');
  }
  return lines.join('\n');
}

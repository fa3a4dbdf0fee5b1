import { cancelRebuild, rebuildReadModel, type RebuildProgress, type RebuildResult } from '../../readmodel/rebuild.js';
import type { CommandContext } from '../context.js';
import { plural } from '../format.js';
import type { Command } from '../parse.js';

/** `rebuild <read-model> | --all [--cancel]`: zero-downtime rebuilds, with a progress bar on a terminal. */
export async function runRebuild(ctx: CommandContext, command: Extract<Command, { name: 'rebuild' }>): Promise<number> {
  const config = await ctx.config();
  const names = command.all ? [...config.readModels.keys()] : command.readModels;
  const url = await ctx.databaseUrl();
  if (command.cancel) {
    const dropped: string[] = [];
    for (const name of names) if (await cancelRebuild(config, name, url)) dropped.push(name);
    ctx.print(dropped.length ? `cancelled: ${dropped.join(', ')}` : 'no unfinished rebuild to cancel', { cancelled: dropped });
    return 0;
  }
  const results: RebuildResult[] = [];
  const bar = ctx.io.isTTY && !ctx.global.json;
  for (const name of names) {
    const result = await rebuildReadModel(config, name, {
      connectionString: url,
      batchSize: command.batchSize,
      checkpointEveryMs: command.checkpointEveryMs,
      lockTimeoutMs: command.lockTimeoutMs,
      signal: ctx.io.signal,
      onLog: (line) => ctx.note(line),
      onProgress: bar ? (p) => ctx.io.stderr(`\r${progressLine(p)}`) : undefined,
    });
    if (bar) ctx.io.stderr('\n');
    results.push(result);
    if (result.outcome === 'interrupted') break;
  }
  const lines = results.map((r) =>
    r.outcome === 'swapped'
      ? `${r.readModel}: rebuilt from ${plural(r.events, 'event')} into ${plural(r.rows, 'row write')} in ${r.seconds.toFixed(1)} s (${Math.round(r.eventsPerSecond).toLocaleString('en-US')} events/s)${r.resumed ? ', resumed' : ''}; swapped in`
      : `${r.readModel}: interrupted after ${plural(r.events, 'event')}; run the same command again to resume`,
  );
  ctx.print(lines.join('\n'), { rebuilds: results });
  return results.every((r) => r.outcome === 'swapped') ? 0 : 1;
}

function progressLine(p: RebuildProgress): string {
  const rate = p.seconds > 0 ? p.events / p.seconds : 0;
  const share = p.total > 0 ? Math.min(1, p.events / p.total) : 0;
  const width = 24;
  const filled = Math.round(share * width);
  const eta = rate > 0 && p.total > p.events ? `${Math.ceil((p.total - p.events) / rate)} s left` : '';
  return `${p.readModel} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.events.toLocaleString('en-US')}${p.total > 0 ? `/${p.total.toLocaleString('en-US')}` : ''} events, ${Math.round(rate).toLocaleString('en-US')}/s ${eta}`.padEnd(100);
}

import { cliAggregateId } from '../aggregateId.js';
import type { CommandContext } from '../context.js';
import { plural } from '../format.js';
import type { Command } from '../parse.js';

/** `snapshot <type> [--id ID]`: snapshots at the current version, on demand. */
export async function runSnapshot(ctx: CommandContext, command: Extract<Command, { name: 'snapshot' }>): Promise<number> {
  const hs = await ctx.hindsight();
  const aggregateId = command.aggregateId === undefined ? undefined : cliAggregateId(hs.config, command.aggregateType, command.aggregateId);
  const showProgress = ctx.io.isTTY && !ctx.global.json;
  const result = await ctx.withPool((pool) =>
    hs.snapshot(pool, command.aggregateType, {
      aggregateId,
      onProgress: showProgress ? (p) => ctx.io.stderr(`\r${plural(p.aggregates, 'aggregate')} projected, ${plural(p.written, 'snapshot')} written`) : undefined,
    }),
  );
  if (showProgress) ctx.io.stderr('\n');
  ctx.print(
    `${command.aggregateType}: ${plural(result.written, 'snapshot')} written for ${plural(result.aggregates, 'aggregate')} (the others were already current)`,
    { aggregateType: command.aggregateType, ...result },
  );
  return 0;
}

import { cliAggregateId } from '../aggregateId.js';
import type { CommandContext } from '../context.js';
import { plural } from '../format.js';
import type { Command } from '../parse.js';

/** Checks hash chains; exit 1 naming the first broken event of each broken chain. */
export async function runAudit(ctx: CommandContext, command: Extract<Command, { name: 'audit' }>): Promise<number> {
  const hs = await ctx.hindsight();
  const aggregateId = command.aggregateId === undefined || command.aggregateType === undefined
    ? undefined
    : cliAggregateId(hs.config, command.aggregateType, command.aggregateId);
  const report = await ctx.withPool((pool) =>
    hs.audit(pool, {
      aggregateType: command.aggregateType,
      aggregateId,
      onProgress: ctx.io.isTTY && !ctx.global.json
        ? (p) => ctx.io.stderr(`\rchecked ${plural(p.aggregates, 'aggregate')}, ${plural(p.events, 'event')}`)
        : undefined,
    }),
  );
  if (ctx.io.isTTY && !ctx.global.json) ctx.io.stderr('\n');
  const scope = command.aggregateType ? `${command.aggregateType}${command.aggregateId ? ` ${command.aggregateId}` : ''}: ` : '';
  const summary = `${scope}checked ${plural(report.aggregates, 'aggregate')} and ${plural(report.events, 'event')}`;
  if (report.problems.length === 0) {
    ctx.print(`${summary}: every hash chain is intact`, { ok: true, ...report });
    return 0;
  }
  const lines = [`${summary}: ${plural(report.problems.length, 'broken chain')}`];
  for (const p of report.problems.slice(0, 20)) {
    lines.push(`  ${p.aggregateType} ${p.aggregateId}${p.sequence === null ? '' : ` at sequence ${p.sequence}`}: ${p.message}`);
  }
  if (report.problems.length > 20) lines.push(`  ... and ${report.problems.length - 20} more (use --json for all)`);
  ctx.print(lines.join('\n'), { ok: false, ...report });
  return 1;
}

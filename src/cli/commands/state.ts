import { formatInstant, toUtcIso } from '../../time.js';
import { cliAggregateId } from '../aggregateId.js';
import type { CommandContext } from '../context.js';
import type { Command } from '../parse.js';

/** Projected state now, at a sequence, or as of a time. Exit 1 when there is no state to show. */
export async function runState(ctx: CommandContext, command: Extract<Command, { name: 'state' }>): Promise<number> {
  const hs = await ctx.hindsight();
  const aggregateId = cliAggregateId(hs.config, command.aggregateType, command.aggregateId);
  const at = command.asOf !== undefined ? { asOf: command.asOf } : command.atSequence !== undefined ? { atSequence: command.atSequence } : {};
  const projection = await ctx.withPool((pool) => hs.project(pool, command.aggregateType, aggregateId, at));
  const asOfText = command.asOf ? formatInstant(toUtcIso(command.asOf), command.tz) : undefined;
  if (!projection.found) {
    const message =
      projection.reason === 'no-history-before'
        ? `${command.aggregateType} ${projection.aggregateId}: no history before ${asOfText} (its first event is later)`
        : projection.message;
    ctx.print(message, { ...projection, asOf: asOfText ?? null });
    return 1;
  }
  const point = asOfText ? ` as of ${asOfText}` : command.atSequence !== undefined ? ` at sequence ${command.atSequence}` : '';
  const header = `${command.aggregateType} ${projection.aggregateId}${point}: version ${projection.version} of ${projection.latestVersion}${projection.deleted ? ' (deleted)' : ''}`;
  ctx.print(`${header}\n${JSON.stringify(projection.state, null, 2)}`, { ...projection, asOf: asOfText ?? null });
  return 0;
}

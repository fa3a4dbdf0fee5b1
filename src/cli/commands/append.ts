import type { Command } from '../parse.js';
import { cliAggregateId } from '../aggregateId.js';
import type { CommandContext } from '../context.js';

export async function runAppend(ctx: CommandContext, command: Extract<Command, { name: 'append' }>): Promise<number> {
  const hs = await ctx.hindsight();
  const aggregateId = cliAggregateId(hs.config, command.aggregateType, command.aggregateId);
  const metadata: Record<string, string> = {};
  if (command.actor !== undefined) metadata.actor = command.actor;
  if (command.reason !== undefined) metadata.reason = command.reason;
  const result = await ctx.withPool((pool) =>
    hs.append(pool, {
      aggregateType: command.aggregateType,
      aggregateId,
      expectedVersion: command.expectedVersion,
      events: [
        {
          type: command.eventType,
          payload: command.payload,
          metadata: { ...metadata, via: 'hindsight-cli' },
          ...(command.occurredAt ? { occurredAt: command.occurredAt } : {}),
        },
      ],
    }),
  );
  ctx.print(
    result.staged
      ? `staged ${command.eventType} for ${result.aggregateType} ${result.aggregateId} (event ${result.eventIds[0]}); the listener appends it`
      : `appended ${command.eventType} to ${result.aggregateType} ${result.aggregateId} at sequence ${result.sequences[0]} (event ${result.eventIds[0]})`,
    result,
  );
  return 0;
}

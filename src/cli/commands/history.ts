import { formatInstant, toUtcIso } from '../../time.js';
import { cliAggregateId } from '../aggregateId.js';
import type { CommandContext } from '../context.js';
import { plural, showValue } from '../format.js';
import type { Command } from '../parse.js';

/** The ledger of one aggregate: the answer to "what happened to it between these dates, who did it and why?". */
export async function runHistory(ctx: CommandContext, command: Extract<Command, { name: 'history' }>): Promise<number> {
  const hs = await ctx.hindsight();
  const aggregateId = cliAggregateId(hs.config, command.aggregateType, command.aggregateId);
  const ledger = await ctx.withPool((pool) =>
    hs.history(pool, command.aggregateType, aggregateId, { from: command.from, to: command.to }),
  );
  const when = (iso: string) => formatInstant(iso, command.tz);
  const entries = ledger.entries.map(({ event, changes }) => ({
    sequence: event.sequence,
    occurredAt: when(event.occurredAt),
    type: event.type,
    actor: event.metadata.actor ?? null,
    reason: event.metadata.reason ?? null,
    changes,
    payload: event.payload,
    metadata: event.metadata,
    eventId: event.eventId,
    globalPosition: event.globalPosition,
    recordedAt: when(event.recordedAt),
    source: event.source,
  }));
  const range = `${command.from ? `from ${when(toUtcIso(command.from))}` : 'from the start'} ${command.to ? `to ${when(toUtcIso(command.to))} (exclusive)` : 'to now'}`;
  const lines = [`${ledger.aggregateType} ${ledger.aggregateId}: ${plural(entries.length, 'event')} ${range}, times in ${command.tz}`];
  if (ledger.version === 0) lines.push('(this aggregate has no events at all)');
  for (const entry of entries) {
    lines.push('');
    lines.push(`${entry.occurredAt}  #${entry.sequence}  ${entry.type}`);
    const who = entry.actor === null ? 'by (no actor recorded)' : `by ${String(entry.actor)}`;
    lines.push(`    ${who}${entry.reason === null ? '' : `: ${String(entry.reason)}`}`);
    for (const change of entry.changes) {
      lines.push(`    ${change.field}: ${showValue(change.from)} -> ${showValue(change.to)}`);
    }
    if (entry.changes.length === 0) lines.push('    (no state field changed)');
  }
  ctx.print(lines.join('\n'), {
    aggregateType: ledger.aggregateType,
    aggregateId: ledger.aggregateId,
    from: command.from ?? null,
    to: command.to ?? null,
    tz: command.tz,
    version: ledger.version,
    events: entries,
  });
  return 0;
}

import { toSql } from '../../db/queryable.js';
import { storeTables } from '../../store/tables.js';
import { cutoverRevert, cutoverStatus, cutoverSwitch, type CutoverStatus } from '../../verify/cutover.js';
import type { CommandContext } from '../context.js';
import type { Command } from '../parse.js';

/** `cutover status | switch | revert <type>`: the gate that moves reads of a type to its read model. */
export async function runCutover(ctx: CommandContext, command: Extract<Command, { name: 'cutover' }>): Promise<number> {
  const config = await ctx.config();
  const tables = storeTables(config.quotedSchema);
  const gate = { runs: command.runs, days: command.days, readModel: command.readModel };
  return ctx.withPool(async (pool) => {
    const sql = toSql(pool);
    switch (command.action) {
      case 'status': {
        const status = await cutoverStatus(sql, tables, config, command.aggregateType, gate);
        ctx.print(checklist(status), status);
        return status.passed ? 0 : 1;
      }
      case 'switch': {
        const status = await cutoverSwitch(sql, tables, config, command.aggregateType, { ...gate, force: command.force, reason: command.reason });
        ctx.print(`${checklist(status)}\nreads of ${status.aggregateType} now come from the read model ${status.readModel}${command.force ? ' (forced; the reason is recorded)' : ''}`, status);
        return 0;
      }
      case 'revert': {
        const status = await cutoverRevert(sql, tables, config, command.aggregateType, { reason: command.reason, readModel: command.readModel });
        ctx.print(`reads of ${status.aggregateType} come from the legacy columns again`, status);
        return 0;
      }
    }
  });
}

function checklist(status: CutoverStatus): string {
  const lines = [`${status.aggregateType}: reads come from ${status.source === 'legacy' ? 'the legacy columns' : `the read model ${status.readModel}`}${status.switchedAt ? ` (since ${status.switchedAt})` : ''}`];
  lines.push(`cut-over gate to ${status.readModel}: ${status.passed ? 'OPEN' : 'CLOSED'}`);
  for (const item of status.checklist) lines.push(`  [${item.ok ? 'x' : ' '}] ${item.check}: ${item.detail}`);
  return lines.join('\n');
}

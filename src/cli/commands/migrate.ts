import { createHindsight } from '../../hindsight.js';
import type { CommandContext } from '../context.js';

export async function runMigrate(ctx: CommandContext): Promise<number> {
  const config = await ctx.config();
  const result = await createHindsight(config).migrate(await ctx.databaseUrl());
  const lines = [
    result.applied.length
      ? `applied ${result.applied.length} migration(s) to schema "${config.schema}": ${result.applied.join(', ')}`
      : `schema "${config.schema}" is up to date (${result.current.length} migration(s) applied)`,
  ];
  for (const [name, ensured] of Object.entries(result.readModels)) {
    if (ensured.created) lines.push(`read model ${name}: table created`);
    if (ensured.addedColumns.length) {
      lines.push(`read model ${name}: added column(s) ${ensured.addedColumns.join(', ')}; run \`hindsight rebuild ${name}\` to fill them for existing rows`);
    }
    if (ensured.createdIndexes.length) lines.push(`read model ${name}: created index(es) ${ensured.createdIndexes.join(', ')}`);
  }
  ctx.print(lines.join('\n'), { schema: config.schema, ...result });
  return 0;
}

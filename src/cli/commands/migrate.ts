import { migrate } from '../../store/migrate.js';
import type { CommandContext } from '../context.js';

export async function runMigrate(ctx: CommandContext): Promise<number> {
  const config = await ctx.config();
  const result = await migrate({ connectionString: await ctx.databaseUrl(), schema: config.schema, appRoles: config.appRoles });
  const human = result.applied.length
    ? `applied ${result.applied.length} migration(s) to schema "${config.schema}": ${result.applied.join(', ')}`
    : `schema "${config.schema}" is up to date (${result.current.length} migration(s) applied)`;
  ctx.print(human, { schema: config.schema, ...result });
  return 0;
}
